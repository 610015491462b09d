"""Shards (#24): replicas with --shards own each VenueService once between them, through the
replica count's changes, with every action taken exactly once. One chained scenario, one lab,
the operators started once (4 s Leases):

- fencing and scale-out: of two replicas, one is SIGSTOPped past its Lease; a bad rollout of
  one of its services, then a third replica joins that gains it, and it is rolled back; the
  sleeper, woken while that incident is open, writes nothing from its old view (no status, no
  Event, no workload write) and takes its other services on again;
- failover: one SIGKILLed (no Lease released); a bad rollout of one of its services started
  right after is rolled back by the others once its Lease lapses;
- scale-in: one stopped with SIGTERM (its Lease released) while a service it had needs a
  rollback; the last replica takes everything.

Each step's service is picked by the same rendezvous hash the replicas use (fleet/shards.py),
so every step has a service to act on whatever the namespace's random name. At the end every
rollback happened once (Events, status history, Deployment revisions) with one page each, and
no transition of an incident was said twice (two replicas running one service at once would)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from tests.harness import (
    BAD_IMAGE,
    BAKE,
    FAST,
    LAB_RATE,
    Venue,
    deployment_manifest,
    evaluation_count,
    fresh_namespace,
    get,
    history,
    set_image,
    venue_manifest,
    webhook_secret,
)
from venue_lab.operator_process import OperatorProcess
from venue_lab.pagerduty import PagerDutyReceiver
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_lab.simulator.process import SimulatorProcess
from venue_operator.fleet.shards import owner
from venue_operator.kube.status_store import read_back
from venue_operator.model import keys

LEASE_S = 4  # the takeover time: a lapsed Lease, then the others' next renewal (a third of it)
WINDOW_S = 2.0  # two of the services' cycles
MEMBERS = tuple(f"venue-operator-{i}" for i in range(3))  # POD_NAME: the member names
FIRST, SECOND, THIRD = MEMBERS
SLEEPER, VICTIM, LEAVER = FIRST, SECOND, THIRD  # SIGSTOP, SIGKILL, SIGTERM; FIRST stays
PAGERDUTY = {"notification": {"webhookSecretRef": {"name": "pager", "key": "url"},
                              "format": "PagerDuty"}}  # fmt: skip
REMEDIATION = {"remediation": {"mode": "Auto", "rollback": {"bakeTime": BAKE}}}
V1 = "gcr.io/tickettoken/venue-service:v1"


def roles(ns: str) -> dict[str, str]:
    """A service for each step, by the owners the hash gives."""
    steps: dict[str, Callable[[str], bool]] = {
        # the sleeper's among two, the third's among three: the sleeper loses it for good
        "stale": lambda key: owner(key, MEMBERS[:2]) == SLEEPER and owner(key, MEMBERS) == THIRD,
        "kept": lambda key: owner(key, MEMBERS) == SLEEPER,  # the sleeper has it again
        "lost": lambda key: owner(key, MEMBERS) == VICTIM,
        "left": lambda key: owner(key, (FIRST, LEAVER)) == LEAVER,
    }
    picked: dict[str, str] = {}
    for role, fits in steps.items():
        picked[role] = next(name for name in (f"svc-{i}" for i in range(100))
                            if name not in picked.values() and fits(f"{ns}/{name}"))  # fmt: skip
    return picked


def counts(operators: list[OperatorProcess], ns: str, names: list[str]) -> dict[str, list[float]]:
    """Each service's evaluation count on each operator (its own /metrics)."""
    found = [httpx.get(op.metrics_url, timeout=5).text for op in operators]
    return {name: [evaluation_count(text, ns, name) for text in found] for name in names}


def evaluated_by(
    operators: list[OperatorProcess], ns: str, names: list[str]
) -> dict[str, set[str]]:
    """Which members evaluated each service over one window."""
    before = counts(operators, ns, names)
    time.sleep(WINDOW_S)  # the measurement window itself, not a wait for a condition
    after = counts(operators, ns, names)
    return {name: {member(op) for op, b, a in zip(operators, before[name], after[name],
                                                  strict=True) if a > b}
            for name in names}  # fmt: skip


