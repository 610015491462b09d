"""Isolation (#12): one hostile VenueService at a time beside 20 healthy ones, on a lab of its
own; prints the table of bench/README.md (hostile input, the others' evaluations per
interval, the operator's RSS, the time to the hostile service's clear error).

    PYTHONPATH=operator:lab .venv/bin/python bench/isolation.py [--count 20] [--case NAME]

The cases, their setup and the measurements are `venue_lab.hostile`'s, the same as
tests/e2e/test_hostile_tenant.py asserts on.
"""

from __future__ import annotations

import argparse
import time

from venue_lab.hostile.arena import arena
from venue_lab.hostile.cases import CASES, try_case
from venue_lab.hostile.measure import memory_limit_mb
from venue_lab.session import lab
from venue_lab.simulator.process import SimulatorProcess


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="healthy VenueServices")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="repeatable")
    args = parser.parse_args()
    started = time.monotonic()
    rows = []
    with lab() as the_lab, SimulatorProcess() as simulator, arena(the_lab, simulator,
                                                                  args.count) as setup:  # fmt: skip
        for case in args.case or list(CASES):
            o = try_case(setup, case)
            rows.append(f"| {case} | {o.clear_error[:110]} | {o.seconds_to_clear_error:.1f} s | "
                        f"{o.per_interval_min:.2f}, {o.per_interval_mean:.2f} | "
                        f"{o.rss_peak_mb:.0f} MB | {o.leaks or 'none'} |")  # fmt: skip
            print(rows[-1], flush=True)
    print(f"\n{args.count} healthy VenueServices; memory limit {memory_limit_mb():.0f} MiB; "
          f"{time.monotonic() - started:.0f} s in all\n")  # fmt: skip
    print("| hostile input | clear error | time to it | others' evaluations / interval "
          "(min, mean) | operator RSS peak | leaks |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
