"""Every fuzz harness under hypothesis, in the normal suite: random soups of the target's
protocol words (fuzz/dict) and raw bytes must pass the same checks the fuzzers apply (only the
documented protocol errors, round trips, bounded buffers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.seeds import SEEDS
from fuzz.targets import TARGETS


def _words(path: Path | None) -> list[bytes]:
    if path is None:
        return []
    words = []
    for line in path.read_text().splitlines():
        if line.startswith('"'):
            words.append(ast.literal_eval("b" + line))
    return words


def _inputs(name: str) -> st.SearchStrategy[bytes]:
    target = TARGETS[name]
    words = _words(target.dictionary)
    pieces = st.sampled_from(words or [b""]) | st.binary(max_size=12) | st.sampled_from(
        [b"\r\n", b"\n", b" ", b"\x00", b"\xff", b"{3}\r\n", b"\r\n.\r\n"])
    soup = st.lists(pieces, max_size=40).map(b"".join)
    seeds = SEEDS[name]
    # A seed with a piece of soup spliced in keeps the structure the seed reaches.
    spliced = st.builds(
        lambda seed, at, extra: seed[:at % (len(seed) + 1)] + extra + seed[at % (len(seed) + 1):],
        st.sampled_from(seeds), st.integers(0, 10_000), soup,
    )
    # Any 6 bytes are a valid steering header of the stream harnesses (harness/_support.py).
    body = soup | spliced | st.binary(max_size=300)
    return body.filter(lambda data: len(data) <= target.max_len)


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_harness_holds_on_generated_input(name: str, data: st.DataObject) -> None:
    TARGETS[name].load()(data.draw(_inputs(name)))
