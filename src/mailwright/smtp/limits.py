"""Limits of the SMTP core that are not configuration (those live in `config.SmtpConfig`)."""

from __future__ import annotations

from typing import Final

# RFC 4954 4: an AUTH command line (with its initial response) and a SASL response line may be
# up to 12288 octets; the 1000-octet command limit would cut off a legitimate PLAIN response.
MAX_AUTH_LINE: Final = 12288
# RFC 5321 4.5.3.1.4 gives 512 octets for a command line; the issue sets the wire limit at 1000
# (SmtpConfig.max_command_line). This is the default when no config is given.
DEFAULT_MAX_COMMAND_LINE: Final = 1000
# RFC 5321 4.5.3.1.6 says 1000 for a text line; real mail exceeds it, Postfix allows 2048.
DEFAULT_MAX_DATA_LINE: Final = 4096
# RFC 1870: SIZE is advertised and enforced while reading (then 552 5.3.4).
DEFAULT_MAX_MESSAGE_SIZE: Final = 50 * 1024 * 1024
# A BDAT size or SIZE= value with more digits than this is nonsense (10**20 octets): refusing it
# keeps int() away from attacker-chosen million-digit numbers.
MAX_NUMBER_DIGITS: Final = 20
# RFC 5321 4.5.3.1.1-3: local part 64, domain 255, path 256 octets. We allow a little more for
# SMTPUTF8 (UTF-8 takes up to 4 octets per character) but keep a hard bound.
MAX_PATH: Final = 1024
# RFC 3461 4: ORCPT and ENVID values are at most 500 and 100 characters; one bound for all
# parameter values keeps stored envelopes small.
MAX_PARAM_VALUE: Final = 500
# More ESMTP parameters than this on one MAIL/RCPT is an attack, not a client.
MAX_PARAMS: Final = 16
