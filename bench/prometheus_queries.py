"""How many PromQL queries one evaluation cycle costs, for N VenueServices.

    .venv/bin/python bench/prometheus_queries.py 1 50

Starts the lab, one simulator process with N services, N Deployments and
VenueServices (interval 5s), and the operator; after all have a status, reads the
operator's own counters over a window and prints queries per cycle.
"""

from __future__ import annotations

import sys
import time

import httpx
import yaml
from scale import NS, venue_objects  # bench/ is on sys.path when run as a script

from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import lab
from venue_lab.simulator.process import SimulatorProcess

INTERVAL_S = 5.0
WINDOW_S = 30.0


def counters(url: str) -> dict[str, float]:
    totals = {"queries": 0.0, "evaluations": 0.0}
    for line in httpx.get(url, timeout=5).text.splitlines():
        if line.startswith("venue_operator_prometheus_queries_total "):
            totals["queries"] += float(line.split()[-1])
        elif line.startswith("venue_operator_evaluations_total{"):
            totals["evaluations"] += float(line.split()[-1])
    return totals


def run(n: int) -> dict[str, float]:
    with lab(scrape_interval="1s") as the_lab, SimulatorProcess() as sim:
        kubectl = the_lab.cluster.kubectl
        kubectl("create", "namespace", NS)
        the_lab.cluster.wait_for_service_account(NS)
        ports = {f"venue-{i:03d}": sim.add_service(f"venue-{i:03d}") for i in range(n)}
        for name, port in ports.items():
            the_lab.prometheus.add_target(f"127.0.0.1:{port}", {"namespace": NS, "service": name})
        docs = venue_objects(n, ports, INTERVAL_S, mode="Off")
        kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
        with OperatorProcess(the_lab.cluster.kubeconfig, the_lab.prometheus.url) as op:

            def all_assessed() -> bool:
                out = kubectl("get", "venueservices", "-n", NS,
                              "-o", "jsonpath={.items[*].status.health}").stdout  # fmt: skip
                return len(out.split()) == n

            wait_until(f"{n} VenueServices assessed", all_assessed, 120, interval=1)
            before = counters(op.metrics_url)
            time.sleep(WINDOW_S)  # a measurement window, not a synchronisation
            after = counters(op.metrics_url)
    queries = after["queries"] - before["queries"]
    evaluations = after["evaluations"] - before["evaluations"]
    cycles = evaluations / n
    return {"n": n, "queries": queries, "cycles": cycles, "per_cycle": queries / cycles}


def main() -> None:
    for n in [int(a) for a in sys.argv[1:]] or [1, 50]:
        r = run(n)
        print(
            f"N={r['n']:>4}  cycles={r['cycles']:.1f}  queries={r['queries']:.0f}  "
            f"queries/cycle={r['per_cycle']:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
