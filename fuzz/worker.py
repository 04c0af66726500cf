"""One target under atheris: `python -m fuzz.worker TARGET [libFuzzer args and dirs]`.

The runner (`python -m fuzz`) starts this in a subprocess per target, so a crash or a hang of
one target ends only its own process, and libFuzzer's output can be read for the stats.
"""

from __future__ import annotations

import shlex
import sys

import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]

from fuzz.targets import TARGETS


def main() -> None:
    target = TARGETS[sys.argv[1]]
    # Feedback from str comparisons (startswith, ==). Atheris's "RegEx" hook is left off: in
    # 3.0.0 it fails on some bytes patterns (TypeError: can't concat str to bytes).
    atheris.enabled_hooks.add("str")
    with atheris.instrument_imports(include=["mailwright", "fuzz.harness", *target.instrument]):
        harness = target.load()
    # libFuzzer runs argv[0] through sh for -merge=1 (and -fork): name the interpreter and the
    # module, since this file is not executable itself.
    argv0 = shlex.join([sys.executable, "-m", "fuzz.worker", target.name])
    atheris.Setup([argv0, *sys.argv[2:]], harness)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