def member(operator: OperatorProcess) -> str:
    return operator.extra_env["POD_NAME"]


def owned_once(operators: list[OperatorProcess], ns: str, names: list[str]) -> dict[str, str]:
    """Wait until each service is evaluated by exactly one member, the one the hash over
    `operators` names: service -> member."""
    members = sorted(member(op) for op in operators)
    wanted = {name: owner(f"{ns}/{name}", members) for name in names}
    seen: dict[str, set[str]] = {}

    def each_by_its_owner() -> bool:
        seen.update(evaluated_by(operators, ns, names))
        return all(by == {wanted[name]} for name, by in seen.items())

    wait_until(f"each service evaluated by exactly its owner among {members}",
               each_by_its_owner, 60)  # fmt: skip
    return {name: str(m) for name, m in wanted.items()}


def metric_sum(operator: OperatorProcess, name: str) -> float:
    """A metric's samples on one operator's /metrics, summed over their labels."""
    lines = httpx.get(operator.metrics_url, timeout=5).text.splitlines()
    return sum(float(line.split()[-1]) for line in lines
               if line.startswith((f"{name} ", f"{name}{{")))  # fmt: skip


@contextlib.contextmanager
def followed(lab: Lab, ns: str, names: list[str]) -> Iterator[dict[str, Venue]]:
    """One simulator following every Deployment's image (a rollback heals its service), each
    scraped by Prometheus: the services by name."""
    args = (*(f"--follow={ns}/{name}" for name in names), f"--kubeconfig={lab.cluster.kubeconfig}",
            "--poll-interval=0.2", LAB_RATE)  # fmt: skip
    with SimulatorProcess(extra_args=args) as sim:
        ports = sim.ports()
        lab.prometheus.add_targets(
            ns, {f"127.0.0.1:{ports[n]}": {"namespace": ns, "service": n} for n in names}
        )
        try:
            yield {n: Venue(lab, sim, ns, n, ports[n], n) for n in names}
        finally:
            lab.prometheus.remove_targets(ns)


@contextlib.contextmanager
def replica(lab: Lab, own: str, name: str) -> Iterator[OperatorProcess]:
    with OperatorProcess(lab.cluster.kubeconfig, lab.prometheus.url, namespaces=("sh-*",),
                         extra_args=("--shards", f"--shard-lease={LEASE_S}"),
                         env={"POD_NAME": name, "POD_NAMESPACE": own}) as started:  # fmt: skip
        yield started


def taken(operator: OperatorProcess) -> float:
    """Its fenced status writes refused because another writer had moved the status on."""
    return metric_sum(operator, "venue_operator_status_taken_total")


def deployment_writes(lab: Lab, ns: str, name: str) -> tuple[Any, ...]:
    """What a write to the Deployment would move: its spec's generation, its annotations
    (a rollback's remediation id and change cause), the time of each writer's last update
    (but the deployment controller's, which follows the pods)."""
    found = get(lab, "deployment", ns, name)["metadata"]
    managers = sorted((m["manager"], m["time"]) for m in found.get("managedFields", [])
                      if m["manager"] != "kube-controller-manager")  # fmt: skip
    return found["generation"], found.get("annotations"), managers


def events_by(lab: Lab, ns: str, name: str, instance: str) -> set[str]:
    """The Events one member posted about a VenueService and its Deployment, by uid."""
    return {e["metadata"]["uid"]
            for kind in ("VenueService", "Deployment")
            for e in lab.cluster.events_of(ns, kind, name)
            if e.get("reportingInstance") == instance}  # fmt: skip


