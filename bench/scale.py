"""Scale: N VenueServices on one operator process, 15 s interval, everything healthy.

    .venv/bin/python bench/scale.py 10 100 1000 --profile

For each N: a fresh lab, one simulator process serving N services, N Deployments (kwok
pods) and N VenueServices; once every service reads Healthy (or after SETTLE_S, whichever
comes first), a measurement window of CYCLES intervals. Per interval: share of services
evaluated, evaluation time, operator CPU seconds, API requests by the operator (read from
the apiserver's own `apiserver_request_total`), Prometheus queries, Events; and RSS.
Results go to bench/results/scale.json and the plot to bench/scale.png; `--profile`
samples the operator with py-spy after the window, at the largest N, and prints the
functions that dominate (raw stacks in bench/results/).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from venue_lab import manifests
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import LabError, cpu_seconds, rss_mb, wait_until
from venue_lab.session import Lab, lab
from venue_lab.simulator.process import SimulatorProcess

INTERVAL_S = 15.0
# Each service's simulated traffic (requests a second): the simulator draws every request
# (~3.4 us of its CPU), 50,000 a second at 5,000 services; 10 keeps a minute's window at 600
# requests, where the 0.1 % baseline of 5xx stays far below the 1 % warning.
RATE = 10.0
# Services a scrape of the simulator's fleet exposition serves (`/metrics?part=I&of=K`): all
# 5,000 in one took longer than the 15 s scrape timeout on a busy machine
FLEET_PART = 250
SCRAPE = "15s"  # Prometheus' usual default; 1,000 targets every 5 s would take a core here
CYCLES = 4
SETTLE_S = 300.0
PROFILE_S = 30
NS = "bench"
# Each service writes status once when its template turns known-good (after bakeTime,
# 5 min by default): shortened, and waited for, so that the window sees steady state only.
BAKE = "30s"
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _metric_sum(text: str, name: str, *must: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(m in line for m in must):
            total += float(line.rsplit(" ", 1)[1])
    return total


BUCKETS = ("0.01", "0.05", "0.1", "0.25", "0.5", "1.0", "2.0", "5.0", "10.0", "+Inf")


def _operator_counters(url: str) -> dict[str, float]:
    text = httpx.get(url, timeout=30).text
    buckets = {
        f"le {le}": _metric_sum(text, "venue_operator_evaluation_seconds_bucket{", f'le="{le}"')
        for le in BUCKETS
    }
    causes = {
        "cause " + line.split('cause="', 1)[1].split('"', 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("venue_operator_status_writes_total{")
    }
    return {
        **buckets,
        **causes,
        "evaluations": _metric_sum(text, "venue_operator_evaluations_total{"),
        "eval_seconds": _metric_sum(text, "venue_operator_evaluation_seconds_sum "),
        "eval_count": _metric_sum(text, "venue_operator_evaluation_seconds_count "),
        "queries": _metric_sum(text, "venue_operator_prometheus_queries_total "),
        "events": _metric_sum(text, "venue_operator_events_total{"),
        "errors": _metric_sum(text, "venue_operator_evaluation_errors_total{"),
    }


def _apiserver_requests(the_lab: Lab) -> dict[str, float]:
    """Requests on the resources only the operator touches (VenueServices and Events);
    the controllers' and kwok's own traffic is reported apart, as all requests."""
    text = the_lab.cluster.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    total = "apiserver_request_total{"
    vs = 'resource="venueservices"'
    return {
        "status_patches": _metric_sum(text, total, vs, 'subresource="status"', 'verb="PATCH"'),
        "vs_requests": _metric_sum(text, total, vs) - _metric_sum(text, total, vs, 'verb="WATCH"'),
        "event_writes": _metric_sum(text, total, 'resource="events"', 'verb="POST"')
        + _metric_sum(text, total, 'resource="events"', 'verb="PATCH"'),
        "all_requests": _metric_sum(text, total) - _metric_sum(text, total, 'verb="WATCH"'),
    }


def venue_objects(
    n: int, ports: dict[str, int], interval_s: float = INTERVAL_S, mode: str = "Auto"
) -> list[dict[str, object]]:
    """N Deployments (one kwok pod each) and their VenueServices in the bench namespace."""
    docs: list[dict[str, object]] = []
    for i in range(n):
        name = f"venue-{i:03d}"
        docs.append(manifests.deployment(name, "venue:v1", replicas=1, namespace=NS))
        docs.append({"apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
                     "metadata": {"name": name, "namespace": NS},
                     "spec": {"deployment": {"name": name},
                              "service": {"url": f"http://127.0.0.1:{ports[name]}"},
                              "probe": {"interval": f"{interval_s:g}s"},
                              "remediation": {"mode": mode,
                                              "rollback": {"bakeTime": BAKE}}}})  # fmt: skip
    return docs


def _off_nominal(venueservices_json: str) -> dict[str, int]:
    """How many services have each check confirmed or observed other than ok at the end:
    what moved when status was written while "everything is healthy"."""
    seen: Counter[str] = Counter()
    for item in json.loads(venueservices_json)["items"]:
        for check in item.get("status", {}).get("checks", []):
            for field in ("level", "observed"):
                if check.get(field) not in ("ok", None):
                    seen[f"{check['name']} {field} {check[field]}"] += 1
    return dict(seen)


def profile(pid: int, n: int, name: str = "profile") -> list[tuple[str, float]]:
    """py-spy samples of the running operator; the share of samples each frame is in (raw
    stacks in results/<name>-n<n>.txt)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = RESULTS / f"{name}-n{n}.txt"
    subprocess.run([spy, "record", "--pid", str(pid), "--duration", str(PROFILE_S),
                    "--rate", "50", "--format", "raw", "--output", str(raw), "--nonblocking"],
                   check=True, capture_output=True, timeout=PROFILE_S + 60)  # fmt: skip
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        # a frame is "function (path:line)": group by function and file, not line
        frames = {f.rsplit(":", 1)[0] for f in stack.split(";")}
        for frame in frames:
            inclusive[frame] += int(count)
    return [(frame, samples / total) for frame, samples in inclusive.most_common(40)]


