"""The hostile-tenant acceptance test of #12, on the real lab: 20 healthy VenueServices (one
simulator process) and one hostile VenueService at a time. For each hostile input: the hostile
one gets a clear condition or Event; every other one keeps being evaluated at least 0.95
times per interval and stays Healthy with no action; the operator's RSS stays under the
manifest's memory limit; no hostile body, secret or other namespace's value shows in any
status, Event or log line.

The Prometheus URLs it names are loopback servers of this module, allowed with
`--allow-prometheus-url`: the session operator does not allow them, so this module runs an
operator of its own over the `h-*` namespaces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness import fresh_namespace
from venue_lab import manifests
from venue_lab.hostile import (
    MARKER,
    SECRET,
    Fleet,
    HostileServer,
    leaks,
    memory_limit_mb,
    start_fleet,
    venue_object,
    venue_spec,
    watch,
)
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import LabError, wait_until
from venue_lab.session import Lab
from venue_lab.simulator.process import SimulatorProcess

VICTIM_SHARE = 0.9  # the other namespace's error ratio: 90 % would show as a value


@dataclass
class Setup:
    lab: Lab
    fleet: Fleet
    operator: OperatorProcess
    server: HostileServer
    service_url: str  # a healthy simulated endpoint for hostile specs that are bad elsewhere
    victim: str  # a namespace whose series a tenant must not read


@pytest.fixture(scope="module")
def setup(the_lab: Lab, simulator: SimulatorProcess) -> Iterator[Setup]:
    with (
        HostileServer() as server,
        fresh_namespace(the_lab, "h") as namespace,
        fresh_namespace(the_lab, "v") as victim,
    ):
        allow = tuple(f"--allow-prometheus-url={u}" for u in server.prometheus_urls())
        with OperatorProcess(the_lab.cluster.kubeconfig, the_lab.prometheus.url,
                             namespaces=("h-*",), extra_args=allow) as operator:  # fmt: skip
            fleet = start_fleet(the_lab, simulator, namespace, count=20)
            port = simulator.add_service(f"{namespace}-hostile")
            labels = {"namespace": namespace, "service": "hostile"}
            the_lab.prometheus.add_target(f"127.0.0.1:{port}", labels)
            victim_port = simulator.add_service(f"{victim}-venue")
            simulator.set_faults(f"{victim}-venue", error_ratio=VICTIM_SHARE)
            labels = {"namespace": victim, "service": "venue-service"}
            the_lab.prometheus.add_target(f"127.0.0.1:{victim_port}", labels)
            yield Setup(the_lab, fleet, operator, server, f"http://127.0.0.1:{port}", victim)


def hostile_spec(service_url: str, /, **prometheus: Any) -> dict[str, Any]:
    """A spec reading the series of the hostile endpoint's simulated service."""
    source = {"rateWindow": "30s", "matchLabels": {"service": "hostile"}, **prometheus}
    return venue_spec(service_url, prometheus=source)


