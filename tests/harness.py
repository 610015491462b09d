"""Fixtures and helpers for tests that run the operator: simulator and operator processes,
and a `Venue` handle for a VenueService in the lab. Fixtures are registered by tests/conftest.py
(once: two session operators watching the same namespaces would fight)."""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from venue_lab import manifests
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import LabError, wait_until
from venue_lab.receiver import PostReceiver
from venue_lab.session import Lab, following_simulator
from venue_lab.simulator.process import SimulatorProcess
from venue_operator.kube.status_store import read_back

# Lab venues serve 100 req/s per pod. The tests judge a 5 s rate window against the runbook's
# 1 % warning: at the simulator's default 20 req/s, one of its 0.1 % baseline 500s in a window
# reads over 1 % and opens a warning incident in a clean run (a bad rollout during it is then
# escalated, not rolled back: the degradation predates it). At 100 req/s a window holds >= 500
# requests, and reading over 1 % takes 6 baseline errors where 0.5 are expected (p ~ 1e-5).
LAB_RATE = "--rate=100"
# Longer than the 5 s rate window, so a bad release is never "known good": its errors show
# in the first scrape after the switch (12% 5xx over 1 s of the window: 2.4%, over the 1%
# warning), which ends the bake's streak of Healthy cycles; 6 s rather than 8 s, since every
# lab test's venue waits for its bake first (about 100 of them).
BAKE = "6s"


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(extra_args=(LAB_RATE,)) as sim:
        yield sim


@pytest.fixture(scope="session")
def operator(the_lab: Lab) -> Iterator[OperatorProcess]:
    # Only the tests' own namespaces (t-*): crash tests run operators of their own elsewhere.
    with OperatorProcess(
        the_lab.cluster.kubeconfig, the_lab.prometheus.url, namespaces=("t-*",)
    ) as proc:
        yield proc


@dataclass
class Venue:
    """One VenueService in the lab: a Deployment, a simulated endpoint, a scrape target."""

    lab: Lab
    simulator: SimulatorProcess
    namespace: str
    name: str
    port: int
    sim_name: str

    def inject(self, **faults: Any) -> None:
        self.simulator.set_faults(self.sim_name, **faults)

    def heal(self) -> None:
        self.simulator.clear_faults(self.sim_name)

    def status(self) -> dict[str, Any]:
        found = get(self.lab, "venueservice", self.namespace, self.name)
        status: dict[str, Any] = found.get("status", {})
        return status

    def wait_scraped(self) -> None:
        """Until Prometheus has scraped it once. Its file discovery applies new targets about
        every 5 s: venues made with `wait=False` and then waited for take one such wait, not
        one each (test_every_fault_is_detected_and_recovers's 11 took 40 s one by one)."""
        self.lab.prometheus.wait_target_up(f"127.0.0.1:{self.port}")

    def wait_known_good(self) -> None:
        """Until it is Healthy with a known-good template (following_venue's bake)."""
        self.wait_status(
            "Healthy with a known-good template",
            lambda s: s.get("health") == "Healthy" and bool(s.get("healthyTemplates")),
        )

    def wait_status(
        self, what: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0
    ) -> float:
        """Poll status until `predicate` holds; returns the seconds it took."""
        started = time.monotonic()
        try:
            wait_until(f"{self.namespace}/{self.name}: {what}", lambda: predicate(self.status()),
                       timeout, interval=0.25)  # fmt: skip
        except LabError as exc:
            raise LabError(f"{exc}\n{self.summary()}") from None
        return time.monotonic() - started

    def summary(self) -> str:
        """What the operator last said about it: for a wait that timed out."""
        try:
            status = read_back(self.status())
            said = [f"{e.get('lastTimestamp') or e.get('eventTime')} {e['reason']}: "
                    f"{e['message'][:160]}" for e in self.events()[-8:]]  # fmt: skip
        except Exception as exc:  # the API server itself may be the problem
            return f"(status unreadable: {exc})"
        conditions = [f"{c['type']}={c['status']} {c['reason']}: {c['message'][:160]}"
                      for c in status["conditions"]]  # fmt: skip
        return "\n".join([
            f"health {status['health']}, severity {status['severity']}, "
            f"healthyTemplates {status['healthyTemplates']}, lastError {status['lastError']}",
            # what a rollback is judged by: the rollout's start against the incident's opening
            f"rollout {status.get('rollout')}, incident opened "
            f"{(status.get('incident') or {}).get('openedAt')}",
            *conditions, *(f"event {line}" for line in said),
        ])  # fmt: skip

    def wait_health(self, health: str, severity: str, timeout: float = 60.0) -> float:
        return self.wait_status(
            f"health {health} severity {severity}",
            lambda s: (whole := read_back(s))["health"] == health and whole["severity"] == severity,
            timeout,
        )

    def events(self, reason: str | None = None) -> list[dict[str, Any]]:
        return self.lab.cluster.events_of(self.namespace, "VenueService", self.name, reason)

    def wait_event(self, reason: str, timeout: float = 30.0) -> dict[str, Any]:
        wait_until(f"Event {reason} on {self.name}", lambda: bool(self.events(reason)), timeout,
                   interval=0.25)  # fmt: skip
        return self.events(reason)[0]

    def check(self, name: str) -> dict[str, Any]:
        """As the model reads it back (status_store.read_back)."""
        checks: list[dict[str, Any]] = read_back(self.status())["checks"]
        return next(c for c in checks if c["name"] == name)


