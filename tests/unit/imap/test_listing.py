"""LIST/LSUB answers (RFC 9051 6.3.9, RFC 3501 6.3.8-6.3.9, RFC 5258, RFC 6154).

Most tables reproduce the RFC examples. Our answers differ from the RFC text in known ways only:
we always send \\HasChildren/\\HasNoChildren (RFC 5258 4 allows it) and no \\Marked; names come
in mailbox-name order; each difference is noted where it appears.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mailwright.imap.listing import (
    Entry,
    canonical_name,
    canonical_pattern,
    list_mailboxes,
    lsub_mailboxes,
    matches,
)
from mailwright.store.api import MailboxInfo


def boxes(*names: str, special: dict[str, str] | None = None) -> list[MailboxInfo]:
    special = special or {}
    return [MailboxInfo(i + 1, name, 1000 + i, 1, 1, special.get(name), False)
            for i, name in enumerate(names)]


def show(entries: Sequence[Entry]) -> list[str]:
    """Entries as RFC-style lines: "(\\A \\B) name" plus " CHILDINFO" when it is sent."""
    return [f"({' '.join(e.attributes)}) {e.name}" + (" CHILDINFO" if e.child_info else "")
            for e in entries]


# ----- matches() and canonical_pattern() -----------------------------------------------------

MATCHES = [
    ("*", "Fruit/Apple", True),
    ("%", "Fruit/Apple", False),
    ("%", "Fruit", True),
    ("Fruit/%", "Fruit/Apple", True),
    ("Fruit/%", "Fruit", False),
    ("Fruit/%", "Fruit/Apple/Red", False),
    ("Fruit/*", "Fruit/Apple/Red", True),
    ("Fruit*", "Fruit", True),  # "*" matches zero characters
    ("F%t", "Fruit", True),
    ("F%t", "Fr/it", False),
    ("*2", "foo2/bar2", True),
    ("*2", "foo2/bar1", False),
    ("%/%", "a/b", True),
    ("%/%", "a", False),
    ("fruit", "Fruit", False),  # other names are case-sensitive
    ("", "", True),
    ("", "a", False),
    ("a.b", "aXb", False),  # regex characters are literal
    ("a+b", "a+b", True),
    ("**%%", "x/y", True),
    # INBOX is case-insensitive (RFC 9051 5.1), only in its own characters.
    ("inbox", "INBOX", True),
    ("InBoX*", "INBOX/Sub", True),
    ("inbox/sub", "INBOX/sub", True),
    ("inbox/SUB", "INBOX/sub", False),
    ("i%", "INBOX", True),
    ("i*", "INBOX/x", True),
    ("*x", "INBOX", True),
    ("INBOX", "inbox", True),  # a name not yet canonical is still INBOX
    ("inboxfoo", "INBOXfoo", False),  # not INBOX: case-sensitive
    ("\u0131nbox", "INBOX", False),  # dotless i upper-cases to I in Python, not in IMAP
    ("inbox", "Inbox2", False),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), MATCHES)
def test_matches_wildcards_and_inbox_case(pattern: str, name: str, expected: bool) -> None:
    assert matches(pattern, name) is expected


@pytest.mark.parametrize(("reference", "pattern", "expected"), [
    # RFC 3501 6.3.8 examples, with our "/" delimiter.
    ("archive/", "%", "archive/%"),
    ("news/", "comp/mail/*", "news/comp/mail/*"),
    ("", "*", "*"),
    ("foo", "/%", "foo/%"),  # implementation-dependent: concatenated, as Dovecot does
])
def test_canonical_pattern_joins_reference_and_pattern(reference: str, pattern: str,
                                                       expected: str) -> None:
    assert canonical_pattern(reference, pattern) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("inbox", "INBOX"), ("Inbox/Sub", "INBOX/Sub"), ("INBOX", "INBOX"),
    ("inboxes", "inboxes"), ("\u0131nbox", "\u0131nbox"), ("a/inbox", "a/inbox"),
])
def test_canonical_name_spells_inbox_level(name: str, expected: str) -> None:
    assert canonical_name(name) == expected


# ----- the delimiter query (RFC 3501 6.3.8, RFC 9051 6.3.9) ----------------------------------

def test_empty_pattern_returns_delimiter_entry() -> None:
    assert list_mailboxes(boxes("INBOX"), [], "", [""]) == [
        Entry("", ("\\Noselect",), exists=False)]


@pytest.mark.parametrize(("reference", "root"), [
    ("/usr/staff/jones", "/"),  # RFC 3501 6.3.8 example
    ("news/comp/mail/misc", "news/"),  # RFC 3501 "#news.comp.mail.misc" with "/"
    ("Fruit", ""),
])
def test_empty_pattern_returns_root_of_reference(reference: str, root: str) -> None:
    assert list_mailboxes(boxes("INBOX"), [], reference, [""]) == [
        Entry(root, ("\\Noselect",), exists=False)]


def test_extended_list_ignores_empty_pattern() -> None:
    # RFC 5258 3: an extended LIST must not treat "" as the delimiter query.
    mb = boxes("INBOX", "Tofu")
    assert show(list_mailboxes(mb, [], "", ["", "Tofu"])) == ["(\\HasNoChildren) Tofu"]
    assert list_mailboxes(mb, ["Tofu"], "", [""], ["SUBSCRIBED"]) == []
    assert list_mailboxes(mb, [], "", [""], return_options=["CHILDREN"]) == []


# ----- RFC 5258 section 5 --------------------------------------------------------------------

FRUIT = boxes("INBOX", "Fruit", "Fruit/Apple", "Fruit/Banana", "Tofu", "Vegetable",
              "Vegetable/Broccoli", "Vegetable/Corn")
# Example 2: "Fruit/Peach" is subscribed but does not exist.
FRUIT_SUBS = ["inbox", "Fruit/Banana", "Fruit/Peach", "Vegetable", "Vegetable/Broccoli"]

FRUIT_SUBSCRIBED = [
    "(\\HasNoChildren \\Subscribed) INBOX",
    "(\\HasNoChildren \\Subscribed) Fruit/Banana",
    "(\\NonExistent \\HasNoChildren \\Subscribed) Fruit/Peach",
    "(\\HasChildren \\Subscribed) Vegetable",
    "(\\HasNoChildren \\Subscribed) Vegetable/Broccoli",
]
FRUIT_TOP = [
    "(\\HasNoChildren) INBOX",
    "(\\HasChildren) Fruit",
    "(\\HasNoChildren) Tofu",
    "(\\HasChildren) Vegetable",
]


def test_rfc5258_example1_whole_hierarchy() -> None:
    assert show(list_mailboxes(FRUIT, FRUIT_SUBS, "", ["*"])) == [
        "(\\HasNoChildren) INBOX",
        "(\\HasChildren) Fruit",
        "(\\HasNoChildren) Fruit/Apple",
        "(\\HasNoChildren) Fruit/Banana",
        "(\\HasNoChildren) Tofu",
        "(\\HasChildren) Vegetable",
        "(\\HasNoChildren) Vegetable/Broccoli",
        "(\\HasNoChildren) Vegetable/Corn",
    ]


def test_rfc5258_example2_subscribed_includes_nonexistent() -> None:
    entries = list_mailboxes(FRUIT, FRUIT_SUBS, "", ["*"], ["SUBSCRIBED"])
    assert show(entries) == FRUIT_SUBSCRIBED
    assert [e.exists for e in entries] == [True, True, False, True, True]


def test_rfc5258_example3_children() -> None:
    assert show(list_mailboxes(FRUIT, FRUIT_SUBS, "", ["%"], [], ["CHILDREN"])) == FRUIT_TOP


def test_rfc5258_example4_remote_changes_nothing_here() -> None:
    # We have no remote mailboxes, so no "Bread" or "Meat".
    assert show(list_mailboxes(FRUIT, FRUIT_SUBS, "", ["%"], ["REMOTE"], ["CHILDREN"])) \
        == FRUIT_TOP


def test_rfc5258_example5_remote_subscribed() -> None:
    assert show(list_mailboxes(FRUIT, FRUIT_SUBS, "", ["*"], ["REMOTE", "SUBSCRIBED"])) \
        == FRUIT_SUBSCRIBED


def test_rfc5258_example6_return_subscribed_adds_no_names() -> None:
    # Unlike example 5, the non-existent "Fruit/Peach" is not listed.
    assert show(list_mailboxes(FRUIT, FRUIT_SUBS, "", ["*"], ["REMOTE"], ["SUBSCRIBED"])) == [
        "(\\HasNoChildren \\Subscribed) INBOX",
        "(\\HasChildren) Fruit",
        "(\\HasNoChildren) Fruit/Apple",
        "(\\HasNoChildren \\Subscribed) Fruit/Banana",
        "(\\HasNoChildren) Tofu",
        "(\\HasChildren \\Subscribed) Vegetable",
        "(\\HasNoChildren \\Subscribed) Vegetable/Broccoli",
        "(\\HasNoChildren) Vegetable/Corn",
    ]


def test_rfc5258_example7_multiple_patterns() -> None:
    mb = boxes("INBOX", "Drafts", "Sent", "Sent/March2004", "Sent/December2003",
               "Sent/August2004", "Trash")
    assert show(list_mailboxes(mb, [], "", ["INBOX", "Drafts", "Sent/%"])) == [
        "(\\HasNoChildren) INBOX",
        "(\\HasNoChildren) Drafts",
        "(\\HasNoChildren) Sent/August2004",  # name order, not the RFC's
        "(\\HasNoChildren) Sent/December2003",
        "(\\HasNoChildren) Sent/March2004",
    ]


def test_multiple_matching_patterns_return_a_name_once() -> None:
    entries = list_mailboxes(FRUIT, [], "", ["*", "Fruit", "F%", "%"])
    assert [e.name for e in entries] == [e.name for e in list_mailboxes(FRUIT, [], "", ["*"])]


FOO = boxes("INBOX", "Foo", "Foo/Bar", "Foo/Baz", "Moo")


def test_rfc5258_example8_children() -> None:
    assert show(list_mailboxes(FOO, [], "", ["%"], [], ["CHILDREN"])) == [
        "(\\HasNoChildren) INBOX", "(\\HasChildren) Foo", "(\\HasNoChildren) Moo"]


def test_rfc5258_example8a_recursivematch_returns_unsubscribed_parent() -> None:
    subs = ["Foo/Baz"]
    assert show(list_mailboxes(FOO, subs, "", ["*"], ["SUBSCRIBED"])) == [
        "(\\HasNoChildren \\Subscribed) Foo/Baz"]
    assert list_mailboxes(FOO, subs, "", ["%"], ["SUBSCRIBED"]) == []
    entries = list_mailboxes(FOO, subs, "", ["%"], ["SUBSCRIBED", "RECURSIVEMATCH"])
    # RFC: `* LIST () "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))`
    assert show(entries) == ["(\\HasChildren) Foo CHILDINFO"]
    assert entries[0].exists


def test_rfc5258_example8a1_subscribed_parent_keeps_childinfo() -> None:
    entries = list_mailboxes(FOO, ["Foo", "Foo/Baz"], "", ["%"], ["SUBSCRIBED", "RECURSIVEMATCH"])
    assert show(entries) == ["(\\HasChildren \\Subscribed) Foo CHILDINFO"]


def test_rfc5258_example8a2_nonexistent_parent() -> None:
    mb = boxes("INBOX", "Foo/Bar", "Foo/Baz", "Moo")
    entries = list_mailboxes(mb, ["Foo/Baz"], "", ["%"], ["SUBSCRIBED", "RECURSIVEMATCH"])
    # RFC: (\NonExistent) + CHILDINFO; Foo/Bar and Foo/Baz exist, hence \HasChildren.
    assert show(entries) == ["(\\NonExistent \\HasChildren) Foo CHILDINFO"]
    assert not entries[0].exists


def test_rfc5258_example8b_nothing_subscribed() -> None:
    assert list_mailboxes(FOO, [], "", ["%"], ["SUBSCRIBED", "RECURSIVEMATCH"]) == []


def test_rfc5258_example8c_no_childinfo_without_subscribed_children() -> None:
    entries = list_mailboxes(FOO, ["Foo", "Moo"], "", ["%"], ["SUBSCRIBED", "RECURSIVEMATCH"],
                             ["CHILDREN"])
    assert show(entries) == ["(\\HasChildren \\Subscribed) Foo",
                             "(\\HasNoChildren \\Subscribed) Moo"]


NUMBERED = boxes("INBOX", "foo2", "foo2/bar1", "foo2/bar2", "baz2", "baz2/bar2", "baz2/bar22",
                 "baz2/bar222", "eps2", "eps2/mamba", "qux2/bar2")
NUMBERED_SUBS = ["foo2/bar1", "foo2/bar2", "baz2/bar2", "baz2/bar22", "baz2/bar222", "eps2",
                 "eps2/mamba", "qux2/bar2"]


def test_rfc5258_example9_subscriptions() -> None:
    assert [e.name for e in list_mailboxes(NUMBERED, NUMBERED_SUBS, "", ["*"], ["SUBSCRIBED"])] \
        == sorted(NUMBERED_SUBS)


def test_rfc5258_example9_childinfo_only_where_a_child_is_hidden() -> None:
    entries = list_mailboxes(NUMBERED, NUMBERED_SUBS, "", ["*2"],
                             ["RECURSIVEMATCH", "SUBSCRIBED"])
    # The RFC's first answer: no "baz2" or "qux2", whose subscribed children are all listed
    # (RFC 5258 3.5: servers SHOULD suppress redundant CHILDINFO responses).
    assert show(entries) == [
        "(\\HasNoChildren \\Subscribed) baz2/bar2",
        "(\\HasNoChildren \\Subscribed) baz2/bar22",
        "(\\HasNoChildren \\Subscribed) baz2/bar222",
        "(\\HasChildren \\Subscribed) eps2 CHILDINFO",
        "(\\HasChildren) foo2 CHILDINFO",
        "(\\HasNoChildren \\Subscribed) foo2/bar2",
        "(\\HasNoChildren \\Subscribed) qux2/bar2",
    ]


def test_rfc5258_example9_star_keeps_childinfo_on_listed_names_only() -> None:
    entries = list_mailboxes(NUMBERED, NUMBERED_SUBS, "", ["*"], ["RECURSIVEMATCH", "SUBSCRIBED"])
    # The RFC also lists "foo2" and "baz2" (unsubscribed, every subscribed child listed) and
    # calls that redundant; we follow its 3.3/3.5 rule and leave them out. "eps2" is listed
    # for itself and still carries CHILDINFO, as in the RFC.
    assert show(entries) == [
        "(\\HasNoChildren \\Subscribed) baz2/bar2",
        "(\\HasNoChildren \\Subscribed) baz2/bar22",
        "(\\HasNoChildren \\Subscribed) baz2/bar222",
        "(\\HasChildren \\Subscribed) eps2 CHILDINFO",
        "(\\HasNoChildren \\Subscribed) eps2/mamba",
        "(\\HasNoChildren \\Subscribed) foo2/bar1",
        "(\\HasNoChildren \\Subscribed) foo2/bar2",
        "(\\HasNoChildren \\Subscribed) qux2/bar2",
    ]


def test_rfc5258_example10_childinfo_without_haschildren() -> None:
    mb = boxes("INBOX", "foo")
    subs = ["foo/bar"]
    assert show(list_mailboxes(mb, subs, "", ["foo", "foo/*"])) == ["(\\HasNoChildren) foo"]
    assert show(list_mailboxes(mb, subs, "", ["foo/*"], ["SUBSCRIBED"])) == [
        "(\\NonExistent \\HasNoChildren \\Subscribed) foo/bar"]
    assert show(list_mailboxes(mb, subs, "", ["foo"], ["SUBSCRIBED", "RECURSIVEMATCH"],
                               ["CHILDREN"])) == ["(\\HasNoChildren) foo CHILDINFO"]


MUSIC = boxes("INBOX", "music/rock")


def test_rfc5258_example11_missing_parent_level() -> None:
    # `LIST () "" %`: extended, so \NonExistent (IMAP4rev2 says the same).
    assert show(list_mailboxes(MUSIC, [], "", ["%"], return_options=["CHILDREN"])) == [
        "(\\HasNoChildren) INBOX", "(\\NonExistent \\HasChildren) music"]
    entries = list_mailboxes(MUSIC, [], "", ["%"], imap4rev2=True)
    assert show(entries) == ["(\\HasNoChildren) INBOX", "(\\NonExistent \\HasChildren) music"]
    assert not entries[1].exists
    # a3.1: "music/rock" is listed itself, so "music" adds nothing.
    assert show(list_mailboxes(MUSIC, [], "", ["%", "music/rock"])) == [
        "(\\HasNoChildren) INBOX", "(\\HasNoChildren) music/rock"]


def test_missing_parent_level_is_noselect_in_imap4rev1() -> None:
    # RFC 3501 6.3.8: "%" returns levels that are not mailboxes with \Noselect.
    assert show(list_mailboxes(MUSIC, [], "", ["%"])) == [
        "(\\HasNoChildren) INBOX", "(\\Noselect \\HasChildren) music"]
    assert show(list_mailboxes(MUSIC, [], "", ["m%"])) == ["(\\Noselect \\HasChildren) music"]


def test_missing_parent_level_not_listed_for_star() -> None:
    assert show(list_mailboxes(MUSIC, [], "", ["*"])) == [
        "(\\HasNoChildren) INBOX", "(\\HasNoChildren) music/rock"]


def test_subscription_of_nonexistent_child_does_not_make_parent_level() -> None:
    # Plain LIST lists mailboxes: a dangling subscription is not one (RFC 5258 example 6).
    assert show(list_mailboxes(boxes("INBOX"), ["gone/child"], "", ["%"], [], ["SUBSCRIBED"])) \
        == ["(\\HasNoChildren) INBOX"]


def test_subscribed_selection_without_recursivematch_adds_no_parents() -> None:
    assert list_mailboxes(boxes("INBOX"), ["gone/child"], "", ["%"], ["SUBSCRIBED"]) == []


# ----- RFC 6154 (SPECIAL-USE) ----------------------------------------------------------------

SPECIAL = boxes("INBOX", "ToDo", "Projects", "Projects/Foo", "SentMail", "MyDrafts", "Trash",
                special={"SentMail": "\\Sent", "MyDrafts": "\\Drafts", "Trash": "\\Trash"})
SPECIAL_TOP = [
    "(\\HasNoChildren) INBOX",
    "(\\HasNoChildren \\Drafts) MyDrafts",
    "(\\HasChildren) Projects",
    "(\\HasNoChildren \\Sent) SentMail",
    "(\\HasNoChildren) ToDo",
    "(\\HasNoChildren \\Trash) Trash",
]


def test_rfc6154_example_special_use_attributes_always_sent() -> None:
    assert show(list_mailboxes(SPECIAL, [], "", ["%"])) == SPECIAL_TOP


def test_rfc6154_example_return_special_use() -> None:
    assert show(list_mailboxes(SPECIAL, [], "", ["%"], [], ["SPECIAL-USE"])) == SPECIAL_TOP


def test_rfc6154_example_select_special_use() -> None:
    assert show(list_mailboxes(SPECIAL, [], "", ["*"], ["SPECIAL-USE"])) == [
        "(\\HasNoChildren \\Drafts) MyDrafts",
        "(\\HasNoChildren \\Sent) SentMail",
        "(\\HasNoChildren \\Trash) Trash",
    ]


def test_special_use_and_subscribed_selections_combine() -> None:
    entries = list_mailboxes(SPECIAL, ["SentMail", "ToDo", "Gone"], "", ["*"],
                             ["SPECIAL-USE", "SUBSCRIBED"])
    assert show(entries) == ["(\\HasNoChildren \\Sent \\Subscribed) SentMail"]


# ----- options -------------------------------------------------------------------------------

@pytest.mark.parametrize("selection", [
    ["RECURSIVEMATCH"], ["REMOTE", "RECURSIVEMATCH"], ["SPECIAL-USE", "RECURSIVEMATCH"],
])
def test_recursivematch_without_subscribed_is_an_error(selection: list[str]) -> None:
    # RFC 5258 3.1 and 6; SPECIAL-USE is a list-select-independent-opt (RFC 6154 6).
    with pytest.raises(ValueError, match="RECURSIVEMATCH needs another selection option"):
        list_mailboxes(FRUIT, [], "", ["*"], selection)


def test_unknown_options_are_errors() -> None:
    # RFC 5258 3: "A server MUST respond to options it does not recognize with a BAD".
    with pytest.raises(ValueError, match="selection option"):
        list_mailboxes(FRUIT, [], "", ["*"], ["BOGUS"])
    with pytest.raises(ValueError, match="return option"):
        list_mailboxes(FRUIT, [], "", ["*"], [], ["BOGUS"])


def test_options_are_case_insensitive_and_may_repeat() -> None:
    assert list_mailboxes(FRUIT, FRUIT_SUBS, "", ["*"], ["subscribed", "SUBSCRIBED"]) \
        == list_mailboxes(FRUIT, FRUIT_SUBS, "", ["*"], ["SUBSCRIBED"])


def test_status_return_option_is_accepted() -> None:
    assert show(list_mailboxes(FRUIT, [], "", ["%"], [], ["STATUS"])) == FRUIT_TOP


def test_subscribed_attribute_only_when_asked_even_in_imap4rev2() -> None:
    # RFC 9051 6.3.9.2: \Subscribed comes with the SUBSCRIBED option only.
    assert show(list_mailboxes(FRUIT, FRUIT_SUBS, "", ["%"], imap4rev2=True)) == FRUIT_TOP


# ----- INBOX, references, ordering ---------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "names"), [
    ("inbox", ["INBOX"]), ("InBoX", ["INBOX"]), ("INBOX", ["INBOX"]),
    ("i%", ["INBOX"]),  # "Inboxes" is not INBOX: case-sensitive
    ("I*", ["INBOX", "Inboxes"]), ("%", ["INBOX", "Inboxes"]),
])
def test_inbox_matches_in_any_case(pattern: str, names: list[str]) -> None:
    entries = list_mailboxes(boxes("INBOX", "Inboxes"), [], "", [pattern])
    assert [e.name for e in entries] == names


def test_inbox_children_through_lowercase_reference() -> None:
    mb = boxes("INBOX", "INBOX/Sub", "INBOX/Sub/Deep", "Other")
    assert show(list_mailboxes(mb, [], "inbox/", ["%"])) == ["(\\HasChildren) INBOX/Sub"]
    assert [e.name for e in list_mailboxes(mb, [], "", ["InBoX*"])] == [
        "INBOX", "INBOX/Sub", "INBOX/Sub/Deep"]


def test_reference_is_prefixed_to_pattern() -> None:
    assert [e.name for e in list_mailboxes(FRUIT, [], "Fruit/", ["%"])] == [
        "Fruit/Apple", "Fruit/Banana"]
    assert [e.name for e in list_mailboxes(FRUIT, [], "Fruit", ["/*"])] == [
        "Fruit/Apple", "Fruit/Banana"]


def test_order_is_inbox_first_then_parents_before_children() -> None:
    mb = boxes("Zoo", "a b", "a", "a/b", "INBOX/x", "INBOX", "Archive")
    assert [e.name for e in list_mailboxes(mb, [], "", ["*"])] == [
        "INBOX", "INBOX/x", "Archive", "Zoo", "a", "a/b", "a b"]


def test_subscriptions_in_other_inbox_case_are_inbox() -> None:
    entries = list_mailboxes(boxes("INBOX"), ["inbox"], "", ["*"], ["SUBSCRIBED"])
    assert show(entries) == ["(\\HasNoChildren \\Subscribed) INBOX"]


def test_store_subscribed_flag_counts_as_subscription() -> None:
    mb = [MailboxInfo(1, "INBOX", 1, 1, 1, None, True)]
    assert show(list_mailboxes(mb, [], "", ["*"], ["SUBSCRIBED"])) == [
        "(\\HasNoChildren \\Subscribed) INBOX"]


# ----- LSUB (RFC 3501 6.3.9) -------------------------------------------------------------------

NEWS = boxes("INBOX", "news", "news/comp", "news/comp/mail", "news/comp/mail/mime",
             "news/comp/mail/misc")
NEWS_SUBS = ["news/comp/mail/mime", "news/comp/mail/misc"]


def test_rfc3501_lsub_example_star() -> None:
    # RFC 3501: LSUB "#news." "comp.mail.*", with "/" for ".".
    assert show(lsub_mailboxes(NEWS, NEWS_SUBS, "news/", "comp/mail/*")) == [
        "() news/comp/mail/mime", "() news/comp/mail/misc"]


def test_rfc3501_lsub_example_percent_gives_noselect_level() -> None:
    # RFC 3501: LSUB "#news." "comp.%" answers `* LSUB (\NoSelect) "." #news.comp.mail`.
    entries = lsub_mailboxes(NEWS, NEWS_SUBS, "news/", "comp/%")
    assert show(entries) == ["(\\Noselect) news/comp/mail"]
    assert entries[0].exists  # the mailbox exists; it is just not subscribed


def test_lsub_foo_bar_percent_returns_foo_not_foo_bar() -> None:
    mb = boxes("INBOX", "foo", "foo/bar")
    assert show(lsub_mailboxes(mb, ["foo/bar"], "", "%")) == ["(\\Noselect) foo"]
    assert show(lsub_mailboxes(mb, ["foo/bar"], "", "*")) == ["() foo/bar"]
    # As in Dovecot, the level only appears for a pattern ending in "%".
    assert lsub_mailboxes(mb, ["foo/bar"], "", "foo") == []


def test_lsub_subscribed_level_is_listed_normally() -> None:
    mb = boxes("INBOX", "foo", "foo/bar")
    assert show(lsub_mailboxes(mb, ["foo", "foo/bar"], "", "%")) == ["() foo"]


def test_lsub_nonexistent_subscription_is_noselect() -> None:
    entries = lsub_mailboxes(FRUIT, FRUIT_SUBS, "", "*")
    assert show(entries) == [
        "() INBOX", "() Fruit/Banana", "(\\Noselect) Fruit/Peach", "() Vegetable",
        "() Vegetable/Broccoli"]
    assert [e.exists for e in entries] == [True, True, False, True, True]
    assert not any(e.child_info for e in entries)


def test_lsub_sends_special_use() -> None:
    assert show(lsub_mailboxes(SPECIAL, ["SentMail"], "", "*")) == ["(\\Sent) SentMail"]


def test_lsub_empty_pattern_is_empty() -> None:
    assert lsub_mailboxes(FRUIT, FRUIT_SUBS, "", "") == []


# ----- properties ------------------------------------------------------------------------------

LEVELS = st.sampled_from(["a", "b", "A", "ab", "inbox", "INBOX", "x y", "2", "\u00e9"])
NAMES = st.lists(LEVELS, min_size=1, max_size=3).map("/".join)
PATTERNS = st.text(alphabet="ab%*/Ixnox2", max_size=8)


def reference_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


@given(st.text(max_size=40), st.text(max_size=40))
def test_matches_never_raises(pattern: str, name: str) -> None:
    assert isinstance(matches(pattern, name), bool)


@given(st.text(max_size=60))
def test_star_matches_everything(name: str) -> None:
    assert matches("*", name)


@given(PATTERNS, NAMES)
def test_matches_agrees_with_regex_outside_inbox(pattern: str, name: str) -> None:
    assume(canonical_name(name).split("/")[0] != "INBOX")
    assert matches(pattern, name) is bool(reference_regex(pattern).fullmatch(name))


@given(st.text(alphabet="%ab", max_size=10), NAMES)
def test_percent_never_crosses_delimiter(pattern: str, name: str) -> None:
    if "/" in name:
        assert not matches(pattern, name)


OPTIONS = st.sampled_from([
    ((), ()), ((), ("CHILDREN",)), (("SUBSCRIBED",), ()), (("SUBSCRIBED", "RECURSIVEMATCH"), ()),
    (("SPECIAL-USE",), ()), ((), ("SUBSCRIBED",)), (("REMOTE",), ("SPECIAL-USE",)),
])


@given(st.lists(NAMES, max_size=8), st.lists(NAMES, max_size=5),
       st.lists(PATTERNS, min_size=1, max_size=3), OPTIONS, st.booleans())
def test_each_name_at_most_once_in_order(names: list[str], subs: list[str],
                                         patterns: list[str],
                                         options: tuple[tuple[str, ...], tuple[str, ...]],
                                         rev2: bool) -> None:
    mb = [MailboxInfo(i, n, i, 1, 1, "\\Sent" if i % 3 == 0 else None, False)
          for i, n in enumerate(dict.fromkeys(canonical_name(n) for n in names))]
    entries = list_mailboxes(mb, subs, "", patterns, *options, imap4rev2=rev2)
    listed = [e.name for e in entries]
    assert len(listed) == len(set(listed))
    existing = {m.name for m in mb}
    for e in entries:
        assert e.exists is (e.name in existing)
        if e.name == "":  # the delimiter query's answer
            assert patterns == [""]
            assert entries == [Entry("", ("\\Noselect",), exists=False)]
            continue
        assert ("\\HasChildren" in e.attributes) != ("\\HasNoChildren" in e.attributes)
        assert not ("\\NonExistent" in e.attributes and "\\Noselect" in e.attributes)
    lsub = [e.name for e in lsub_mailboxes(mb, subs, "", patterns[0])]
    assert len(lsub) == len(set(lsub))


@given(st.lists(NAMES, max_size=8), st.lists(NAMES, max_size=5))
def test_star_lists_exactly_the_mailboxes_and_subscriptions(names: list[str],
                                                           subs: list[str]) -> None:
    mb = boxes(*dict.fromkeys(canonical_name(n) for n in names))
    existing = {m.name for m in mb}
    assert {e.name for e in list_mailboxes(mb, subs, "", ["*"])} == existing
    subscribed = {canonical_name(s) for s in subs}
    assert {e.name for e in list_mailboxes(mb, subs, "", ["*"], ["SUBSCRIBED"])} == subscribed
    assert {e.name for e in lsub_mailboxes(mb, subs, "", "*")} == subscribed
