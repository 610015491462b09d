"""/metrics per VenueService: series, bytes and render time of the operator's exposition at
N services, with `--service-metrics=full` (the default) and `alerts`.

    .venv/bin/python bench/metrics_size.py 1000 5000

In one process, no lab: each service's state is exported as a cycle exports it
(record/telemetry.service_state), every check with a value and both thresholds (a healthy
service's, which is the most series a check has), plus its evaluation and error counters.
Render time is the median of 5 renders of the whole registry (prometheus_client's
`generate_latest`, what a scrape costs the operator's event loop)."""

from __future__ import annotations

import statistics
import sys
import time
import tracemalloc

from prometheus_client import REGISTRY, generate_latest

from venue_operator.assess.checks import CHECKS
from venue_operator.model.status import CheckStatus, Health, VenueServiceStatus
from venue_operator.record import telemetry


def healthy() -> VenueServiceStatus:
    checks = [CheckStatus(name=name, level="ok", value=1.5, unit="%", warning=1.0, critical=5.0)
              for name in CHECKS]  # fmt: skip
    return VenueServiceStatus(health=Health.HEALTHY, checks=checks)


def measure(n: int, mode: str) -> dict[str, float]:
    telemetry.export_check_values(mode == "full")
    status = healthy()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        name = f"venue-{i:05d}"
        telemetry.evaluated("bench", name, status.checks)
        telemetry.service_state("bench", name, status, None)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    text = generate_latest(REGISTRY)
    renders = []
    for _ in range(5):
        started = time.perf_counter()
        generate_latest(REGISTRY)
        renders.append(time.perf_counter() - started)
    ours = [line for line in text.decode().splitlines()
            if line.startswith("venue_operator_") and 'namespace="bench"' in line]  # fmt: skip
    for i in range(n):
        telemetry.forget("bench", f"venue-{i:05d}")
    return {"series": len(ours) / n, "bytes": len(text), "render_s": statistics.median(renders),
            "memory_mb": held / 1e6}  # fmt: skip


def main(ns: list[int]) -> None:
    print(f"checks per service: {len(CHECKS)}")
    print("| N | --service-metrics | series per service | /metrics MB | render s | "
          "held in memory MB |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for n in ns:
        for mode in telemetry.SERVICE_METRICS:
            m = measure(n, mode)
            print(f"| {n:,} | {mode} | {m['series']:.0f} | {m['bytes'] / 1e6:.1f} | "
                  f"{m['render_s']:.2f} | {m['memory_mb']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 5000])
