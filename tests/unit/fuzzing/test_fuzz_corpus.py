"""The committed fuzz corpus (and any saved crash) through every harness, without atheris, so
that the normal suite keeps every input the fuzzers ever found interesting passing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from fuzz.__main__ import corpus_files
from fuzz.targets import FUZZ_DIR, TARGETS


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_corpus_replays_clean(name: str) -> None:
    target = TARGETS[name]
    harness = target.load()
    files = corpus_files(target)
    assert len(files) >= 3, f"fuzz/corpus/{name} lost its seeds (python -m fuzz --seed)"
    for path in files:
        data = path.read_bytes()
        assert len(data) <= target.max_len, path
        try:
            harness(data)
        except Exception as exc:  # report which input, then fail with its traceback
            raise AssertionError(f"{path.relative_to(FUZZ_DIR)}: {exc!r}") from exc


def test_every_target_has_a_dictionary() -> None:
    assert {n for n, t in TARGETS.items() if t.dictionary is None} == set()


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                    reason="atheris is not installed (pip install -e '.[fuzz]')")
def test_runner_fuzzes_a_target_for_real() -> None:
    """`python -m fuzz` end to end for one target: a subprocess under libFuzzer, the table."""
    proc = subprocess.run(
        [sys.executable, "-m", "fuzz", "mutf7", "--runs", "2000"],
        cwd=FUZZ_DIR.parent, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "mutf7" in proc.stdout
    assert "executions" in proc.stdout
