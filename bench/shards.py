"""Shards: N VenueServices over R replicas (`venue-operator run --shards`), then one SIGKILLed.

    .venv/bin/python bench/shards.py --services 5000 --replicas 4

The lab is scale.py's (`scale.fleet`: one simulator process serving N services, each scraped
by Prometheus every 15 s, N Deployments with one kwok pod each, N VenueServices at a 15 s
interval with `bakeTime` 30 s); R replicas start one after the other, each with its own Lease
in the operator's namespace. Once every service is Healthy with a known-good template (or
after `--settle` seconds of each wait), a window of `--cycles` intervals: each service's
evaluations counted on each replica's /metrics (every
service evaluated every interval, by exactly one replica, the one the rendezvous hash names),
CPU and RSS per replica and per lab process, API requests (the apiserver's own counters, as
scale.py reads them), PromQL queries, status writes and Events, and the objects each replica
keeps. Then the failover: one replica SIGKILLed (no Lease released), the survivors' logs read
every POLL_S until each of its services has had its first judged cycle on one of them
(`loop.first_judged`, timestamped), their /metrics read once after (which of them evaluated
it), and a second window over the survivors. Results are merged into bench/results/shards.json (one
entry per N and R); `--profile` samples one replica with py-spy after the first window.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

# bench/ is on sys.path when run as a script
import scale
from scale import (
    INTERVAL_S,
    NS,
    RESULTS,
    SETTLE_S,
    _apiserver_requests,
    _metric_sum,
    _off_nominal,
    _operator_counters,
    fleet,
    healthy,
    profile,
    settle,
)

from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import LabError, cpu_seconds, rss_mb
from venue_lab.session import Lab
from venue_lab.simulator.process import SimulatorProcess
from venue_operator.fleet.shards import owner

OPERATOR_NS = "venue-operator"  # the replicas' namespace: their Leases
LEASE_S = 15  # the default --shard-lease
CYCLES = scale.CYCLES  # a window's intervals (--cycles)
POLL_S = 1.0  # how often the survivors' logs are read for the services judged again
FAILOVER_TIMEOUT_S = 120.0
REPO = Path(__file__).resolve().parents[1]
EVALUATIONS = "venue_operator_evaluations_total"
KEPT = "venue_operator_kept_objects"
TAKEN = "venue_operator_status_taken_total"
SKIPPED = "venue_operator_cycles_skipped_total"  # cycles whose probes the replica took late
LAG = "venue_operator_event_loop_lag_seconds"
_LABELS = re.compile(r'(\w+)="([^"]*)"')


def members(count: int) -> tuple[str, ...]:
    """The replicas' names (POD_NAME), as a StatefulSet's pods are named."""
    return tuple(f"venue-operator-{i}" for i in range(count))


@contextlib.contextmanager
def replicas(
    the_lab: Lab, names: Sequence[str], lease: int, nice: int = 0, max_age: float | None = None
) -> Iterator[list[OperatorProcess]]:
    """One operator process per member with --shards, started one after the other (as a
    rolling start does). From the main thread: a child started from another thread is
    SIGKILLed when that thread ends (the lab's PR_SET_PDEATHSIG is per thread). With `nice`,
    each replica runs that much below the lab (`renice`); `max_age`: --metrics-max-age."""
    the_lab.cluster.kubectl("create", "namespace", OPERATOR_NS)
    with contextlib.ExitStack() as stack:
        ops = [stack.enter_context(OperatorProcess(
                   the_lab.cluster.kubeconfig, the_lab.prometheus.url,
                   extra_args=("--shards", f"--shard-lease={lease}",
                               *([f"--metrics-max-age={max_age:g}"] if max_age else [])),
                   env={"POD_NAME": name, "POD_NAMESPACE": OPERATOR_NS}))
               for name in names]  # fmt: skip
        for op in ops:
            renice(op.pid, nice)
        yield ops


def renice(pid: int, nice: int) -> None:
    """Every thread of `pid` (Linux's nice is per thread; threads started later inherit it
    from the thread that starts them)."""
    if nice:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(ProcessLookupError):  # a thread that has ended since
                os.setpriority(os.PRIO_PROCESS, int(tid), nice)


def member(op: OperatorProcess) -> str:
    return op.extra_env["POD_NAME"]


def samples(op: OperatorProcess, *names: str) -> list[tuple[str, dict[str, str], float]]:
    """Only these metrics of one replica's /metrics (`name[]`: the rest is not rendered)."""
    answer = httpx.get(op.metrics_url, params=[("name[]", n) for n in names], timeout=60)
    answer.raise_for_status()  # a failed scrape is no sample (its error page is no number)
    text = answer.text
    found = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            name, _, labels = head.partition("{")
            found.append((name, dict(_LABELS.findall(labels)), float(value)))
    return found


def evaluations(op: OperatorProcess) -> dict[str, float]:
    """Evaluations so far per service ("namespace/name") on one replica."""
    return {f"{labels['namespace']}/{labels['name']}": value
            for name, labels, value in samples(op, EVALUATIONS) if name == EVALUATIONS}  # fmt: skip


def kept(op: OperatorProcess) -> dict[str, float]:
    """The workload objects a replica keeps in memory, by kind."""
    return {labels["kind"]: value for name, labels, value in samples(op, KEPT) if name == KEPT}


def taken(op: OperatorProcess) -> float:
    return sum(value for name, _, value in samples(op, TAKEN) if name == TAKEN)


def summed(op: OperatorProcess, metric: str) -> float:
    """A metric's value summed over its series (a counter's total, a gauge's value)."""
    return sum(value for name, _, value in samples(op, metric) if name == metric)


def main_thread_seconds(pid: int) -> float:
    """CPU seconds of a process's main thread (a replica's event loop; the rest are its
    Prometheus readers' and its Lease renewals' threads)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lease_requests(the_lab: Lab) -> float:
    """Requests on Leases (the replicas' renewals and member lists), watches aside."""
    text = the_lab.cluster.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    total, leases = "apiserver_request_total{", 'resource="leases"'
    return _metric_sum(text, total, leases) - _metric_sum(text, total, leases, 'verb="WATCH"')


def lab_pids(the_lab: Lab, sim: SimulatorProcess) -> dict[str, int]:
    """The lab's long-running processes (but the operators), by name."""
    procs = {**the_lab.cluster.procs, "prometheus": the_lab.prometheus.proc, "simulator": sim.proc}
    return {name: p.process.pid for name, p in procs.items() if p and p.process}


def machine_busy() -> tuple[float, float]:
    """CPU seconds busy and in all, over every core, so far (/proc/stat)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def bench_cpu() -> float:
    """This script's CPU and its finished children's (kubectl)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Snapshot:
    """What a window measures at one of its ends."""

    def __init__(self, the_lab: Lab, ops: Sequence[OperatorProcess], pids: dict[str, int]):
        with ThreadPoolExecutor(len(ops)) as pool:
            self.counters = list(pool.map(lambda op: _operator_counters(op.metrics_url), ops))
            self.evaluations = list(pool.map(evaluations, ops))
        self.api = _apiserver_requests(the_lab)
        self.leases = lease_requests(the_lab)
        self.cpu = {member(op): cpu_seconds(op.pid) for op in ops}
        self.main = {member(op): main_thread_seconds(op.pid) for op in ops}
        self.skipped = {member(op): summed(op, SKIPPED) for op in ops}
        self.cpu |= {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.cpu["bench (this script, kubectl)"] = bench_cpu()
        self.machine = machine_busy()
        self.at = time.monotonic()


def window(
    the_lab: Lab, sim: SimulatorProcess, ops: Sequence[OperatorProcess], n: int
) -> dict[str, Any]:
    """CYCLES intervals of steady state over these replicas: evaluations per service, and what
    each replica and each lab process cost."""
    pids = lab_pids(the_lab, sim)
    load_before = os.getloadavg()
    before, began = Snapshot(the_lab, ops, pids), time.time()
    gaps = renewal_gaps(the_lab, CYCLES * INTERVAL_S)  # the measurement window itself
    after = Snapshot(the_lab, ops, pids)
    seconds = after.at - before.at
    cycles = seconds / INTERVAL_S
    names = [member(op) for op in ops]
    per_replica = []
    for i, op in enumerate(ops):
        d = {k: v - before.counters[i].get(k, 0.0) for k, v in after.counters[i].items()}
        per_replica.append({
            "member": names[i],
            "services": sum(after.evaluations[i].get(s, 0) > before.evaluations[i].get(s, 0)
                            for s in after.evaluations[i]),
            "cpu_share": (after.cpu[names[i]] - before.cpu[names[i]]) / seconds,
            "main_thread_share": (after.main[names[i]] - before.main[names[i]]) / seconds,
            "skipped_late_per_cycle": (after.skipped[names[i]] - before.skipped[names[i]])
                                      / cycles,
            "loop_lag_s": summed(op, LAG),
            "rss_mb": rss_mb(op.pid),
            "queries_per_cycle": d["queries"] / cycles,
            "eval_mean_s": d["eval_seconds"] / d["eval_count"] if d["eval_count"] else None,
            "errors_per_cycle": d["errors"] / cycles,
            "events_per_cycle": d["events"] / cycles,
            "status_writes_per_cycle": {k[6:]: v / cycles for k, v in d.items()
                                        if k.startswith("cause ") and v},
            "status_taken": taken(op),
            "kept": kept(op),
            "longest_renewal_gap_s": gaps.get(names[i]),
            "membership_changes": len(member_changes(op, began, time.time())),
        })  # fmt: skip
    api = {k: (after.api[k] - before.api[k]) / cycles for k in after.api}
    busy = after.machine[0] - before.machine[0]
    processes = {k: (after.cpu[k] - before.cpu[k]) / seconds for k in after.cpu}
    return {
        "window_s": seconds,
        "load_average": [load_before, os.getloadavg()],
        **ownership(before.evaluations, after.evaluations, names, n),
        "replicas": per_replica,
        "queries_per_cycle": sum(r["queries_per_cycle"] for r in per_replica),
        "api_per_cycle": api | {"lease_requests": (after.leases - before.leases) / cycles},
        "cpu_share": processes,
        "machine_busy_cores": busy / seconds,
        "outside_lab_cores": busy / seconds - sum(processes.values()),
        "healthy_at_end": healthy(the_lab),
    }


def renewal_gaps(the_lab: Lab, seconds: float) -> dict[str, float]:
    """Watch the Leases for `seconds`: the longest each member went without renewing (every
    lease/3 when its loop keeps up; over 2/3 of the Lease it owns nothing, over the whole
    Lease the others take its services)."""
    path = f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR_NS}/leases"
    last: dict[str, tuple[str, float]] = {}
    longest: dict[str, float] = {}
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        try:
            items = the_lab.cluster.read(path)["items"]
        except (LabError, httpx.HTTPError):
            items = []  # an API server too busy to answer within 10 s: the next poll will
        for item in items:
            name, renewed = item["metadata"]["name"], item["spec"]["renewTime"]
            if name not in last or last[name][0] != renewed:
                if name in last:
                    longest[name] = max(longest.get(name, 0.0), now - last[name][1])
                last[name] = (renewed, now)
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    for name, (_, at) in last.items():  # a gap still open at the end counts too
        longest[name] = max(longest.get(name, 0.0), time.monotonic() - at)
    return longest


def logged(op: OperatorProcess, event: str, since: float, until: float) -> list[dict[str, Any]]:
    """A replica's log lines of one event between two Unix times."""
    entries = []
    with (op.log_dir / "operator.log").open() as log:
        for line in log:
            if f'"{event}"' in line:
                entry = json.loads(line)
                if since <= datetime.fromisoformat(entry["timestamp"]).timestamp() <= until:
                    entries.append(entry)
    return entries


def member_changes(op: OperatorProcess, since: float, until: float) -> list[dict[str, Any]]:
    """The membership changes a replica logged between two Unix times (shards.members)."""
    return logged(op, "shards.members", since, until)


def takeover_phases(survivors: Sequence[OperatorProcess], lost: Sequence[str],
                    since: float) -> dict[str, dict[str, float]]:  # fmt: skip
    """Where the taken services' first judged cycles spent their time (loop.first_judged:
    the loop's start to its first judged cycle, by phase): median and p95 of each."""
    lost_set, by_phase = set(lost), dict[str, list[float]]()
    for op in survivors:
        for entry in logged(op, "loop.first_judged", since, time.time()):
            if entry.get("service") in lost_set:
                for field, value in entry.items():
                    if field.endswith("_s"):
                        by_phase.setdefault(field[:-2], []).append(float(value))
    return {phase: {"p50": statistics.median(v), "p95": sorted(v)[math.ceil(0.95 * len(v)) - 1],
                    "n": len(v)} for phase, v in sorted(by_phase.items())}  # fmt: skip


def grown(after: float, before: float) -> float:
    """A counter's growth: a replica forgets a service's counters when it lets the service
    go, and counts from zero if it takes it on again."""
    return after - before if after >= before else after


def ownership(
    before: list[dict[str, float]], after: list[dict[str, float]], names: list[str], n: int
) -> dict[str, Any]:
    """Per service: evaluated in every interval of the window, and by exactly one replica,
    the one the hash over these replicas names."""
    expected = CYCLES
    totals, by_one, by_owner, missed, missed_two = 0.0, 0, 0, [], 0
    for i in range(n):
        key = f"{NS}/venue-{i:03d}"
        counts = [grown(a.get(key, 0.0), b.get(key, 0.0))
                  for a, b in zip(after, before, strict=True)]  # fmt: skip
        by = [name for name, c in zip(names, counts, strict=True) if c > 0]
        total = sum(counts)
        totals += min(total, expected)
        by_one += len(by) == 1
        by_owner += by == [owner(key, sorted(names))]
        if total < expected:
            missed.append(key)
            missed_two += total < expected - 1
    all_counts = sum(grown(a.get(k, 0.0), b.get(k, 0.0)) for a, b in zip(after, before, strict=True)
                     for k in a)  # fmt: skip
    return {
        "evaluated_share": totals / (n * expected),
        "evaluations_per_service_interval": all_counts / (n * expected),
        "services_missing_an_interval": len(missed),
        "services_missing_two": missed_two,
        "missed_sample": missed[:10],
        "by_exactly_one": by_one,
        "by_hash_owner": by_owner,
    }


def owned_by(ops: Sequence[OperatorProcess], n: int) -> dict[str, str]:
    """Which replica each service belongs to, by the hash over these replicas."""
    names = sorted(member(op) for op in ops)
    return {key: str(owner(key, names)) for key in (f"{NS}/venue-{i:03d}" for i in range(n))}


def lease_lapse(the_lab: Lab, name: str) -> float:
    """When the member's Lease runs out, as a Unix time (renewTime + its duration)."""
    out = the_lab.cluster.kubectl("get", "lease", name, "-n", OPERATOR_NS, "-o", "json").stdout
    spec = json.loads(out)["spec"]
    renewed = datetime.fromisoformat(spec["renewTime"]).astimezone(UTC)
    return renewed.timestamp() + float(spec["leaseDurationSeconds"])


def noticed_at(op: OperatorProcess, gone: str, since: float) -> float | None:
    """When a survivor first counted the members without `gone` (its log's shards.members),
    as a Unix time; None if it has not."""
    for entry in member_changes(op, since, time.time()):
        if gone not in entry["members"]:
            return datetime.fromisoformat(entry["timestamp"]).timestamp()
    return None


def judged_again(
    survivors: Sequence[OperatorProcess], lost: set[str], since: float
) -> dict[str, float]:
    """Each lost service's first judged cycle on a survivor after `since`, as a Unix time:
    its loop's `loop.first_judged` log line, written as its first evaluation is counted."""
    first: dict[str, float] = {}
    for op in survivors:
        for entry in logged(op, "loop.first_judged", since, time.time()):
            key, at = entry.get("service"), datetime.fromisoformat(entry["timestamp"]).timestamp()
            if key in lost and at < first.get(key, math.inf):
                first[key] = at
    return first


def failover(the_lab: Lab, ops: list[OperatorProcess], n: int) -> dict[str, Any]:
    """SIGKILL the first replica; seconds until each of its services is evaluated again by a
    survivor, from the survivors' logs (read every POLL_S); which survivors evaluated it, from
    their /metrics before the kill and after the last one. Polling their /metrics every second
    instead held each survivor's GIL ~30 % of the takeover it measured (its exposition thread
    writing 1,680 services' series: py-spy, run 26 of session 35)."""
    victim, survivors = ops[0], ops[1:]
    lost = [key for key, m in owned_by(ops, n).items() if m == member(victim)]
    with ThreadPoolExecutor(len(survivors)) as pool:
        base = list(pool.map(evaluations, survivors))
        victim.kill()
        killed, killed_at = time.monotonic(), time.time()
        lapse = lease_lapse(the_lab, member(victim))  # renewed no more
        judged: dict[str, float] = {}
        polls = 0
        while len(judged) < len(lost) and time.monotonic() - killed < FAILOVER_TIMEOUT_S:
            time.sleep(POLL_S)
            polls += 1
            judged = judged_again(survivors, set(lost), killed_at)
        for attempt in range(3):  # a loaded survivor's scrape may fail: asked again
            try:
                after = list(pool.map(evaluations, survivors))
                break
            except httpx.HTTPError as exc:
                print(f"  failover: a survivor's /metrics failed: {exc}", flush=True)
                if attempt == 2:
                    raise
    took = {key: at - killed_at for key, at in judged.items()}
    taken_by = {key: [member(op) for op, b, a in zip(survivors, base, after, strict=True)
                      if a.get(key, 0.0) > b.get(key, 0.0)] for key in took}  # fmt: skip
    times = sorted(took.values())
    heirs = owned_by(survivors, n)
    noticed = [noticed_at(op, member(victim), killed_at) for op in survivors]
    return {
        "victim": member(victim),
        "services": len(lost),
        "taken_over": len(took),
        "lease_lapsed_after_s": lapse - killed_at,
        "noticed_after_s": [None if t is None else t - killed_at for t in noticed],
        "first_s": times[0] if times else None,
        "p50_s": statistics.median(times) if times else None,
        "p95_s": times[math.ceil(0.95 * len(times)) - 1] if times else None,
        "max_s": times[-1] if times else None,
        "polls": polls,
        "by_one_survivor": sum(len(by) == 1 for by in taken_by.values()),
        "by_hash_heir": sum(by == [heirs[key]] for key, by in taken_by.items()),
        "phases": takeover_phases(survivors, lost, killed_at),
    }


def provenance() -> dict[str, Any]:
    """The commit measured, and whether the operator's tree differed from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    changed = git("status", "--porcelain", "--", "operator").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "operator_changed": changed,
            "date": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip


def run(
    n: int, count: int, lease: int, with_profile: bool, nice: int = 0,
    max_age: float | None = None, settle_limit: float = SETTLE_S,
) -> dict[str, Any]:  # fmt: skip
    started = time.monotonic()
    result: dict[str, Any] = {
        "n": n, "replicas": count, "lease_s": lease, **provenance(),
        "load_average_at_start": os.getloadavg(), "nice": nice, "metrics_max_age": max_age,
        "settle_limit_s": settle_limit, "cycles": CYCLES,
    }  # fmt: skip
    with (
        fleet(n) as (the_lab, sim),
        replicas(the_lab, members(count), lease, nice, max_age) as ops,
    ):
        result["lab_ready_s"] = time.monotonic() - started
        result["settle_s"] = settle(the_lab, n, poll_s=max(5.0, n / 500), limit=settle_limit)
        result["steady"] = window(the_lab, sim, ops, n)
        print(summary(result["steady"], "steady"), flush=True)
        result["off_nominal"] = _off_nominal(the_lab.cluster.kubectl(
            "get", "venueservices", "-n", NS, "-o", "json", timeout=300).stdout)  # fmt: skip
        if with_profile:
            result["profile"] = profile(ops[-1].pid, n, name=f"shards-profile-r{count}")
        result["failover"] = failover(the_lab, ops, n)
        print(failover_line(result["failover"]), flush=True)
        result["after_failover"] = window(the_lab, sim, ops[1:], n)
        print(summary(result["after_failover"], "survivors"), flush=True)
    result["total_s"] = time.monotonic() - started
    return result


def summary(w: dict[str, Any], what: str) -> str:
    replicas = w["replicas"]
    cpu = ", ".join(f"{r['cpu_share']:.0%}" for r in replicas)
    lab = ", ".join(f"{k} {v:.0%}" for k, v in sorted(w["cpu_share"].items(), key=lambda kv: -kv[1])
                    if not k.startswith("venue-operator-"))  # fmt: skip
    raw = w["evaluations_per_service_interval"]
    gaps = [r["longest_renewal_gap_s"] for r in replicas if r["longest_renewal_gap_s"] is not None]
    return (f"{what}: evaluated {w['evaluated_share']:.3f} (raw {raw:.3f}), "
            f"{w['services_missing_an_interval']} missed an interval; by exactly one replica "
            f"{w['by_exactly_one']}, by the hash owner {w['by_hash_owner']}; replica CPU {cpu}; "
            f"longest Lease renewal gap {_s(max(gaps, default=None))}, membership changes "
            f"{sum(r['membership_changes'] for r in replicas)}; "
            f"machine {w['machine_busy_cores']:.2f} cores busy ({w['outside_lab_cores']:.2f} "
            f"outside this lab); lab: {lab}")  # fmt: skip


def failover_line(f: dict[str, Any]) -> str:
    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} s"

    noticed = [t for t in f["noticed_after_s"] if t is not None]
    return (f"failover: {f['victim']} SIGKILLed; its Lease lapsed after "
            f"{f['lease_lapsed_after_s']:.1f} s, the survivors saw it gone after "
            f"{', '.join(f'{t:.1f}' for t in noticed) or '-'} s; "
            f"{f['taken_over']} of {f['services']} services evaluated again by a survivor: first "
            f"{s(f['first_s'])}, p50 {s(f['p50_s'])}, p95 {s(f['p95_s'])}, max {s(f['max_s'])} "
            f"(their first judged cycles, logged); by one survivor {f['by_one_survivor']}, "
            f"by the hash's heir {f['by_hash_heir']}; first judged cycle by phase (p50/p95): "
            + ", ".join(f"{p} {v['p50']:.1f}/{v['p95']:.1f} s"
                        for p, v in f.get("phases", {}).items()))  # fmt: skip


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def replica_line(rep: dict[str, Any]) -> str:
    return (f"{rep['member']}: {rep['services']} services, CPU {rep['cpu_share']:.0%} "
            f"(main thread {rep.get('main_thread_share', 0):.0%}), event loop lag "
            f"{rep.get('loop_lag_s', 0):.1f} s, cycles skipped late/cycle "
            f"{rep.get('skipped_late_per_cycle', 0):.1f}, RSS "
            f"{rep['rss_mb']:.0f} MB, PromQL/cycle {rep['queries_per_cycle']:.1f}, kept "
            f"{rep['kept']}, status writes/cycle {rep['status_writes_per_cycle'] or 0}, "
            f"Events/cycle {rep['events_per_cycle']:.1f}, status taken {rep['status_taken']:.0f}, "
            f"errors/cycle {rep['errors_per_cycle']:.1f}, longest gap between Lease renewals "
            f"{_s(rep['longest_renewal_gap_s'])}, membership changes seen "
            f"{rep['membership_changes']}")  # fmt: skip


def table(results: list[dict[str, Any]]) -> str:
    """One row per N and R: the steady window and the failover."""
    head = ("| N | replicas | all Healthy after | evaluated / interval | services missing an "
            "interval | by exactly one replica (the hash's) | CPU share per replica | RSS MB "
            "per replica | PromQL / cycle | API requests / cycle (Leases) | status PATCH / "
            "cycle | Event writes / cycle | kept Pods, ReplicaSets per replica | failover p95 "
            "/ max | cores busy (outside the lab) |")  # fmt: skip
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        w, f = r["steady"], r["failover"]
        reps = w["replicas"]
        kept_objects = ", ".join(f"{k.get('pods', 0):.0f}/{k.get('replicasets', 0):.0f}"
                                 for k in (rep["kept"] for rep in reps))  # fmt: skip
        api = w["api_per_cycle"]
        cpu = ", ".join(f"{x['cpu_share']:.0%}" for x in reps)
        rss = ", ".join(f"{x['rss_mb']:.0f}" for x in reps)
        rows.append(
            f"| {r['n']} | {r['replicas']} | {_s(r['settle_s'])} | {w['evaluated_share']:.3f} | "
            f"{w['services_missing_an_interval']} | {w['by_exactly_one']} "
            f"({w['by_hash_owner']}) | {cpu} | {rss} | {w['queries_per_cycle']:.1f} | "
            f"{api['all_requests']:.0f} ({api['lease_requests']:.0f}) | "
            f"{api['status_patches']:.1f} | {api['event_writes']:.1f} | {kept_objects} | "
            f"{_s(f['p95_s'])} / {_s(f['max_s'])} | {w['machine_busy_cores']:.2f} "
            f"({w['outside_lab_cores']:.2f}) |"
        )
    return "\n".join(rows)


def processes_table(results: list[dict[str, Any]]) -> str:
    """Share of a core per process in the steady window: what the 2 cores went to."""
    names = sorted({k for r in results for k in r["steady"]["cpu_share"]
                    if not k.startswith("venue-operator-")})  # fmt: skip
    head = "| N | replicas (sum) | " + " | ".join(names) + " | outside the lab |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        cpu = r["steady"]["cpu_share"]
        ours = sum(v for k, v in cpu.items() if k.startswith("venue-operator-"))
        cells = " | ".join(f"{cpu.get(k, 0):.0%}" for k in names)
        rows.append(f"| {r['n']} | {ours:.0%} | {cells} | {r['steady']['outside_lab_cores']:.0%} |")
    return "\n".join(rows)


def merged(path: Path, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The results file's entries with this one in place of any earlier of the same N and R."""
    earlier = json.loads(path.read_text()) if path.exists() else []
    same = (result["n"], result["replicas"])
    others = [e for e in earlier if (e["n"], e["replicas"]) != same]
    return sorted([*others, result], key=lambda e: (e["replicas"], e["n"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, nargs="+", default=[5000])
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--lease", type=int, default=LEASE_S, help="--shard-lease, seconds")
    parser.add_argument("--profile", action="store_true", help="py-spy one replica, largest N")
    parser.add_argument(
        "--nice", type=int, default=0, metavar="N",
        help="run the replicas N below the lab (the API server, Prometheus, the simulated "
        "services): in a cluster those run on other nodes, and on one machine a saturated "
        "operator starves them, which makes the services it watches look down",
    )  # fmt: skip
    parser.add_argument(
        "--metrics-max-age", type=float, metavar="SECONDS",
        help="the replicas' --metrics-max-age (default: theirs, half the interval); at the "
        "interval each replica reads Prometheus half as often",
    )  # fmt: skip
    parser.add_argument(
        "--settle", type=float, default=SETTLE_S, metavar="SECONDS",
        help="longest wait for every service Healthy, then for every known-good template, "
        "before the window (default %(default)s each; the window is measured anyway)",
    )  # fmt: skip
    parser.add_argument("--cycles", type=int, default=scale.CYCLES,
                        help="intervals in each window (default %(default)s)")  # fmt: skip
    args = parser.parse_args()
    global CYCLES
    CYCLES = args.cycles
    if args.replicas < 2:
        parser.error("--replicas must be at least 2 (one is SIGKILLed)")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "shards.json"
    results = []
    for n in args.services:
        age = args.metrics_max_age or "default"
        print(f"N={n}, {args.replicas} replicas, --metrics-max-age {age}, load average "
              f"{os.getloadavg()}", flush=True)  # fmt: skip
        with_profile = args.profile and n == max(args.services)
        results.append(
            run(
                n,
                args.replicas,
                args.lease,
                with_profile,
                args.nice,
                args.metrics_max_age,
                args.settle,
            )
        )
        path.write_text(json.dumps(merged(path, results[-1]), indent=1) + "\n")
    print()
    print(table(results))
    print()
    print(processes_table(results))
    for r in results:
        print(f"\nN={r['n']}: checks not ok at the end: {r['off_nominal'] or 'none'}")
        for rep in r["steady"]["replicas"]:
            print("  " + replica_line(rep))
        print("  " + failover_line(r["failover"]))
        print("  " + summary(r["after_failover"], "survivors"))
        for frame, share in r.get("profile", []):
            print(f"  {share:6.1%}  {frame}")


if __name__ == "__main__":
    main()