def venue_manifest(name: str, port: int, **spec: Any) -> str:
    body = {
        "deployment": {"name": name},
        "service": {"url": f"http://127.0.0.1:{port}"},
        "probe": {"interval": "1s", "timeout": "500ms"},
        "prometheus": {"rateWindow": "5s"},
        "confirmation": {"breaches": 2, "recoveries": 2, "minRequestRate": 1},
        "remediation": {"mode": "Off"},
    }
    body.update(spec)
    return yaml.safe_dump(
        {"apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
         "metadata": {"name": name}, "spec": body}
    )  # fmt: skip


def deployment_manifest(name: str, image: str = manifests.IMAGE, replicas: int = 2) -> str:
    return yaml.safe_dump(manifests.deployment(name, image, replicas))


@pytest.fixture
def make_venue(
    the_lab: Lab, simulator: SimulatorProcess, operator: OperatorProcess, namespace: str
) -> Iterator[Callable[..., Venue]]:
    """Create a simulated venue service watched by the running operator (scraped by
    Prometheus once made; `wait=False`: not yet, see `Venue.wait_scraped`). Its scrape target
    goes with the test: left behind, every test's would be scraped each second for the rest
    of the run (Prometheus and the shared simulator were a fifth of the full tier's CPU)."""
    targets: list[str] = []

    def make(name: str = "venue-service", *, wait: bool = True, **spec: Any) -> Venue:
        sim_name = f"{namespace}-{name}"
        port = simulator.add_service(sim_name)
        target = f"127.0.0.1:{port}"
        the_lab.prometheus.add_target(target, {"namespace": namespace, "service": name})
        targets.append(target)
        kubectl = the_lab.cluster.kubectl
        kubectl("apply", "-n", namespace, "-f", "-", input=deployment_manifest(name))
        kubectl("apply", "-n", namespace, "-f", "-", input=venue_manifest(name, port, **spec))
        venue = Venue(the_lab, simulator, namespace, name, port, sim_name)
        if wait:
            venue.wait_scraped()
        return venue

    yield make
    for target in targets:
        the_lab.prometheus.remove_target(target)


