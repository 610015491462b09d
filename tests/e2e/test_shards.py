"""Shards (#24): three replicas with --shards own each VenueService once between them; one
paused past its Lease wakes to what the others wrote without a write from its old view; one
killed (SIGKILL: no Lease released) has its services taken over when its Lease lapses."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

import httpx

from tests.harness import (
    FAST,
    deployment_manifest,
    evaluation_count,
    fresh_namespace,
    get,
    venue_manifest,
)
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_lab.simulator.process import SimulatorProcess

SERVICES = [f"svc-{i}" for i in range(5)]
LEASE_S = 4  # the takeover time: a lapsed Lease, then the others' next renewal (a third of it)
WINDOW_S = 2.0  # two of the services' cycles


def counts(operators: list[OperatorProcess], ns: str) -> dict[str, list[float]]:
    """Each service's evaluation count on each operator (its own /metrics)."""
    found = [httpx.get(op.metrics_url, timeout=5).text for op in operators]
    return {name: [evaluation_count(text, ns, name) for text in found] for name in SERVICES}


def evaluated_by(operators: list[OperatorProcess], ns: str) -> dict[str, set[int]]:
    """Which operators evaluated each service over one window."""
    before = counts(operators, ns)
    time.sleep(WINDOW_S)  # the measurement window itself, not a wait for a condition
    after = counts(operators, ns)
    return {name: {i for i, (b, a) in enumerate(zip(before[name], after[name], strict=True))
                   if a > b} for name in SERVICES}  # fmt: skip


@contextlib.contextmanager
def shards(lab: Lab, own: str, n: int) -> Iterator[list[OperatorProcess]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(OperatorProcess(
            lab.cluster.kubeconfig, lab.prometheus.url, namespaces=("sh-*",),
            extra_args=("--shards", f"--shard-lease={LEASE_S}"),
            env={"POD_NAME": f"venue-operator-{i}", "POD_NAMESPACE": own},
        )) for i in range(n)]  # fmt: skip


def taken(operator: OperatorProcess) -> float:
    """Its fenced status writes refused because another writer had moved the status on."""
    for line in httpx.get(operator.metrics_url, timeout=5).text.splitlines():
        if line.startswith("venue_operator_status_taken_total "):
            return float(line.split()[1])
    return 0.0


def test_shards_own_each_service_once_wake_without_stale_writes_and_take_over_the_lost(
    the_lab: Lab, simulator: SimulatorProcess
) -> None:
    lab, kubectl = the_lab, the_lab.cluster.kubectl
    with fresh_namespace(lab, "sh") as ns, fresh_namespace(lab, "op") as own:
        for name in SERVICES:
            port = simulator.add_service(f"{ns}-{name}")
            kubectl("apply", "-n", ns, "-f", "-", input=deployment_manifest(name))
            kubectl("apply", "-n", ns, "-f", "-", input=venue_manifest(name, port, **FAST))
        with shards(lab, own, 3) as operators:
            owners = owned_once(operators, ns)
            leases = kubectl("get", "leases", "-n", own, "-o", "name").stdout.split()
            assert len(leases) == 3, leases

            # SIGSTOP past its Lease: the others take its services over and record a database
            # outage it never sees; SIGCONT: it owns nothing until it has renewed, then starts
            # each again from the stored status. Not one write from its old view reaches the
            # API server, not even to be refused (that would count in status_taken).
            sleeper = busiest(owners)
            theirs = [name for name, owner in owners.items() if owner == sleeper]
            awake = [op for i, op in enumerate(operators) if i != sleeper]
            os.kill(operators[sleeper].pid, signal.SIGSTOP)
            try:
                wait_until("the others evaluate them all", lambda: all(
                    len(by) == 1 for by in evaluated_by(awake, ns).values()), 30)  # fmt: skip
                for name in theirs:
                    simulator.set_faults(f"{ns}-{name}", database_down=True)
                wait_until("the outage recorded by the others", lambda: all(
                    get(lab, "venueservice", ns, n).get("status", {}).get("health") == "Down"
                    for n in theirs), 30)  # fmt: skip
            finally:
                os.kill(operators[sleeper].pid, signal.SIGCONT)
            wait_until("the woken shard running its services again", lambda: all(
                by == {sleeper} for name, by in evaluated_by(operators, ns).items()
                if name in theirs), 30)  # fmt: skip
            assert taken(operators[sleeper]) == 0, operators[sleeper].log(50)
            for name in theirs:
                assert get(lab, "venueservice", ns, name)["status"]["health"] == "Down"

            # SIGKILL (no Lease released): its services are evaluated again once it lapses.
            owners = owned_once(operators, ns)
            victim = busiest(owners)
            operators[victim].kill()
            killed = time.monotonic()
            rest = [op for i, op in enumerate(operators) if i != victim]
            wait_until("the killed shard's services evaluated again", lambda: all(
                len(by) == 1 for by in evaluated_by(rest, ns).values()), 30)  # fmt: skip
            took = time.monotonic() - killed
            lost = sum(owner == victim for owner in owners.values())
            print(f"{lost} services of the killed shard evaluated again {took:.1f} s after "
                  "its SIGKILL")  # fmt: skip
            assert took < 30


def owned_once(operators: list[OperatorProcess], ns: str) -> dict[str, int]:
    """Wait until each service is evaluated by exactly one operator: service -> its index."""
    seen: dict[str, set[int]] = {}

    def each_by_one() -> bool:
        seen.update(evaluated_by(operators, ns))
        return all(len(by) == 1 for by in seen.values())

    wait_until("each service evaluated by exactly one shard", each_by_one, 60)
    return {name: next(iter(by)) for name, by in seen.items()}


def busiest(owners: dict[str, int]) -> int:
    counted = list(owners.values())
    return max(set(counted), key=counted.count)
