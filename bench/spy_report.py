"""`python -m bench.spy_report FILE [--grep TEXT] [--top N]`: hotspots from a `--py-spy` file.

py-spy's raw output is one line per distinct stack: `frame;frame;...;frame count`, a frame
being `function (path:line)`. This prints, over the samples whose stack contains every --grep
text (e.g. `--grep _expunge` for the EXPUNGE command only):
- by mailwright function: each sample charged to the innermost frame in mailwright's own code
  (so time in sqlite3, email or asyncio is charged to the mailwright function that called it),
  as `file:function`;
- by leaf: the innermost frame of all (where the CPU actually was);
- inclusive: the share of samples with the function anywhere on the stack.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")


def short(frame: str, lines: bool = False) -> str:
    found = FRAME.match(frame)
    if not found:
        return frame
    path = found.group("path") if not lines else frame[frame.rfind("(") + 1 : -1]
    for marker in ("/src/", "/site-packages/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{found.group('func')}"


def load(path: Path, grep: list[str], lines: bool = False) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or not all(text in stack for text in grep):
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        stacks.append(([short(f, lines) for f in frames], int(count)))
    return stacks


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.spy_report", description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--grep", action="append", default=[], help="keep stacks with this text")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--lines", action="store_true", help="keep line numbers (file:line:func)")
    args = parser.parse_args()
    stacks = load(args.file, args.grep, args.lines)
    total = sum(count for _, count in stacks)
    if not total:
        raise SystemExit("no samples match")
    own: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        mine = [f for f in frames if f.startswith("mailwright/")]
        outside = f"(outside mailwright: {frames[0] if frames else '?'})"
        own[mine[-1] if mine else outside] += count
        leaf[frames[-1] if frames else "?"] += count
        for frame in set(frames):
            inclusive[frame] += count
    print(f"{total} samples (at 250/s: {total / 250:.1f} s of thread time), grep {args.grep}")
    for title, counter in (
        ("by innermost mailwright function", own),
        ("by leaf frame", leaf),
        ("inclusive", inclusive),
    ):
        print(f"\n{title}:")
        for name, count in counter.most_common(args.top):
            print(f"  {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
