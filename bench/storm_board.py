"""What the fleet board costs a cycle in a fleet-wide outage (#24): `--services` VenueServices
over 50 namespaces, all naming one dependency, report one after another as their cycles come,
half of them flapping in and out of breach each cycle (every report changes what counts);
each asks the storms around it, as a service loop does (fleet/board.py). Prints CPU
microseconds per report (report + around), best of `--rounds`, and the storms found.

    PYTHONPATH=operator .venv/bin/python bench/storm_board.py [--services 5000]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from venue_operator.decide.storm import StormRule
from venue_operator.fleet.board import FleetBoard

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=15)


def one_round(services: int, cycles: int) -> tuple[float, int]:
    board = FleetBoard(StormRule())
    keys = [(f"ns{i % 50}", f"s{i}") for i in range(services)]
    spread = INTERVAL / services
    began = time.process_time()
    found = 0
    for cycle in range(cycles):
        for i, (namespace, name) in enumerate(keys):
            at = START + cycle * INTERVAL + i * spread
            flapping = i % 2 and (cycle + i // 2) % 2
            critical = ["p99_latency"] if flapping else []
            found = len(board.report(namespace, name, ("orders-db",), critical, at))
    return (time.process_time() - began) / (services * cycles) * 1e6, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = [one_round(args.services, args.cycles) for _ in range(args.rounds)]
    cost, found = min(results)
    per_cycle = cost * args.services / 1e6
    print(f"services={args.services} cycles={args.cycles} us_per_report={cost:.1f} "
          f"cpu_s_per_15s_cycle={per_cycle:.3f} storms_around_last={found}")  # fmt: skip


if __name__ == "__main__":
    main()