@pytest.fixture
def following_venue(
    the_lab: Lab, operator: OperatorProcess, namespace: str
) -> Iterator[Callable[..., Venue]]:
    """A venue service whose simulator follows its Deployment's image (a rollback heals it),
    once made Healthy with a known-good template (`wait=False`: not yet; then
    `Venue.wait_scraped` and `Venue.wait_known_good`, so that several bake at once)."""
    started = contextlib.ExitStack()

    def make(
        name: str = "venue-service",
        replicas: int = 2,
        sim_args: tuple[str, ...] = (),
        *,
        wait: bool = True,
        **spec: Any,
    ) -> Venue:
        kubectl = the_lab.cluster.kubectl
        kubectl("apply", "-n", namespace, "-f", "-",
                input=deployment_manifest(name, replicas=replicas))  # fmt: skip
        sim, port = started.enter_context(
            following_simulator(the_lab, namespace, name, LAB_RATE, *sim_args)
        )
        remediation = {"mode": "Auto", **spec.pop("remediation", {})}
        remediation["rollback"] = {"bakeTime": BAKE, **remediation.get("rollback", {})}
        manifest = venue_manifest(name, port, remediation=remediation, **spec)
        kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
        venue = Venue(the_lab, sim, namespace, name, port, name)
        if wait:
            venue.wait_scraped()
            venue.wait_known_good()
        return venue

    with started:
        yield make


@contextlib.contextmanager
def venue_outside_session(lab: Lab, ns: str, **spec: Any) -> Iterator[Venue]:
    """A following venue in a namespace the session operator does not watch (tests that run
    operators of their own: crash, peering, RBAC)."""
    kubectl = lab.cluster.kubectl
    kubectl("apply", "-n", ns, "-f", "-", input=deployment_manifest("venue-service"))
    with following_simulator(lab, ns, "venue-service", LAB_RATE) as (sim, port):
        remediation = {"mode": "Auto", "rollback": {"bakeTime": BAKE}}
        manifest = venue_manifest("venue-service", port, remediation=remediation, **spec)
        kubectl("apply", "-n", ns, "-f", "-", input=manifest)
        yield Venue(lab, sim, ns, "venue-service", port, "venue-service")


@contextlib.contextmanager
def rolls_back_a_bad_rollout(lab: Lab, ns: str, operator: OperatorProcess) -> Iterator[Venue]:
    """The packaging check: `operator` (started here; e.g. as the ServiceAccount an install
    created, watching `ns`) rolls a bad rollout in `ns` back, once, to v1. Yields the healed
    venue while the operator still runs; after it stops, its log has no permission error."""
    with venue_outside_session(lab, ns, **FAST) as venue, operator:
        venue.wait_known_good()
        set_image(lab, ns, BAD_IMAGE)
        venue.wait_event("RolledBack", timeout=60)
        venue.wait_health("Healthy", "None")
        assert image_of(deployment(lab, ns)) == "gcr.io/tickettoken/venue-service:v1"
        on_deployment = lab.cluster.kubectl(
            "get", "events", "-n", ns, "--field-selector",
            "involvedObject.kind=Deployment,reason=RolledBack", "-o", "name",
        ).stdout.split()  # fmt: skip
        assert len(on_deployment) == 1
        yield venue
    log = (operator.log_dir / "operator.log").read_text(errors="replace")
    denied = [line for line in log.splitlines()
              if re.search(r"forbidden|not enough permissions|\(403\)", line, re.I)]  # fmt: skip
    assert not denied, "\n".join(denied[:5])


BAD_IMAGE = "gcr.io/tickettoken/venue-service:v2-bad"
FAST = {
    "probe": {"interval": "1s", "timeout": "500ms"},
    "confirmation": {"breaches": 2, "recoveries": 2, "minRequestRate": 1},
}


# The kinds tests poll, read over one kept-alive connection (LocalCluster.read); others by kubectl.
API_PATHS = {
    "venueservice": "/apis/ops.tickettoken.io/v1alpha1/namespaces/{ns}/venueservices/{name}",
    "venuesvc": "/apis/ops.tickettoken.io/v1alpha1/namespaces/{ns}/venueservices/{name}",
    "deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "hpa": "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/{name}",
    "configmap": "/api/v1/namespaces/{ns}/configmaps/{name}",
}


