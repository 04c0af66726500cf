"""Coverage-guided fuzzing of every parser that reads client or DNS input (issue 6).

`python -m fuzz [TARGET ...] [--seconds N]` runs each harness under atheris (libFuzzer) in a
subprocess and prints executions, coverage and crashes; docs/security.md says more.

Layout:
- `harness/`: one plain function per target, `f(data: bytes) -> None`. A harness catches only
  the errors its parser documents for bad input; any other exception (or a failed assert of an
  invariant) is a crash. They import no atheris, so pytest replays the corpus through them
  (tests/unit/fuzzing/test_fuzz_corpus.py).
- `targets.py`: the registry (name -> harness, input size, dictionary).
- `corpus/<target>/`: the committed corpus (seeds from `seeds.py`, plus what `--merge` kept).
- `dict/<target>.dict`: libFuzzer dictionaries of protocol words.
- `crashes/`: inputs that crashed a harness, written by the runner; each is a bug to fix.
"""
