"""Shards (#24): three replicas with --shards own each VenueService once between them, and a
replica killed (SIGKILL: no Lease released) has its services taken over when its Lease lapses."""

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

SERVICES = [f"svc-{i}" for i in range(6)]
LEASE_S = 6  # the takeover time: a lapsed Lease, then the others' next renewal (a third of it)
WINDOW_S = 3.0  # three of the services' cycles


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


def test_three_shards_own_each_service_once_and_take_over_a_killed_one(
    the_lab: Lab, simulator: SimulatorProcess
) -> None:
    lab, kubectl = the_lab, the_lab.cluster.kubectl
    with fresh_namespace(lab, "sh") as ns, fresh_namespace(lab, "op") as own:
        for name in SERVICES:
            port = simulator.add_service(f"{ns}-{name}")
            kubectl("apply", "-n", ns, "-f", "-", input=deployment_manifest(name))
            kubectl("apply", "-n", ns, "-f", "-", input=venue_manifest(name, port, **FAST))
        with shards(lab, own, 3) as operators:
            seen: dict[str, set[int]] = {}

            def each_by_one() -> bool:
                seen.update(evaluated_by(operators, ns))
                return all(len(by) == 1 for by in seen.values())

            wait_until("each service evaluated by exactly one shard", each_by_one, 60)
            leases = kubectl("get", "leases", "-n", own, "-o", "name").stdout.split()
            assert len(leases) == 3, leases
            owners = {name: next(iter(by)) for name, by in seen.items()}
            victim = max(set(owners.values()), key=list(owners.values()).count)
            orphans = [name for name, owner in owners.items() if owner == victim]
            operators[victim].kill()
            killed = time.monotonic()
            rest = [op for i, op in enumerate(operators) if i != victim]

            def taken_over() -> bool:
                by = evaluated_by(rest, ns)
                return all(len(by[name]) == 1 for name in SERVICES)

            wait_until("the killed shard's services evaluated again", taken_over, 30)
            took = time.monotonic() - killed
            print(f"{len(orphans)} services of the killed shard evaluated again {took:.1f} s "
                  "after its SIGKILL")  # fmt: skip
            assert took < 30


def taken(operator: OperatorProcess) -> float:
    """Its fenced status writes refused because another writer had moved the status on."""
    for line in httpx.get(operator.metrics_url, timeout=5).text.splitlines():
        if line.startswith("venue_operator_status_taken_total "):
            return float(line.split()[1])
    return 0.0


def test_a_shard_paused_past_its_lease_wakes_to_what_the_others_wrote(
    the_lab: Lab, simulator: SimulatorProcess
) -> None:
    """SIGSTOP past its Lease, the others take its services over and record a database outage
    it never saw; SIGCONT: it owns nothing until it has renewed, then starts each service again
    from the stored status. Not one write from its stale view reaches the API server, not even
    to be refused (a refused one would count in venue_operator_status_taken_total)."""
    lab, kubectl = the_lab, the_lab.cluster.kubectl
    with fresh_namespace(lab, "sh") as ns, fresh_namespace(lab, "op") as own:
        for name in SERVICES:
            port = simulator.add_service(f"{ns}-{name}")
            kubectl("apply", "-n", ns, "-f", "-", input=deployment_manifest(name))
            kubectl("apply", "-n", ns, "-f", "-", input=venue_manifest(name, port, **FAST))
        with shards(lab, own, 2) as operators:
            seen: dict[str, set[int]] = {}

            def each_by_one() -> bool:
                seen.update(evaluated_by(operators, ns))
                return all(len(by) == 1 for by in seen.values())

            wait_until("each service evaluated by exactly one shard", each_by_one, 60)
            owners = {name: next(iter(by)) for name, by in seen.items()}
            sleeper = max(set(owners.values()), key=list(owners.values()).count)
            theirs = [name for name, owner in owners.items() if owner == sleeper]
            other = operators[1 - sleeper]
            os.kill(operators[sleeper].pid, signal.SIGSTOP)
            try:
                wait_until("the other shard evaluates them all",
                           lambda: all(len(by) == 1 for by in evaluated_by([other], ns).values()),
                           30)  # fmt: skip
                for name in theirs:
                    simulator.set_faults(f"{ns}-{name}", database_down=True)

                def outage_recorded() -> bool:
                    got = {n: get(lab, "venueservice", ns, n).get("status", {}) for n in theirs}
                    return all(s.get("health") == "Down" for s in got.values())

                wait_until("the outage recorded by the other shard", outage_recorded, 30)
            finally:
                os.kill(operators[sleeper].pid, signal.SIGCONT)
            wait_until("the woken shard running its services again", lambda: all(
                by == {sleeper} for name, by in evaluated_by(operators, ns).items()
                if name in theirs), 30)  # fmt: skip
            assert taken(operators[sleeper]) == 0, operators[sleeper].log(50)
            for name in theirs:
                assert get(lab, "venueservice", ns, name)["status"]["health"] == "Down"
