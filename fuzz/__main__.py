"""`python -m fuzz [TARGET ...] [--seconds N] [--runs N] [--smoke] [--merge]`: fuzz each target.

Each target runs under atheris in its own subprocess (fuzz/worker.py) on its committed corpus
(read only) plus a git-ignored scratch directory (fuzz/.work/<target>/) where libFuzzer writes
the new interesting inputs; `--merge` then folds those that add coverage into the corpus. A
crashing (or hanging) input is saved under fuzz/crashes/ and the command exits 1.

Other forms: `--replay` runs the committed corpus through every harness without atheris (what
the unit test does), `--seed` (re)writes the seed files from fuzz/seeds.py.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fuzz.targets import CRASH_DIR, FUZZ_DIR, TARGETS, WORK_DIR, Target

ROOT = FUZZ_DIR.parent
SMOKE_SECONDS = 3
# Per input: the parsers answer in microseconds; seconds mean a super-linear path (a bug).
INPUT_TIMEOUT = 10
RSS_LIMIT_MB = 2048

_STATUS = re.compile(rb"^#(\d+)\s+\S+\s+cov: (\d+) ft: (\d+) corp: (\d+)/", re.M)
_EXECUTED = re.compile(rb"^stat::number_of_executed_units: (\d+)", re.M)
_ARTIFACT = re.compile(rb"Test unit written to (\S+)")


@dataclass
class Outcome:
    target: str
    seconds: float
    executions: int
    cov: int
    ft: int
    corpus: int
    new: int
    crashes: list[str]
    returncode: int


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


def _worker(target: Target, *args: str) -> list[str]:
    return [sys.executable, "-m", "fuzz.worker", target.name, *args]


def run_target(target: Target, seconds: int, runs: int | None, console: Console) -> Outcome:
    work = WORK_DIR / target.name
    work.mkdir(parents=True, exist_ok=True)
    target.corpus.mkdir(parents=True, exist_ok=True)
    CRASH_DIR.mkdir(parents=True, exist_ok=True)
    before = set(os.listdir(work))
    args = [
        f"-max_total_time={seconds}", f"-max_len={target.max_len}",
        f"-timeout={INPUT_TIMEOUT}", f"-rss_limit_mb={RSS_LIMIT_MB}", "-print_final_stats=1",
        f"-artifact_prefix={CRASH_DIR}/{target.name}-",
    ]
    if runs is not None:
        args.append(f"-runs={runs}")
    if target.dictionary is not None:
        args.append(f"-dict={target.dictionary}")
    log_path = WORK_DIR / f"{target.name}.log"
    console.print(f"[bold]{target.name}[/]: {target.what} ({seconds} s)")
    t0 = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.run(
            _worker(target, *args, str(work), str(target.corpus)),
            cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT, check=False,
            timeout=seconds + 600,
        )
    elapsed = time.monotonic() - t0
    out = log_path.read_bytes()
    status = _STATUS.findall(out)
    executed = _EXECUTED.findall(out)
    last = status[-1] if status else (b"0", b"0", b"0", b"0")
    crashes = [a.decode() for a in _ARTIFACT.findall(out)]
    if proc.returncode != 0:
        if not crashes:
            crashes = ["(no artifact: see the log)"]
        console.print(f"[red]{target.name}: exit {proc.returncode}, log {log_path}[/]")
        console.print(_error_excerpt(out), markup=False, highlight=False)
    return Outcome(
        target=target.name,
        seconds=elapsed,
        executions=int(executed[-1]) if executed else int(last[0]),
        cov=int(last[1]),
        ft=int(last[2]),
        corpus=int(last[3]),
        new=len(set(os.listdir(work)) - before),
        crashes=crashes,
        returncode=proc.returncode,
    )


def _error_excerpt(log: bytes) -> str:
    """The traceback (or libFuzzer's error) of a failed run, without the input's hex dump."""
    lines = log.decode("utf-8", "replace").splitlines()
    marks = ("Uncaught Python exception", "ERROR: libFuzzer", "ALARM: working on")
    start = next((i for i, line in enumerate(lines) if any(m in line for m in marks)), None)
    if start is None:
        return "\n".join(lines[-20:])
    return "\n".join(lines[start : start + 30])


def merge(target: Target) -> int:
    """Fold the scratch inputs that add coverage into the committed corpus; returns how many."""
    before = len(os.listdir(target.corpus))
    subprocess.run(
        _worker(target, "-merge=1", f"-max_len={target.max_len}", str(target.corpus),
                str(WORK_DIR / target.name)),
        cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
    )
    return len(os.listdir(target.corpus)) - before


def write_seeds() -> int:
    from fuzz.seeds import SEEDS

    count = 0
    for name, seeds in SEEDS.items():
        folder = TARGETS[name].corpus
        folder.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seeds):
            (folder / f"seed-{i:02d}").write_bytes(seed)
            count += 1
    return count


def corpus_files(target: Target) -> list[Path]:
    """The committed corpus of `target` and its saved crashes, in a stable order."""
    files = sorted(p for p in target.corpus.glob("*") if p.is_file())
    files += sorted(CRASH_DIR.glob(f"{target.name}-*"))
    return files


def replay(names: list[str], console: Console) -> int:
    failures = 0
    for name in names:
        target = TARGETS[name]
        harness = target.load()
        files = corpus_files(target)
        for path in files:
            try:
                harness(path.read_bytes())
            except Exception as exc:  # every exception is a finding here
                failures += 1
                console.print(f"[red]{name} {path}: {type(exc).__name__}: {exc}[/]")
        console.print(f"{name}: {len(files)} inputs replayed")
    return 1 if failures else 0


def _table(outcomes: list[Outcome]) -> Table:
    table = Table(title="fuzzing (atheris / libFuzzer)")
    for col in ("target", "seconds", "executions", "exec/s", "cov", "ft", "corpus", "new",
                "crashes"):
        table.add_column(col, justify="left" if col == "target" else "right")
    for o in outcomes:
        rate = o.executions / o.seconds if o.seconds else 0.0
        table.add_row(
            o.target, f"{o.seconds:.0f}", f"{o.executions:,}", f"{rate:,.0f}", str(o.cov),
            str(o.ft), str(o.corpus), str(o.new),
            f"[red]{len(o.crashes)}[/]" if o.crashes else "0",
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help=f"default: all of {', '.join(TARGETS)}")
    parser.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    parser.add_argument("--runs", type=int, help="stop each target after this many inputs")
    parser.add_argument("--smoke", action="store_true",
                        help=f"{SMOKE_SECONDS} s per target, for CI")
    parser.add_argument("--merge", action="store_true",
                        help="add new coverage-increasing inputs to fuzz/corpus/")
    parser.add_argument("--replay", action="store_true",
                        help="run the committed corpus through the harnesses, no atheris")
    parser.add_argument("--seed", action="store_true", help="write fuzz/seeds.py to the corpus")
    args = parser.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    names = args.targets or list(TARGETS)
    console = Console(width=None if sys.stdout.isatty() else 110)
    if args.seed:
        console.print(f"{write_seeds()} seed files written")
        return 0
    if args.replay:
        return replay(names, console)
    seconds = SMOKE_SECONDS if args.smoke else args.seconds
    outcomes = [run_target(TARGETS[n], seconds, args.runs, console) for n in names]
    console.print(_table(outcomes))
    crashed = [o for o in outcomes if o.crashes]
    for o in crashed:
        for path in o.crashes:
            digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()[:12] \
                if Path(path).is_file() else "-"
            console.print(f"[red]crash[/] {o.target}: {path} ({digest}); "
                          f"replay: python -m fuzz.worker {o.target} {path}")
    if args.merge:
        for name in names:
            console.print(f"{name}: {merge(TARGETS[name])} inputs merged into the corpus")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
