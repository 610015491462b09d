"""Scale: N VenueServices on one operator process, 15 s interval, everything healthy.

    .venv/bin/python bench/scale.py 10 100 1000

For each N: a fresh lab, one simulator process serving N services, N Deployments (kwok
pods) and N VenueServices; after every service has a status, a measurement window of a
few cycles. Prints, per cycle: share of services evaluated, operator CPU seconds, API
writes by the operator (status PATCHes, Event POSTs, read from the apiserver's own
metrics), Prometheus queries, Events; and the operator's RSS.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import yaml

from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab, lab
from venue_lab.simulator.process import SimulatorProcess

INTERVAL_S = 15.0
CYCLES = 4
NS = "bench"


def _metric_sum(text: str, name: str, *must: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(m in line for m in must):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _operator_counters(url: str) -> dict[str, float]:
    text = httpx.get(url, timeout=10).text
    return {
        "evaluations": _metric_sum(text, "venue_operator_evaluations_total{"),
        "queries": _metric_sum(text, "venue_operator_prometheus_queries_total "),
        "events": _metric_sum(text, "venue_operator_events_total{"),
        "status_writes": _metric_sum(text, "venue_operator_status_writes_total "),
    }


def _apiserver_writes(the_lab: Lab) -> dict[str, float]:
    text = the_lab.cluster.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    total = "apiserver_request_total{"
    status = ('resource="venueservices"', 'subresource="status"', 'verb="PATCH"')
    return {
        "status_patches": _metric_sum(text, total, *status),
        "event_posts": _metric_sum(text, total, 'resource="events"', 'verb="POST"'),
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def venue_objects(
    n: int, ports: dict[str, int], interval_s: float = INTERVAL_S, mode: str = "Auto"
) -> list[dict[str, object]]:
    """N Deployments (one kwok pod each) and their VenueServices in the bench namespace."""
    docs: list[dict[str, object]] = []
    for i in range(n):
        name = f"venue-{i:03d}"
        labels = {"app": name}
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": NS},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "app", "image": "venue:v1"}]},
                    },
                },
            }
        )
        docs.append({"apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
                     "metadata": {"name": name, "namespace": NS},
                     "spec": {"deployment": {"name": name},
                              "service": {"url": f"http://127.0.0.1:{ports[name]}"},
                              "probe": {"interval": f"{interval_s:g}s"},
                              "remediation": {"mode": mode}}})  # fmt: skip
    return docs


def run(n: int) -> dict[str, float]:
    with (
        lab(scrape_interval="5s") as the_lab,
        SimulatorProcess(extra_args=(f"--services={n}", "--name-prefix=venue")) as sim,
    ):
        kubectl = the_lab.cluster.kubectl
        kubectl("create", "namespace", NS)
        the_lab.cluster.wait_for_service_account(NS)
        ports = sim.ports()
        for name, port in ports.items():
            the_lab.prometheus.add_target(f"127.0.0.1:{port}", {"namespace": NS, "service": name})
        docs = venue_objects(n, ports)
        for start in range(0, len(docs), 200):
            kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs[start : start + 200]),
                    timeout=300)  # fmt: skip
        with OperatorProcess(the_lab.cluster.kubeconfig, the_lab.prometheus.url) as op:
            assert op.proc is not None and op.proc.process is not None
            pid = op.proc.process.pid

            def all_assessed() -> bool:
                out = kubectl("get", "venueservices", "-n", NS, "-o",
                              "jsonpath={.items[*].status.health}", timeout=120).stdout  # fmt: skip
                return out.split().count("Healthy") == n

            started = time.monotonic()
            wait_until(f"{n} VenueServices Healthy", all_assessed, 600, interval=5)
            settle = time.monotonic() - started
            before, api_before = _operator_counters(op.metrics_url), _apiserver_writes(the_lab)
            cpu_before = _cpu_seconds(pid)
            time.sleep(CYCLES * INTERVAL_S)  # the measurement window itself
            after, api_after = _operator_counters(op.metrics_url), _apiserver_writes(the_lab)
            cpu_after = _cpu_seconds(pid)
            rss = _rss_mb(pid)
    delta = {k: after[k] - before[k] for k in after}
    api = {k: api_after[k] - api_before[k] for k in api_after}
    return {
        "n": n,
        "settle_s": settle,
        "evaluated_share": delta["evaluations"] / (n * CYCLES),
        "cpu_s_per_cycle": (cpu_after - cpu_before) / CYCLES,
        "rss_mb": rss,
        "queries_per_cycle": delta["queries"] / CYCLES,
        "status_patches_per_cycle": api["status_patches"] / CYCLES,
        "event_posts_per_cycle": api["event_posts"] / CYCLES,
        "events_per_cycle": delta["events"] / CYCLES,
    }


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10, 100]
    print("| N | all Healthy after | evaluated/interval | CPU s/cycle | RSS MB | PromQL/cycle "
          "| status PATCH/cycle | Event POST/cycle |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for n in sizes:
        r = run(n)
        print(f"| {n} | {r['settle_s']:.0f} s | {r['evaluated_share']:.2f} | "
              f"{r['cpu_s_per_cycle']:.2f} | {r['rss_mb']:.0f} | {r['queries_per_cycle']:.1f} | "
              f"{r['status_patches_per_cycle']:.1f} | {r['event_posts_per_cycle']:.1f} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