def check(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next((c for c in status.get("checks", []) if c["name"] == name), {})


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


@dataclass
class Case:
    """One hostile VenueService: its spec, and the clear error it must get."""

    spec: Callable[[Setup], dict[str, Any]]
    clear: Callable[[Setup, dict[str, Any], list[dict[str, Any]]], str | None]
    timeout: float = 40.0


def prometheus_case(route: str, reason: str) -> Case:
    """spec.prometheus.url names the hostile server's `route`: every metric check is
    unknown with `reason` (a regex) and MetricsAvailable is False."""

    def spec(s: Setup) -> dict[str, Any]:
        return hostile_spec(s.service_url, url=s.server.url(route))

    def clear(s: Setup, status: dict[str, Any], _: list[dict[str, Any]]) -> str | None:
        said = check(status, "error_rate").get("reason", "")
        if condition(status, "MetricsAvailable").get("status") == "False" and re.search(
            reason, said
        ):
            return f"MetricsAvailable=False; error_rate unknown: {said}"
        return None

    return Case(spec, clear)


def event_case(url: Callable[[Setup], str], reason: str, text: str, **spec: Any) -> Case:
    def clear(s: Setup, _: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
        said = [e["message"] for e in events if e["reason"] == reason and text in e["message"]]
        return f"Event {reason}: {said[0]}" if said else None

    return Case(lambda s: {**hostile_spec(url(s)), **spec}, clear)


def long_check(s: Setup, status: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
    if any(e["reason"] in ("InvalidSpec", "EvaluationFailed") for e in events):
        raise AssertionError(f"a long check value failed the evaluation: {events}")
    database = check(status, "database")
    said = database.get("reason", "")
    return f"database {database['level']}: {said}" if "not ok" in said else None


def cross_namespace(s: Setup, status: dict[str, Any], _: list[dict[str, Any]]) -> str | None:
    value = check(status, "error_rate").get("value")
    assert value is None or value < 5, f"another namespace's error rate leaked: {value}"
    ours = s.lab.prometheus.query(victim_query(s.victim))
    theirs = float(ours[0]["value"][1]) if ours else 0.0  # type: ignore[index]
    if value is not None and theirs > 0.5:
        return (f"error_rate reads its own namespace: {value} % "
                f"(the other namespace's is {theirs:.0%})")  # fmt: skip
    return None


def victim_query(victim: str) -> str:
    return (f'sum(rate(http_requests_total{{namespace="{victim}",status_code=~"5.."}}[5s]))'
            f' / sum(rate(http_requests_total{{namespace="{victim}"}}[5s]))')  # fmt: skip


def range_vector(s: Setup, status: dict[str, Any], _: list[dict[str, Any]]) -> str | None:
    said = check(status, "error_rate").get("reason", "")
    return f"error_rate unknown: {said}" if "range vector" in said else None


SLOW = "metrics not read within|no answer within|not complete within"
CASES: dict[str, Case] = {
    "range-vector-override": Case(
        lambda s: hostile_spec(s.service_url, queries={"errorRate": "up[1m]"}), range_vector
    ),
    "non-json-200": prometheus_case("nonjson", "answer is not JSON"),
    "50mb-body": prometheus_case("big", r"answer over \d+ bytes"),
    # the batch's queries outlast the batcher's deadline (2 x (10 s + grace)) before their own
    "never-ending-stream": prometheus_case("stream", SLOW),
    "hang": prometheus_case("hang", SLOW),
    "500-with-1mb-body": prometheus_case("err500", r"HTTP 500"),
    "redirect-loop": prometheus_case("redirect", r"HTTP 302"),
    "2000-char-check-value": Case(lambda s: hostile_spec(s.server.url("longcheck")), long_check),
    "cross-namespace-promql": Case(
        lambda s: hostile_spec(s.service_url, queries={"errorRate": victim_query(s.victim)}),
        cross_namespace,
    ),
    "ssrf-api-server": event_case(
        lambda s: s.lab.cluster.server, "TargetRefused", "the Kubernetes API server"
    ),
    "ssrf-link-local": event_case(
        lambda s: f"http://admin:{SECRET}@169.254.169.254/latest/meta-data?api_key={SECRET}",
        "TargetRefused",
        "a link-local address",
    ),
    "over-cap-max-replicas": event_case(
        lambda s: s.service_url,
        "SpecClamped",
        "remediation.scale.maxReplicas 1000 -> 20",
        remediation={"mode": "Off", "scale": {"maxReplicas": 1000}},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_hostile_venue_service_costs_the_others_nothing(setup: Setup, case: str) -> None:
    fleet, spec = setup.fleet, CASES[case]
    name = f"hostile-{case}"[:63]
    fleet.apply(manifests.deployment(name, manifests.IMAGE, 2),
                venue_object(name, spec.spec(setup)))  # fmt: skip

    def clear() -> str | None:
        return spec.clear(setup, fleet.venues().get(name, {}).get("status", {}), fleet.events(name))

    try:
        try:
            observed = watch(fleet, setup.operator, case, clear, timeout=spec.timeout)
        except LabError as exc:
            status = fleet.venues().get(name, {}).get("status", {})
            said = [(e["reason"], e["message"]) for e in fleet.events(name)]
            raise AssertionError(f"{exc}\nstatus: {status}\nEvents: {said}") from None
        print(f"{case}: {observed}")
        assert observed.per_interval_min >= 0.95, observed
        assert observed.per_interval_mean >= 0.95, observed
        assert not observed.unhealthy, f"the others changed beside {case}: {observed.unhealthy}"
        limit = memory_limit_mb()
        assert observed.rss_peak_mb < limit, f"RSS {observed.rss_peak_mb:.0f} MB >= {limit} MiB"
        found = leaks(fleet, setup.operator.log_dir / "operator.log", [name, *fleet.names],
                      MARKER, SECRET)  # fmt: skip
        assert not found, found
        assert "Traceback" not in setup.operator.log(100_000)
    finally:
        setup.lab.cluster.kubectl("delete", "-n", fleet.namespace, "venueservice,deployment",
                                  name, "--wait=false", check=False)  # fmt: skip
        wait_until(f"{name} gone", lambda: name not in fleet.venues(), 30, interval=0.25)
