"""The answer to LIST and LSUB: which names, with which attributes. Pure (STYLE.md 1).

RFC 9051 6.3.9 and 7.3.1, RFC 3501 6.3.8-6.3.9, RFC 5258 (LIST-EXTENDED), RFC 3348/5258 4
(CHILDREN), RFC 6154 (SPECIAL-USE). The session fetches `MailboxInfo`s and subscriptions from
the store, calls `list_mailboxes` or `lsub_mailboxes`, and renders each `Entry` with
`responses.list_` (adding CHILDINFO for `child_info`, and STATUS for RFC 5819).

Invariants:
- No I/O, no store: the same inputs always give the same entries.
- Each name appears at most once, in mailbox-name order: INBOX and its children first, then
  level by level ("a", "a/b", "a b"), so parents come before their children.
- Names are compared in canonical form: the first level "INBOX" in any ASCII case is "INBOX",
  as the store spells it; every other level is case-sensitive (RFC 9051 5.1).
- Client mistakes (an unknown option, RECURSIVEMATCH without SUBSCRIBED) raise ValueError,
  which the session answers with a tagged BAD (RFC 5258 3).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from mailwright.store.api import HIERARCHY_DELIMITER, INBOX, MailboxInfo

# RFC 5258 3.1, RFC 6154 5.2. REMOTE is accepted and ignored: we have no remote mailboxes.
SELECTION_OPTIONS: Final = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
# RFC 5258 3.2, RFC 6154 5.1, RFC 5819 2 (STATUS: the session answers it; naming it here only
# marks the command as extended).
RETURN_OPTIONS: Final = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})

NOSELECT: Final = "\\Noselect"
NONEXISTENT: Final = "\\NonExistent"
HAS_CHILDREN: Final = "\\HasChildren"
HAS_NO_CHILDREN: Final = "\\HasNoChildren"
SUBSCRIBED: Final = "\\Subscribed"

_SEP: Final = HIERARCHY_DELIMITER


@dataclass(frozen=True, slots=True)
class Entry:
    """One LIST/LSUB response line.

    Attributes come in this order: \\NonExistent or \\Noselect, \\HasChildren or
    \\HasNoChildren (LIST only), the special-use attribute, \\Subscribed.
    """

    name: str  # UTF-8 mailbox name, "/"-delimited, "INBOX" canonical
    attributes: tuple[str, ...]
    # RFC 5258 3.5: send ("CHILDINFO" ("SUBSCRIBED")): a descendant meets the selection criteria.
    child_info: bool = False
    # False for a name that is not a mailbox (\NonExistent, or \Noselect for LSUB and rev1 LIST):
    # a subscribed-but-deleted name or a parent level. STATUS must not be asked for it.
    exists: bool = True


def canonical_name(name: str) -> str:
    """`name` with a first level of "inbox" in any ASCII case spelled "INBOX" (RFC 9051 5.1).

    ASCII only: "\u0131nbox".upper() is "INBOX" in Python but not in IMAP.
    """
    head = name[: len(INBOX)]
    if head.isascii() and head.upper() == INBOX and name[len(INBOX):len(INBOX) + 1] in ("", _SEP):
        return INBOX + name[len(INBOX):]
    return name


def canonical_pattern(reference: str, pattern: str) -> str:
    """The canonical LIST pattern: `reference` followed by `pattern` (RFC 3501 6.3.8).

    RFC 3501 leaves a reference that does not end with the delimiter to the implementation;
    like Dovecot (`mailbox_list_join_refpattern`) we simply concatenate, so "foo" + "/%" is
    "foo/%". Our names never start with "/", so the RFC's absolute-pattern example
    ("~smith/Mail/" + "/usr/doc/foo") cannot name one of our mailboxes either way.
    """
    return reference + pattern


def _is_inbox_family(name: str) -> bool:
    """INBOX or one of its inferiors ("INBOX/x"), for a canonical name."""
    return name == INBOX or name.startswith(INBOX + _SEP)


def _skip_wildcards(pattern: str, states: set[int]) -> set[int]:
    """Add, for each state, the states reached by letting "*" and "%" match nothing."""
    out = set(states)
    todo = list(states)
    while todo:
        i = todo.pop()
        if i < len(pattern) and pattern[i] in "*%" and i + 1 not in out:
            out.add(i + 1)
            todo.append(i + 1)
    return out


def matches(pattern: str, name: str) -> bool:
    """Does `name` match the LIST `pattern` (RFC 9051 6.3.9)?

    "*" matches any characters, "%" any but the hierarchy delimiter "/". INBOX is
    case-insensitive (RFC 9051 5.1): the characters of a name's INBOX level match a pattern
    character in any ASCII case, so "inbox", "InBoX*" and "i%" match "INBOX". Other levels are
    case-sensitive. A set-of-positions automaton: O(len(pattern) * len(name)), never
    backtracking, so no pattern is slow.
    """
    if pattern == "*":  # the common "LIST "" *": skip the automaton
        return True
    # How many leading characters compare case-insensitively: those of an INBOX first level.
    fold = len(INBOX) if _is_inbox_family(canonical_name(name)) else 0
    if "*" not in pattern and "%" not in pattern:
        return canonical_name(pattern) == canonical_name(name) if fold else pattern == name
    states = _skip_wildcards(pattern, {0})
    for pos, ch in enumerate(name):
        step: set[int] = set()
        for i in states:
            if i == len(pattern):
                continue
            p = pattern[i]
            if p == "*" or (p == "%" and ch != _SEP):
                step.add(i)
            elif p == ch or (pos < fold and p.isascii() and p.upper() == ch.upper()):
                step.add(i + 1)
        if not step:
            return False
        states = _skip_wildcards(pattern, step)
    return len(pattern) in states


def _ancestors(name: str) -> Iterator[str]:
    """The parent levels of `name`, nearest first: "a/b/c" gives "a/b", "a" (never "")."""
    cut = name.rfind(_SEP)
    while cut > 0:
        name = name[:cut]
        yield name
        cut = name.rfind(_SEP)


def _order(name: str) -> tuple[bool, tuple[str, ...]]:
    """INBOX and its children first (RFC 9051 5.1 makes it special), then level by level."""
    return (not _is_inbox_family(name), tuple(name.split(_SEP)))


def _options(given: Sequence[str], known: frozenset[str], kind: str) -> frozenset[str]:
    """Upper-cased options; repeating one is like giving it once (RFC 5258 3)."""
    opts = frozenset(o.upper() for o in given)
    unknown = sorted(opts - known)
    if unknown:
        # RFC 5258 3: "A server MUST respond to options it does not recognize with a BAD".
        raise ValueError(f"unknown LIST {kind} option {unknown[0][:30]}")
    return opts


def _subscribed(mailboxes: dict[str, MailboxInfo], subscriptions: Collection[str]) -> set[str]:
    """Subscribed names: the subscription list, plus mailboxes the store marks subscribed."""
    out = {canonical_name(s) for s in subscriptions if s}
    out.update(name for name, info in mailboxes.items() if info.subscribed)
    return out


def _by_name(mailboxes: Sequence[MailboxInfo]) -> dict[str, MailboxInfo]:
    return {canonical_name(m.name): m for m in mailboxes}


def list_mailboxes(mailboxes: Sequence[MailboxInfo], subscriptions: Collection[str],
                   reference: str, patterns: Sequence[str], selection: Sequence[str] = (),
                   return_options: Sequence[str] = (), *, imap4rev2: bool = False) -> list[Entry]:
    """The LIST answer (RFC 9051 6.3.9, RFC 5258), in mailbox-name order.

    `selection` and `return_options` are the RFC 5258 options (case-insensitive; RETURN
    (STATUS ...) may be passed as "STATUS"). Raises ValueError for an unknown option or for
    RECURSIVEMATCH without SUBSCRIBED; the session answers BAD.

    Rules:
    - Non-extended `LIST ref ""` asks for the delimiter and root (RFC 3501 6.3.8): one entry
      with attributes (\\Noselect,) and `exists=False`, named "" or, like Dovecot and
      UW-IMAP, the reference up to its first "/". Extended LIST ignores an empty pattern
      (RFC 5258 3).
    - A name is returned once even if several patterns match it (RFC 5258 3).
    - \\HasChildren / \\HasNoChildren always, counting existing mailboxes only (RFC 5258 4
      allows them unasked, Dovecot sends them; RFC 9051 7.3.1 requires them for CHILDREN);
      the special-use attribute of a mailbox always (RFC 6154 2 allows it unasked, Dovecot
      sends it); \\Subscribed only when SUBSCRIBED is a selection or return option (RFC 5258
      3.1-3.2, RFC 9051 6.3.9.2).
    - A name that is not a mailbox carries \\NonExistent in extended LIST and IMAP4rev2, and
      \\Noselect in a plain IMAP4rev1 LIST (RFC 5258 3 vs RFC 3501 7.2.2; mbx-list-sflag
      allows only one of them), and `exists=False`.
    """
    select = _options(selection, SELECTION_OPTIONS, "selection")
    returns = _options(return_options, RETURN_OPTIONS, "return")
    # RFC 5258 3.1 and 6 (list-select-mod-opt needs a list-select-base-opt): RECURSIVEMATCH
    # alone, or with only REMOTE, is BAD. SPECIAL-USE is a list-select-independent-opt
    # (RFC 6154 6), so it does not count either.
    if "RECURSIVEMATCH" in select and "SUBSCRIBED" not in select:
        raise ValueError("RECURSIVEMATCH needs another selection option")
    # RFC 5258 1: options or a pattern list make the command extended. "LIST () ..." and
    # "LIST ref (pat)" cannot be told apart from plain LIST here; that only changes whether a
    # placeholder says \Noselect or \NonExistent, and the delimiter query below.
    extended = bool(selection or return_options) or len(patterns) > 1
    if not extended and len(patterns) == 1 and patterns[0] == "":
        # RFC 3501 6.3.8 / RFC 9051 6.3.9: the hierarchy delimiter and the root name. The root
        # MAY be "" for a non-rooted reference; Dovecot (cmd_list_ref_root) emulates UW-IMAP by
        # returning the reference up to its first delimiter.
        cut = reference.find(_SEP)
        return [Entry(reference[:cut + 1] if cut >= 0 else "", (NOSELECT,), exists=False)]
    # RFC 5258 3: an empty pattern in an extended LIST is ignored for matching.
    pats = [canonical_pattern(reference, p) for p in patterns if p != ""]
    if not pats:
        return []

    infos = _by_name(mailboxes)
    subscribed = _subscribed(infos, subscriptions)
    by_subscription = "SUBSCRIBED" in select
    by_special_use = "SPECIAL-USE" in select
    recursive = "RECURSIVEMATCH" in select
    # Neither SUBSCRIBED nor SPECIAL-USE: the criterion is plain existence.
    plain = not (by_subscription or by_special_use)
    show_subscribed = by_subscription or "SUBSCRIBED" in returns
    placeholder = NONEXISTENT if extended or imap4rev2 else NOSELECT

    def meets(name: str) -> bool:
        """RFC 5258 3: does `name` satisfy every selection option?"""
        ok = name in subscribed if by_subscription else name in infos
        if ok and by_special_use:  # RFC 6154 5.2: only mailboxes with a special use
            info = infos.get(name)
            ok = info is not None and bool(info.special_use)
        return ok

    universe = set(infos) | subscribed
    has_children: set[str] = set()
    for name in infos:
        has_children.update(_ancestors(name))
    for name in list(universe):
        universe.update(_ancestors(name))
    matched = {n for n in universe if any(matches(p, n) for p in pats)}

    # RFC 5258 3.3 rule 2: a name that does not meet the criteria is returned only when a
    # descendant that meets them does not match the pattern (so the client would not see it).
    # `below` holds names with any descendant meeting the criteria (CHILDINFO, RFC 5258 3.5);
    # `hidden_below` those whose such descendant is not matched.
    below: set[str] = set()
    hidden_below: set[str] = set()
    for name in universe:
        if meets(name):
            parents = list(_ancestors(name))
            below.update(parents)
            if name not in matched:
                hidden_below.update(parents)

    out: list[Entry] = []
    for name in sorted(matched, key=_order):
        if not meets(name):
            if name not in hidden_below:
                continue
            # RFC 5258 3.5 (RECURSIVEMATCH: the parent with CHILDINFO, table in 3.5);
            # RFC 9051 6.3.9 / RFC 3501 6.3.8 ("%" returns levels of hierarchy that are not
            # mailboxes) and RFC 5258 5 example 11 (\NonExistent \HasChildren) for plain LIST.
            # Other selections without RECURSIVEMATCH return nothing extra (RFC 5258 5 ex. 8).
            if not (recursive or plain):
                continue
        info = infos.get(name)
        attrs: list[str] = []
        if info is None:
            attrs.append(placeholder)
        attrs.append(HAS_CHILDREN if name in has_children else HAS_NO_CHILDREN)
        if info is not None and info.special_use:
            attrs.append(info.special_use)
        if show_subscribed and name in subscribed:
            attrs.append(SUBSCRIBED)
        out.append(Entry(name, tuple(attrs), child_info=recursive and name in below,
                         exists=info is not None))
    return out


def lsub_mailboxes(mailboxes: Sequence[MailboxInfo], subscriptions: Collection[str],
                   reference: str, pattern: str) -> list[Entry]:
    """The LSUB answer (RFC 3501 6.3.9), in mailbox-name order.

    - Subscribed names matching the pattern, whether or not they exist (RFC 3501 6.3.9: the
      server must not drop a subscription because its mailbox is gone). One that does not
      exist is flagged \\Noselect (Dovecot does the same for non-extended commands).
    - With a pattern ending in "%", a level that is not subscribed but has a subscribed
      descendant the pattern does not reach is returned with \\Noselect ("foo" for
      "foo/bar", RFC 3501 6.3.9). Like Dovecot, only then: LSUB "" "foo" alone returns
      nothing for "foo/bar".
    - No child attributes (RFC 3501 allows LSUB flags to differ from LIST's; clients ask LIST);
      the special-use attribute of an existing mailbox, as Dovecot sends it for Outlook.
    - An empty pattern matches nothing (the delimiter query is LIST's only).
    """
    if pattern == "":
        return []
    pat = canonical_pattern(reference, pattern)
    infos = _by_name(mailboxes)
    subscribed = _subscribed(infos, subscriptions)
    hidden_below: set[str] = set()
    if pat.endswith("%"):
        for name in subscribed:
            if not matches(pat, name):
                hidden_below.update(_ancestors(name))
    candidates = subscribed | hidden_below
    out: list[Entry] = []
    for name in sorted((n for n in candidates if matches(pat, n)), key=_order):
        info = infos.get(name)
        attrs: tuple[str, ...]
        if name not in subscribed or info is None:
            attrs = (NOSELECT,)
        elif info.special_use:
            attrs = (info.special_use,)
        else:
            attrs = ()
        out.append(Entry(name, attrs, exists=info is not None))
    return out
