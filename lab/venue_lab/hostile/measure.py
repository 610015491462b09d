"""What a hostile VenueService cost: its time to a clear error, the fleet's evaluations per
interval beside it, the operator's RSS against the manifest's limit, and leaks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from venue_lab.cluster import REPO_ROOT
from venue_lab.hostile.arena import Fleet
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import rss_mb, wait_until


def memory_limit_mb() -> float:
    """The operator's memory limit in manifests/deployment.yaml, in MiB."""
    docs = yaml.safe_load_all((REPO_ROOT / "manifests" / "deployment.yaml").read_text())
    deployment = next(d for d in docs if d and d.get("kind") == "Deployment")
    limit = str(deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
                ["memory"])  # fmt: skip
    assert limit.endswith("Mi"), f"memory limit {limit} is not in Mi"
    return float(limit[:-2])


def evaluation_counts(operator: OperatorProcess, namespace: str) -> dict[str, float]:
    """`venue_operator_evaluations_total` per VenueService of `namespace` (its /metrics)."""
    counts = {}
    for line in httpx.get(operator.metrics_url, timeout=5).text.splitlines():
        if line.startswith("venue_operator_evaluations_total{") and \
                f'namespace="{namespace}"' in line:  # fmt: skip
            name = line.split('name="', 1)[1].split('"', 1)[0]
            counts[name] = float(line.split()[-1])
    return counts


def counted_at(operator: OperatorProcess, namespace: str) -> tuple[dict[str, float], float]:
    """`evaluation_counts` and when they were read: the middle of the request, since a
    loaded machine takes up to half a second to answer, which would otherwise be counted
    as window without evaluations."""
    asked = time.monotonic()
    counts = evaluation_counts(operator, namespace)
    return counts, (asked + time.monotonic()) / 2


@dataclass
class Observed:
    """What one hostile VenueService cost the fleet beside it."""

    case: str
    seconds_to_clear_error: float
    clear_error: str
    per_interval_min: float  # the slowest fleet service's evaluations per interval
    per_interval_mean: float
    rss_peak_mb: float
    unhealthy: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)


def watch(
    fleet: Fleet, operator: OperatorProcess, case: str, clear_error: Callable[[], str | None],
    window_s: float = 8.0, timeout: float = 60.0,
) -> Observed:  # fmt: skip
    """After the hostile service is applied: time its clear error, then count the fleet's
    evaluations over `window_s` (RSS sampled all along)."""
    started = time.monotonic()
    peak = rss_mb(operator.pid)
    said: list[str] = []

    def cleared() -> bool:
        nonlocal peak
        peak = max(peak, rss_mb(operator.pid))
        found = clear_error()
        if found:
            said.append(found)
        return bool(found)

    wait_until(f"{case}: the hostile VenueService's clear error", cleared, timeout, interval=0.25)
    to_error = time.monotonic() - started
    rates, peak = fleet_rates(fleet, operator, window_s, peak)
    return Observed(case, to_error, said[-1], min(rates), sum(rates) / len(rates), peak,
                    fleet.unhealthy())  # fmt: skip


def fleet_rates(
    fleet: Fleet, operator: OperatorProcess, window_s: float, peak: float = 0.0
) -> tuple[list[float], float]:
    """Each fleet service's evaluations per interval over `window_s`, and the operator's
    peak RSS meanwhile."""
    before, began = counted_at(operator, fleet.namespace)
    deadline = began + window_s
    while time.monotonic() < deadline:  # a fixed window, measured by the counters below
        peak = max(peak, rss_mb(operator.pid))
        time.sleep(0.25)
    after, ended = counted_at(operator, fleet.namespace)
    intervals = (ended - began) / fleet.interval_s
    # one evaluation of slack per service: a cycle may straddle either edge of the window
    return [(after.get(n, 0) - before.get(n, 0) + 1) / intervals for n in fleet.names], peak


def leaks(fleet: Fleet, operator_log: Path, names: list[str], *needles: str) -> list[str]:
    """Where any needle shows in a status of `fleet.namespace`, an Event there, or the log."""
    places = {f"status of {n}": json.dumps(v.get("status", {}))
              for n, v in fleet.venues().items()}  # fmt: skip
    for name in names:
        places[f"Events of {name}"] = json.dumps(fleet.events(name))
    places["operator log"] = operator_log.read_text(errors="replace")
    return [f"{needle[:40]} in {where}" for where, text in places.items()
            for needle in needles if needle in text]  # fmt: skip
