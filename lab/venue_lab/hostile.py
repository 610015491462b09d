"""Hostile tenants (#12): a loopback server that answers as badly as it can, a fleet of
healthy VenueServices beside one hostile VenueService, and what it cost the others.

Shared by `tests/e2e/test_hostile_tenant.py` (which asserts) and `bench/isolation.py` (which
prints the table). Every hostile body carries `MARKER`, and the secrets the hostile inputs
carry are `SECRET`: neither may show in any status, Event or operator log line.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from venue_lab import manifests
from venue_lab.cluster import REPO_ROOT
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import LabError, Lifecycle, free_port, rss_mb, wait_until
from venue_lab.session import Lab
from venue_lab.simulator.process import SimulatorProcess

MARKER = f"HOSTILE-BODY-{uuid.uuid4().hex[:12]}"
SECRET = f"hostile-secret-{uuid.uuid4().hex[:12]}"
BIG_BYTES = 50 * 1024 * 1024
ERROR_BYTES = 1024 * 1024
LONG_CHECK_CHARS = 2000
# Prometheus URLs a hostile VenueService may name (the operator allows them as an admin would)
PROMETHEUS_PATHS = ("nonjson", "big", "stream", "hang", "err500", "redirect")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes, kind: str = "application/json", **headers: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _open(self) -> None:
        """A 200 without Content-Length: the body ends when the connection closes."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()

    def do_GET(self) -> None:
        route = self.path.split("/")[1]
        # the operator hanging up mid-body is what a bounded client does
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            getattr(self, f"_{route}", self._missing)()

    def _missing(self) -> None:
        self._send(404, b"{}")

    def _nonjson(self) -> None:
        self._send(200, f"<html><body>{MARKER} nonjson</body></html>".encode(), "text/html")

    def _big(self) -> None:
        self._open()
        chunk = (f'"{MARKER}-big",' * 4096).encode()[: 64 * 1024]
        self.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[')
        for _ in range(BIG_BYTES // len(chunk)):
            self.wfile.write(chunk)

    def _stream(self) -> None:
        self._open()
        self.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[')
        item = json.dumps({"metric": {"m": MARKER}, "value": [0, "1"]}).encode() + b","
        while not self.server.released.wait(0.05):  # ~20 small writes a second, forever
            self.wfile.write(item)
            self.wfile.flush()

    def _hang(self) -> None:
        self.server.released.wait(600)

    def _err500(self) -> None:
        self._send(500, (MARKER * (ERROR_BYTES // len(MARKER) + 1)).encode()[:ERROR_BYTES],
                   "text/plain")  # fmt: skip

    def _redirect(self) -> None:
        self.server.redirects += 1
        where = f"/redirect/api/v1/query?access_token={SECRET}&n={self.server.redirects}"
        self._send(302, b"", "text/plain", Location=where)

    def _longcheck(self) -> None:
        if self.path.rstrip("/").endswith("/health/full"):
            value = (MARKER + " " + "x" * LONG_CHECK_CHARS)[:LONG_CHECK_CHARS]
            body = {"status": "error", "checks": {"database": value, "redis": "ok"}}
            self._send(503, json.dumps(body).encode())
        else:
            self._send(200, b'{"status":"ok"}')


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    released: threading.Event
    redirects: int


class HostileServer(Lifecycle):
    """One loopback HTTP server; its first path segment picks the misbehaviour."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = _Server(("127.0.0.1", self.port), _Handler)
        self.server.released = threading.Event()
        self.server.redirects = 0
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.port}/{route}"

    def prometheus_urls(self) -> tuple[str, ...]:
        return tuple(self.url(p) for p in PROMETHEUS_PATHS)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.released.set()  # hung and streaming handlers end
        self.server.shutdown()
        self.server.server_close()


def memory_limit_mb() -> float:
    """The operator's memory limit in manifests/deployment.yaml, in MiB."""
    docs = yaml.safe_load_all((REPO_ROOT / "manifests" / "deployment.yaml").read_text())
    deployment = next(d for d in docs if d and d.get("kind") == "Deployment")
    limit = str(deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
                ["memory"])  # fmt: skip
    assert limit.endswith("Mi"), f"memory limit {limit} is not in Mi"
    return float(limit[:-2])


def venue_spec(url: str, interval: str = "1s", **spec: Any) -> dict[str, Any]:
    """A fast VenueService: its probe every `interval`; a 30 s rate window, over which the
    simulator's 0.1 % baseline of errors stays under the 1 % warning (a 5 s window can
    catch one 500 in 100 requests and read Degraded in a clean run)."""
    body: dict[str, Any] = {
        "service": {"url": url},
        "probe": {"interval": interval, "timeout": "500ms"},
        "prometheus": {"rateWindow": "30s"},
        "confirmation": {"breaches": 2, "recoveries": 2, "minRequestRate": 1},
        "remediation": {"mode": "Off"},
    }
    body.update(spec)
    return body


def venue_object(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
            "metadata": {"name": name}, "spec": {"deployment": {"name": name}, **body}}  # fmt: skip


@dataclass
class Fleet:
    """`count` healthy VenueServices in one namespace, served by one simulator process."""

    lab: Lab
    namespace: str
    names: list[str]
    interval_s: float

    def venues(self) -> dict[str, dict[str, Any]]:
        path = f"/apis/ops.tickettoken.io/v1alpha1/namespaces/{self.namespace}/venueservices"
        return {v["metadata"]["name"]: v for v in self.lab.cluster.read(path)["items"]}

    def unhealthy(self) -> list[str]:
        """The fleet's services that are not Healthy with an empty history (as a clean run)."""
        venues = self.venues()
        bad = []
        for name in self.names:
            status = venues.get(name, {}).get("status", {})
            if status.get("health") != "Healthy" or status.get("history"):
                why = [f"{c['name']} {c['level']}: {c.get('reason') or c.get('value')}"
                       for c in status.get("checks", []) if c["level"] != "ok"]  # fmt: skip
                bad.append(f"{name}: {status.get('health')} ({'; '.join(why)}), "
                           f"history {status.get('history')}")  # fmt: skip
        return bad

    def apply(self, *objects: dict[str, Any]) -> None:
        docs = "---\n".join(yaml.safe_dump(o) for o in objects)
        self.lab.cluster.kubectl("apply", "-n", self.namespace, "-f", "-", input=docs)

    def events(self, name: str) -> list[dict[str, Any]]:
        return self.lab.cluster.events_of(self.namespace, "VenueService", name)


def start_fleet(
    lab: Lab, simulator: SimulatorProcess, namespace: str, count: int = 20, interval: str = "1s"
) -> Fleet:
    names = [f"steady-{i:02d}" for i in range(count)]
    objects: list[dict[str, Any]] = []
    targets = {}
    for name in names:
        port = simulator.add_service(f"{namespace}-{name}")
        targets[f"127.0.0.1:{port}"] = {"namespace": namespace, "service": name}
        objects.append(manifests.deployment(name, manifests.IMAGE, 2))
        objects.append(venue_object(name, venue_spec(f"http://127.0.0.1:{port}", interval)))
    lab.prometheus.add_targets(f"fleet-{namespace}", targets)
    fleet = Fleet(lab, namespace, names, float(interval.rstrip("s")))
    fleet.apply(*objects)
    for target in targets:
        lab.prometheus.wait_target_up(target, timeout=60)
    wait_until(f"{count} healthy VenueServices in {namespace}",
               lambda: not fleet.unhealthy(), 90, interval=0.5)  # fmt: skip
    return fleet


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


VICTIM_SHARE = 0.9  # the other namespace's error ratio: 90 % would show as a value


@dataclass
class Setup:
    lab: Lab
    fleet: Fleet
    operator: OperatorProcess
    server: HostileServer
    service_url: str  # a healthy simulated endpoint for hostile specs that are bad elsewhere
    victim: str  # a namespace whose series a tenant must not read


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


@contextlib.contextmanager
def namespace(lab: Lab, prefix: str) -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    lab.cluster.kubectl("create", "namespace", name)
    lab.cluster.wait_for_service_account(name)
    try:
        yield name
    finally:
        lab.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@contextlib.contextmanager
def arena(lab: Lab, simulator: SimulatorProcess, count: int = 20) -> Iterator[Setup]:
    """The hostile server, an operator of its own over `h-*` that allows its Prometheus URLs,
    `count` healthy VenueServices, a simulated endpoint for the hostile one, and a victim
    namespace (outside `h-*`) whose series show a 90 % error rate."""
    with (
        HostileServer() as server,
        namespace(lab, "h") as ns,
        namespace(lab, "v") as victim,
    ):
        allow = tuple(f"--allow-prometheus-url={u}" for u in server.prometheus_urls())
        with OperatorProcess(lab.cluster.kubeconfig, lab.prometheus.url,
                             namespaces=("h-*",), extra_args=allow) as operator:  # fmt: skip
            fleet = start_fleet(lab, simulator, ns, count=count)
            port = simulator.add_service(f"{ns}-hostile")
            lab.prometheus.add_target(f"127.0.0.1:{port}", {"namespace": ns, "service": "hostile"})
            victim_port = simulator.add_service(f"{victim}-venue")
            simulator.set_faults(f"{victim}-venue", error_ratio=VICTIM_SHARE)
            labels = {"namespace": victim, "service": "venue-service"}
            lab.prometheus.add_target(f"127.0.0.1:{victim_port}", labels)
            yield Setup(lab, fleet, operator, server, f"http://127.0.0.1:{port}", victim)


def try_case(setup: Setup, case: str) -> Observed:
    """Apply the hostile VenueService of `case`, watch it and the fleet (`watch`), grep for
    leaks while it still exists, then delete it."""
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
            raise LabError(f"{exc}\nstatus: {status}\nEvents: {said}") from None
        observed.leaks = leaks(fleet, setup.operator.log_dir / "operator.log",
                               [name, *fleet.names], MARKER, SECRET)  # fmt: skip
        return observed
    finally:
        setup.lab.cluster.kubectl("delete", "-n", fleet.namespace, "venueservice,deployment",
                                  name, "--wait=false", check=False)  # fmt: skip
        wait_until(f"{name} gone", lambda: name not in fleet.venues(), 30, interval=0.25)