def rolled_back_once(lab: Lab, venue: Venue, pagerduty: PagerDutyReceiver) -> str:
    """The bad rollout undone once (its Events, its status record, one new revision), paged once;
    one line of figures."""
    ns, name = venue.namespace, venue.name
    on_service = venue.events("RolledBack")
    on_deployment = lab.cluster.events_of(ns, "Deployment", name, "RolledBack")
    records = [r for r in read_back(venue.status())["history"] if r["action"] == "RollBack"]
    deployment = get(lab, "deployment", ns, name)
    revision = deployment["metadata"]["annotations"][keys.REVISION]
    alerts = [a for a in pagerduty.pages if a.dedup_key.startswith(f"{ns}/{name}/")]
    said = (f"{name}: RolledBack {len(on_service)} on the VenueService, {len(on_deployment)} on "
            f"the Deployment; {len(records)} rollback in history; revision {revision}; "
            f"{len(alerts)} page")  # fmt: skip
    assert len(on_service) == len(on_deployment) == len(records) == 1, said
    by = on_service[0]["reportingInstance"]  # the replica that rolled it back
    assert by in MEMBERS, by
    twice = said_twice(venue.events())
    assert not twice, twice  # two replicas running it at once say each transition twice
    assert records[0]["result"] == "Succeeded", records
    # v1 is revision 1, the bad image 2, the rollback 3 (a second rollback would be no write:
    # the Events and the history are what count it)
    assert revision == "3", said
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == V1
    assert len(alerts) == 1, [(a.dedup_key, a.summary) for a in alerts]
    return f"{said}; by {by}"