@contextlib.contextmanager
def fleet(n: int) -> Iterator[tuple[Lab, SimulatorProcess]]:
    """A fresh lab for N services, no operator yet: one simulator process serving them, each
    scraped by Prometheus every SCRAPE, N Deployments (one kwok pod each) all Available and
    their VenueServices applied."""
    with (
        lab(scrape_interval=SCRAPE) as the_lab,
        SimulatorProcess(
            # fluid: a healthy service's counters grow by expectation, not 10 draws a second
            # each (50,000 a second at N=5,000 were a tenth of a core of the lab's)
            extra_args=(
                f"--services={n}",
                "--name-prefix=venue",
                f"--rate={RATE:g}",
                "--fluid-traffic",
            )
        ) as sim,  # fmt: skip
    ):
        kubectl = the_lab.cluster.kubectl
        kubectl("create", "namespace", NS)
        the_lab.cluster.wait_for_service_account(NS)
        ports = sim.ports()
        # the simulator's fleet exposition (every service's series, labelled `service`) in
        # parts of FLEET_PART services: one target per service costs a scrape each
        control, parts = sim.control_url.removeprefix("http://"), math.ceil(n / FLEET_PART)
        the_lab.prometheus.add_targets("bench", [
            (control, {"namespace": NS, "part": str(i), "__param_part": str(i),
                       "__param_of": str(parts)})
            for i in range(parts)])  # fmt: skip
        docs = venue_objects(n, ports)
        for start in range(0, len(docs), 200):
            kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs[start : start + 200]),
                    timeout=300)  # fmt: skip
        # The operator starts on a settled cluster: every Deployment's kwok pod ready (the
        # controller-manager creates 2,000 objects at its default 20 QPS: minutes at N=1000).
        kubectl("wait", "-n", NS, "--for=condition=Available", "deployment", "--all",
                "--timeout=900s", timeout=960)  # fmt: skip
        yield the_lab, sim


def statuses(the_lab: Lab) -> list[dict[str, Any]]:
    out = the_lab.cluster.kubectl("get", "venueservices", "-n", NS, "-o", "json", timeout=120)
    return [i.get("status", {}) for i in json.loads(out.stdout)["items"]]


def healthy(the_lab: Lab) -> int:
    return sum(s.get("health") == "Healthy" for s in statuses(the_lab))


def settle(the_lab: Lab, n: int, poll_s: float = 5, limit: float = SETTLE_S) -> float | None:
    """Wait until every service reads Healthy, then until each has a known-good template:
    seconds to all Healthy, or None when either wait ran out (`limit` each)."""
    started = time.monotonic()
    settled: float | None = None

    def baked() -> int:
        return sum(bool(s.get("healthyTemplates")) for s in statuses(the_lab))

    try:
        wait_until(f"{n} VenueServices Healthy", lambda: healthy(the_lab) == n, limit, poll_s)
        settled = time.monotonic() - started
        wait_until(f"{n} known-good templates", lambda: baked() == n, limit, poll_s)
    except LabError:
        pass  # measured anyway: the window after it says how far it got
    return settled


