"""Where the full tier's wall time goes: `VENUE_TEST_TIMELINE=/tmp/t.tsv scripts/test`, then
`.venv/bin/python bench/ci_timeline.py /tmp/t.tsv`: per worker, its busy seconds and when it
finished; the run's tail (the last minutes, when fewer workers are busy) and what ran in it."""

from __future__ import annotations

import sys
from collections import defaultdict


def main(path: str) -> None:
    with open(path) as lines:
        rows = [line.rstrip("\n").split("\t", 3) for line in lines]
    tests = [(w, float(a), float(b), n) for w, a, b, n in rows]
    t0 = min(a for _, a, _, _ in tests)
    end = max(b for _, _, b, _ in tests)
    busy: dict[str, float] = defaultdict(float)
    last: dict[str, float] = defaultdict(float)
    for worker, a, b, _ in tests:
        busy[worker] += b - a
        last[worker] = max(last[worker], b - t0)
    print(
        f"{len(tests)} tests, wall {end - t0:.0f} s, busy {sum(busy.values()):.0f} s "
        f"(ideal on {len(busy)} workers: {sum(busy.values()) / len(busy):.0f} s)"
    )
    for worker in sorted(busy):
        print(f"  {worker}: busy {busy[worker]:.0f} s, finished at {last[worker]:.0f} s")
    first_done = min(last.values())
    print(f"tail: from {first_done:.0f} s (first worker idle) to {end - t0:.0f} s; longest then:")
    tail = sorted((b - a, a - t0, n) for _, a, b, n in tests if b - t0 > first_done)
    for took, at, name in tail[-8:]:
        print(f"  {took:6.1f} s from {at:5.0f} s  {name}")
    print("longest overall:")
    for took, at, name in sorted((b - a, a - t0, n) for _, a, b, n in tests)[-12:]:
        print(f"  {took:6.1f} s from {at:5.0f} s  {name}")


if __name__ == "__main__":
    main(sys.argv[1])
