"""Named limits of the message analyser; each keeps hostile input to bounded time and memory."""

from __future__ import annotations

from typing import Final

# Nesting of multipart and message/rfc822 entities. Real mail nests a few levels (a forward of a
# forward of a signed message is about 6); Dovecot and Cyrus stop in the tens. Deeper entities are
# kept whole as one opaque APPLICATION/OCTET-STREAM part, so recursion stays shallow.
MAX_DEPTH: Final = 40

# Body parts in one message, all levels together. 10,000 attachments is already absurd; past the
# limit the remaining bytes of a multipart stay in its last part instead of being split further.
MAX_PARTS: Final = 20_000

# Header fields examined per entity when looking up Content-* and envelope fields. A message with
# more fields (a mail loop adds Received: fields) is still stored whole; lookups stop here.
MAX_HEADER_FIELDS: Final = 2_000

# Octets of one header field's value that the analysis unfolds and reads (ENVELOPE, Content-*,
# SEARCH, the text index). The message is stored whole and BODY[HEADER] serves it whole; only
# these views are cut. Without it a 10 MB Subject cost about ten copies of itself at delivery
# and again at each SEARCH (bench.hostile). Postfix keeps 100 KiB of a whole header
# (header_size_limit); 64 KiB of one field is more than any real one.
MAX_FIELD_VALUE: Final = 64 * 1024
# Continuation lines of one field read by the analysis (about MAX_FIELD_VALUE at 78 octets a
# line); see headers._FIELD for why lines and not only octets.
MAX_FIELD_LINES: Final = 1000

# Address headers are tokenised character by character in Python; longer values are cut here
# (about 1,000 addresses) so that one header cannot cost seconds of CPU at delivery.
MAX_ADDRESS_HEADER: Final = 64 * 1024

# Decoded text kept for the full-text index. Search finds words in the first megabyte; an index
# holding whole multi-megabyte attachments would grow with no gain for the user.
MAX_TEXT: Final = 1024 * 1024

# Header values decoded (RFC 2047) for the search text; Subject/From/To/Cc longer than this are cut.
MAX_TEXT_HEADER: Final = 8 * 1024

# Strings longer than this are sent as literals rather than quoted, keeping response lines short.
MAX_QUOTED: Final = 1024