def run(n: int, with_profile: bool) -> dict[str, object]:
    with fleet(n) as (the_lab, _sim):
        kubectl = the_lab.cluster.kubectl
        with OperatorProcess(the_lab.cluster.kubeconfig, the_lab.prometheus.url) as op:
            pid = op.pid
            settled = settle(the_lab, n)
            before, api_before = _operator_counters(op.metrics_url), _apiserver_requests(the_lab)
            cpu_before = cpu_seconds(pid)
            time.sleep(CYCLES * INTERVAL_S)  # the measurement window itself
            after, api_after = _operator_counters(op.metrics_url), _apiserver_requests(the_lab)
            cpu_after = cpu_seconds(pid)
            rss = rss_mb(pid)
            healthy_at_end = healthy(the_lab)
            off_nominal = _off_nominal(kubectl("get", "venueservices", "-n", NS, "-o", "json",
                                               timeout=120).stdout)  # fmt: skip
            hot = profile(pid, n) if with_profile else []
    d = {k: after[k] - before.get(k, 0.0) for k in after}
    write_causes = {k[6:]: v / CYCLES for k, v in d.items() if k.startswith("cause ") and v}
    # the smallest histogram bucket holding 95% of the window's evaluations
    p95 = next((le for le in BUCKETS if d[f"le {le}"] >= 0.95 * d["eval_count"]), "+Inf")
    api = {k: api_after[k] - api_before[k] for k in api_after}
    return {
        "n": n,
        "settle_s": settled,
        "healthy_at_end": healthy_at_end,
        "evaluated_share": d["evaluations"] / (n * CYCLES),
        "eval_mean_s": d["eval_seconds"] / d["eval_count"] if d["eval_count"] else None,
        "eval_p95_le_s": p95,
        "cpu_s_per_cycle": (cpu_after - cpu_before) / CYCLES,
        "rss_mb": rss,
        "queries_per_cycle": d["queries"] / CYCLES,
        "events_per_cycle": d["events"] / CYCLES,
        "errors_per_cycle": d["errors"] / CYCLES,
        "status_patches_per_cycle": api["status_patches"] / CYCLES,
        "vs_requests_per_cycle": api["vs_requests"] / CYCLES,
        "event_writes_per_cycle": api["event_writes"] / CYCLES,
        "all_requests_per_cycle": api["all_requests"] / CYCLES,
        "off_nominal": off_nominal,
        "status_write_causes_per_cycle": write_causes,
        "profile": hot,
    }


def table(results: list[dict[str, object]]) -> str:
    head = ("| N | all Healthy after | evaluated/interval | evaluation s: mean (p95) | CPU s/cycle "
            "| CPU share of a core | RSS MB | PromQL/cycle | status PATCH/cycle "
            "| VenueService requests/cycle | Event writes/cycle "
            "| all apiserver requests/cycle |")  # fmt: skip
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        settle = f"{r['settle_s']:.0f} s" if r["settle_s"] is not None else (
            f"not in {SETTLE_S:.0f} s ({r['healthy_at_end']} of {r['n']})")  # fmt: skip
        mean = f"{r['eval_mean_s']:.3f}" if r["eval_mean_s"] is not None else "-"
        mean += f" (p95 ≤ {r['eval_p95_le_s']})"
        cpu = float(r["cpu_s_per_cycle"])  # type: ignore[arg-type]
        rows.append(
            f"| {r['n']} | {settle} | {r['evaluated_share']:.2f} | {mean} | {cpu:.2f} | "
            f"{cpu / INTERVAL_S:.0%} | {r['rss_mb']:.0f} | {r['queries_per_cycle']:.1f} | "
            f"{r['status_patches_per_cycle']:.1f} | {r['vs_requests_per_cycle']:.1f} | "
            f"{r['event_writes_per_cycle']:.1f} | {r['all_requests_per_cycle']:.0f} |"
        )
    return "\n".join(rows)


def plot(results: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["n"] for r in results]
    panels = [
        ("operator CPU s per 15 s cycle", "cpu_s_per_cycle", INTERVAL_S / 2, "half a core"),
        ("RSS (MB)", "rss_mb", 300, "target 300 MB"),
        ("PromQL queries per cycle", "queries_per_cycle", None, ""),
        ("status PATCHes per cycle (healthy)", "status_patches_per_cycle", None, ""),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 3.8))
    for ax, (title, key, limit, label) in zip(axes, panels, strict=True):
        ax.plot(ns, [r[key] for r in results], marker="o")
        if limit is not None:
            ax.axhline(limit, color="red", linestyle="--", linewidth=1, label=label)
            ax.legend(loc="upper left", fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("VenueServices (N)")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    fig.suptitle("venue-operator, one process, 15 s interval, 2 cores", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10, 100, 1000])
    parser.add_argument("--profile", action="store_true", help="py-spy at the largest N")
    parser.add_argument("--plot", type=Path, default=HERE / "scale.png")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    results = []
    for n in args.sizes:
        results.append(run(n, args.profile and n == max(args.sizes)))
        print(table(results[-1:]).splitlines()[-1], flush=True)
    (RESULTS / "scale.json").write_text(json.dumps(results, indent=1) + "\n")
    print()
    print(table(results))
    plot(results, args.plot)
    for r in results:
        print(
            f"N={r['n']}: checks not ok at the end: {r['off_nominal'] or 'none'}; "
            f"status writes per cycle by cause: {r['status_write_causes_per_cycle'] or 'none'}"
        )
    for r in results:
        if r["profile"]:
            print(f"\nN={r['n']}: share of samples in each frame (inclusive), top 40")
            for frame, share in r["profile"]:  # type: ignore[attr-defined]
                print(f"  {share:6.1%}  {frame}")


if __name__ == "__main__":
    main()