def said_twice(events: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """The transitions of one incident said more than once: a breach (check, level), a severity
    change (from -> to) or a recovery (check), each from whichever replica posted it."""

    def transition(event: dict[str, Any]) -> tuple[str, ...]:
        message = event["message"]
        if event["reason"] == "ThresholdBreached":  # "error_rate 12.5% > critical 5% [...]"
            words = message.split()
            return event["reason"], words[0], words[words.index(">") + 1]
        if event["reason"] == "SeverityChanged":  # "P3 -> P2 (still Degraded): ..."
            return event["reason"], message.partition(":")[0]
        return event["reason"], message.split()[0]  # "error_rate ok (0%)", ...

    reasons = ("ThresholdBreached", "SeverityChanged", "Recovered")
    said = Counter(transition(e) for e in events if e["reason"] in reasons)
    return [key for key, n in said.items() if n > 1]


def test_shards_scale_out_fence_a_sleeper_take_over_the_killed_and_scale_in_acting_once(
    the_lab: Lab,
) -> None:
    lab, kubectl = the_lab, the_lab.cluster.kubectl
    with contextlib.ExitStack() as stack:
        ns = stack.enter_context(fresh_namespace(lab, "sh"))
        own = stack.enter_context(fresh_namespace(lab, "op"))
        pagerduty = stack.enter_context(PagerDutyReceiver())
        role = roles(ns)
        names = sorted(role.values())
        webhook_secret(lab, ns, pagerduty.url)
        for name in names:
            kubectl("apply", "-n", ns, "-f", "-", input=deployment_manifest(name))
        venues = stack.enter_context(followed(lab, ns, names))
        for name, venue in venues.items():
            manifest = venue_manifest(name, venue.port, **FAST, **REMEDIATION, **PAGERDUTY)
            kubectl("apply", "-n", ns, "-f", "-", input=manifest)
        ops = {m: stack.enter_context(replica(lab, own, m)) for m in (FIRST, SECOND)}
        for venue in venues.values():
            venue.wait_status("Healthy with a known-good template", lambda s: s.get(
                "health") == "Healthy" and bool(s.get("healthyTemplates")))  # fmt: skip
        owned_once(list(ops.values()), ns, names)

        # SIGSTOP past its Lease: the other takes its services over. Scale-out meanwhile: a bad
        # rollout of one of them, and at its first breach a third replica starts that gains it
        # (from the second, which lets it go at its next renewal; the third takes it two thirds
        # of a Lease after joining); whichever holds it then rolls it back.
        sleeper = ops[SLEEPER]
        posted_before = metric_sum(sleeper, "venue_operator_events_total")
        os.kill(sleeper.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            wait_until("the other evaluating them all", lambda: all(
                by == {SECOND} for by in evaluated_by([ops[SECOND]], ns, names).values()),
                30)  # fmt: skip
            print(f"fencing: the sleeper's services evaluated by the other "
                  f"{time.monotonic() - stopped:.1f} s after its SIGSTOP")  # fmt: skip
            stale = venues[role["stale"]]
            said = events_by(lab, ns, stale.name, SLEEPER)
            began = time.monotonic()
            set_image(lab, ns, BAD_IMAGE, stale.name)
            stale.wait_event("ThresholdBreached", timeout=60)  # its first breach: warning
            ops[THIRD] = stack.enter_context(replica(lab, own, THIRD))
            stale.wait_event("RolledBack", timeout=60)
            print(f"scale-out: {stale.name} rolled back {time.monotonic() - began:.1f} s after "
                  "its bad rollout, the third replica joining meanwhile")  # fmt: skip
            written = deployment_writes(lab, ns, stale.name)
        finally:
            os.kill(sleeper.pid, signal.SIGCONT)

        # Fencing: woken while that incident is open, with a view from before it, the sleeper
        # owns nothing until it has renewed (and waited as a joiner does), then its own services
        # (from the stored status) but never that one again (the third outranks it there). Not
        # one write from its old view reaches the API server: no status write, not even refused
        # (that would count in status_taken); no Event (each names the member that posted it:
        # reportingInstance, and it counts its own); no write to the Deployment (nobody writes
        # it after the rollback).
        woke = time.monotonic()
        stale.wait_health("Healthy", "None")
        owners = owned_once(list(ops.values()), ns, names)
        print(f"fencing: stopped {woke - stopped:.1f} s; each service evaluated by its owner "
              f"again {time.monotonic() - woke:.1f} s after the SIGCONT")  # fmt: skip
        assert owners[stale.name] == THIRD and owners[role["kept"]] == SLEEPER
        stale_writes = {
            "status writes refused": taken(sleeper),
            f"its Events about {stale.name}": len(events_by(lab, ns, stale.name, SLEEPER) - said),
            "Events it posted": metric_sum(sleeper, "venue_operator_events_total") - posted_before,
            "Deployment writes": int(deployment_writes(lab, ns, stale.name) != written),
        }
        assert not any(stale_writes.values()), (stale_writes, sleeper.log(50))
        assert len(history(stale, "RollBack")) == 1
        leases = kubectl("get", "leases", "-n", own, "-o", "name").stdout.split()
        assert len(leases) == 3, leases

        # Failover: SIGKILL (no Lease released), then a bad rollout of one of its services.
        # Its services are evaluated again once its Lease lapses, and that one rolled back.
        victim = ops.pop(VICTIM)
        victim.kill()
        killed = time.monotonic()
        lost = venues[role["lost"]]
        set_image(lab, ns, BAD_IMAGE, lost.name)
        rest = list(ops.values())
        wait_until("the killed shard's services evaluated again", lambda: all(
            len(by) == 1 for by in evaluated_by(rest, ns, names).values()), 30)  # fmt: skip
        took = time.monotonic() - killed
        lost.wait_event("RolledBack", timeout=60)
        undone = time.monotonic() - killed
        print(f"failover: {sum(m == VICTIM for m in owners.values())} services of the killed "
              f"shard evaluated again {took:.1f} s after its SIGKILL; the bad rollout started "
              f"then rolled back {undone:.1f} s after it")  # fmt: skip
        assert took < 30

        # Scale-in: a bad rollout of a service of the replica that leaves, then SIGTERM: it
        # releases its Lease on the way out, and the last replica takes everything over.
        left = venues[role["left"]]
        set_image(lab, ns, BAD_IMAGE, left.name)
        began = time.monotonic()
        ops.pop(LEAVER).stop()
        print(f"scale-in: SIGTERM to exit {time.monotonic() - began:.1f} s")
        leases = kubectl("get", "leases", "-n", own, "-o", "name").stdout.split()
        assert f"lease.coordination.k8s.io/{LEAVER}" not in leases, leases  # released
        left.wait_event("RolledBack", timeout=60)
        print(f"scale-in: {left.name} rolled back {time.monotonic() - began:.1f} s after its "
              "bad rollout and the SIGTERM")  # fmt: skip
        owned_once(list(ops.values()), ns, names)

        # Every rollback once, each incident paged once; settled first (Healthy: no incident
        # open that could still act or page).
        for name in (role["stale"], role["lost"], role["left"]):
            venues[name].wait_health("Healthy", "None")
            print(rolled_back_once(lab, venues[name], pagerduty))
        kept = venues[role["kept"]]
        assert not history(kept, "RollBack") and not kept.events("RolledBack")