def get(lab: Lab, kind: str, namespace: str, name: str) -> dict[str, Any]:
    """`kubectl get KIND NAME -n NAMESPACE -o json`, parsed: one namespaced object."""
    if kind in API_PATHS:
        return lab.cluster.read(API_PATHS[kind].format(ns=namespace, name=name))
    out = lab.cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout
    found: dict[str, Any] = json.loads(out)
    return found


def table(out: str) -> list[dict[str, str]]:
    """`kubectl get`'s table as rows by header, blank cells included (split() loses them):
    a cell starts under its header, headers are apart by 3+ spaces ("LAST ACTION" is one)."""
    header, *rows = out.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    return [{n: row[a:b].strip() for n, a, b in zip(names, starts, [*starts[1:], None],
                                                     strict=True)} for row in rows]  # fmt: skip


def venue_rows(lab: Lab, namespace: str, *flags: str) -> dict[str, dict[str, str]]:
    """`kubectl get venueservices` in `namespace`, each row by NAME."""
    out = lab.cluster.kubectl("get", "venueservices", "-n", namespace, *flags).stdout
    return {row["NAME"]: row for row in table(out)}


def deployment(lab: Lab, namespace: str, name: str = "venue-service") -> dict[str, Any]:
    return get(lab, "deployment", namespace, name)


def image_of(d: dict[str, Any]) -> str:
    return str(d["spec"]["template"]["spec"]["containers"][0]["image"])


def set_image(lab: Lab, namespace: str, image: str, name: str = "venue-service") -> None:
    lab.cluster.kubectl("set", "image", "-n", namespace, f"deployment/{name}",
                        f"venue-service={image}")  # fmt: skip


def history(venue: Venue, action: str) -> list[dict[str, Any]]:
    return [r for r in venue.status().get("history", []) if r["action"] == action]


def evaluations(operator: OperatorProcess, venue: Venue) -> float:
    """The operator's evaluation count for one VenueService (its own /metrics)."""
    exposition = httpx.get(operator.metrics_url, timeout=5).text
    return evaluation_count(exposition, venue.namespace, venue.name)


def evaluation_count(exposition: str, namespace: str, name: str) -> float:
    return sample(exposition, "venue_operator_evaluations_total", namespace, name) or 0.0


def sample(exposition: str, metric: str, namespace: str, name: str) -> float | None:
    """One VenueService's sample of `metric` in a /metrics exposition (None: absent)."""
    wanted = (f'namespace="{namespace}"', f'name="{name}"')
    for line in exposition.splitlines():
        if line.startswith(f"{metric}{{") and all(w in line for w in wanted):
            return float(line.split()[-1])
    return None


def metric(
    operator: OperatorProcess, name: str, namespace: str, venue: str = "venue-service"
) -> float | None:
    """A per-VenueService metric as the operator's /metrics gives it now."""
    return sample(httpx.get(operator.metrics_url, timeout=5).text, name, namespace, venue)


@contextlib.contextmanager
def fresh_namespace(the_lab: Lab, prefix: str) -> Iterator[str]:
    """A new namespace, ready for pods (its default ServiceAccount exists); deleted after."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    the_lab.cluster.kubectl("create", "namespace", name)
    the_lab.cluster.wait_for_service_account(name)
    yield name
    the_lab.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


# --- paging: a webhook receiver on loopback -----------------------------------------

TOKEN = "s3cr3t-t0ken-do-not-leak"


class Receiver(PostReceiver):
    """Keeps every body posted to it and answers 200."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict[str, Any]] = []

    def handle(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        self.bodies.append(json.loads(raw))
        return 200, {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?token={TOKEN}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def webhook_secret(lab: Lab, namespace: str, url: str) -> None:
    lab.cluster.kubectl("create", "secret", "generic", "pager", "-n", namespace,
                        f"--from-literal=url={url}")  # fmt: skip


NOTIFY = {"notification": {"webhookSecretRef": {"name": "pager", "key": "url"}}}
