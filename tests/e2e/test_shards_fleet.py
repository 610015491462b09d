"""#24 item 5 in the lab: two shards count one storm together through their Leases (each
publishes its services' breaches in its own Lease's renewal, fleet/exchange.py), through the
real API server's merge patches and lists. A storm needs four services here; each shard runs
only its share of the four, so whichever shard runs fewer sees the storm only through the
other's Lease. Their reads are sized to their share (loop/workload_watch.py): each keeps the
pods of its own services' Deployments, and nothing of the lab's other tests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import httpx

from tests.harness import FAST, deployment_manifest, fresh_namespace, venue_manifest
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_lab.simulator.process import SimulatorProcess
from venue_operator.fleet.shards import owner
from venue_operator.fleet.summary import ANNOTATION, parse

SERVICES = [f"svc-{i}" for i in range(4)]
STORM = ("--storm-min-services=4", "--storm-min-fraction=0.5", "--storm-window=30")


def sample(operator: OperatorProcess, prefix: str) -> float | None:
    """The value of the one series of the operator's /metrics whose line starts `prefix`."""
    for line in httpx.get(operator.metrics_url, timeout=5).text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return None


@contextlib.contextmanager
def two_shards(lab: Lab, own: str) -> Iterator[list[OperatorProcess]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(OperatorProcess(
            lab.cluster.kubeconfig, lab.prometheus.url, namespaces=("sf-*",),
            extra_args=("--shards", "--shard-lease=3", *STORM),
            env={"POD_NAME": f"venue-operator-{i}", "POD_NAMESPACE": own},
        )) for i in range(2)]  # fmt: skip


def test_two_shards_each_see_the_storm_of_the_services_both_run(
    the_lab: Lab, simulator: SimulatorProcess
) -> None:
    lab, kubectl = the_lab, the_lab.cluster.kubectl
    with fresh_namespace(lab, "sf") as ns, fresh_namespace(lab, "op") as own:
        for name in SERVICES:
            port = simulator.add_service(f"{ns}-{name}")
            simulator.set_faults(f"{ns}-{name}", database_down=True)  # /health: 503
            kubectl("apply", "-n", ns, "-f", "-", input=deployment_manifest(name))
            kubectl("apply", "-n", ns, "-f", "-", input=venue_manifest(name, port, **FAST))
        storm = f'venue_operator_fleet_storm{{check="health",scope="namespace {ns}"}}'
        with two_shards(lab, own) as operators:
            wait_until("both shards counting the storm of all four", lambda: all(
                sample(op, storm) == 4 for op in operators), 30)  # fmt: skip
            for op in operators:
                assert sample(op, 'venue_operator_fleet_replicas{by="leases"}') == 2
            members = [op.extra_env["POD_NAME"] for op in operators]
            runs = {m: sorted(n for n in SERVICES if owner(f"{ns}/{n}", members) == m)
                    for m in members}  # fmt: skip

            def each_published_by_the_shard_the_hash_gives_it() -> bool:
                # the first shard ran all four until the second settled and published them
                # all meanwhile: not the split that the pods kept are counted by
                listed = json.loads(kubectl("get", "leases", "-n", own, "-o", "json").stdout)
                published = {item["spec"]["holderIdentity"]: parse(annotations[ANNOTATION]).reports
                             for item in listed["items"]
                             if ANNOTATION in (annotations := item["metadata"].get("annotations")
                                               or {})}  # fmt: skip
                names = {m: sorted(r.name for r in published.get(m, [])) for m in members}
                assert names == runs, f"published {names}, by the hash {runs}"
                return True

            wait_until("each service published once, by the shard that runs it",
                       each_published_by_the_shard_the_hash_gives_it, 30)  # fmt: skip
            pods = 'venue_operator_kept_objects{kind="pods"}'

            def each_keeping_its_own_pods() -> bool:
                kept = [sample(op, pods) for op in operators]
                own = [2 * len(runs[m]) for m in members]
                assert kept == own, f"pods kept {kept}, of the services each runs {own}"
                return True

            # 60 s: under the whole suite a shard dropping the pods it handed over took > 30 s
            wait_until("each shard keeping its own services' 2 pods each, and no other pod",
                       each_keeping_its_own_pods, 60)  # fmt: skip
