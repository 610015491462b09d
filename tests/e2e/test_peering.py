"""Two operator processes at once (Kopf peering): only one acts; the other takes over when
the first dies, within the peering lifetime."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.harness import (
    BAD_IMAGE,
    FAST,
    evaluations,
    fresh_namespace,
    history,
    set_image,
    venue_outside_session,
)
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import REPO_ROOT, Lab, wait_established

LIFETIME_S = 15  # Kopf renews 5-10 s before expiry: shorter lifetimes flap


NAMESPACED_PEERING = """
apiVersion: kopf.dev/v1
kind: KopfPeering
metadata: {name: venue-operator}
"""


@pytest.fixture
def peered_namespace(the_lab: Lab) -> Iterator[str]:
    kubectl = the_lab.cluster.kubectl
    optional = REPO_ROOT / "manifests" / "optional"
    kubectl("apply", "-f", str(optional / "peering-crds.yaml"))
    for crd in ("kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"):
        wait_established(the_lab.cluster, crd, 30)
    peering = str(optional / "peering.yaml")
    applied = lambda: kubectl("apply", "-f", peering, check=False).returncode == 0  # noqa: E731
    wait_until("peering kinds served", applied, 30)
    with fresh_namespace(the_lab, "p") as ns:
        kubectl("apply", "-n", ns, "-f", "-", input=NAMESPACED_PEERING)
        yield ns


def peer(lab: Lab, ns: str, priority: int) -> OperatorProcess:
    return OperatorProcess(
        lab.cluster.kubeconfig, lab.prometheus.url, namespaces=(ns,),
        extra_args=("--peering=venue-operator", f"--priority={priority}",
                    f"--peering-lifetime={LIFETIME_S}"),
    )  # fmt: skip


def test_only_one_of_two_operators_acts_and_the_other_takes_over(
    the_lab: Lab, peered_namespace: str
) -> None:
    ns = peered_namespace
    with venue_outside_session(the_lab, ns, **FAST) as venue, peer(the_lab, ns, 200) as leader:
        follower = peer(the_lab, ns, 100)
        with follower:
            venue.wait_status("known-good template", lambda s: bool(s.get("healthyTemplates")))
            # Kopf starts peered operators paused; the follower never resumes while the
            # leader's record is fresh.
            wait_until("the leader evaluates", lambda: evaluations(leader, venue) >= 5, 30)
            assert evaluations(follower, venue) == 0
            set_image(the_lab, ns, BAD_IMAGE)
            venue.wait_event("RolledBack", timeout=90)
            venue.wait_health("Healthy", "None")
            assert len(history(venue, "RollBack")) == 1
            assert sum(e.get("count", 1) for e in venue.events("RolledBack")) == 1
            assert evaluations(follower, venue) == 0, "the paused follower evaluated nothing"

            killed = time.monotonic()
            leader.kill()
            wait_until("the follower takes over",
                       lambda: evaluations(follower, venue) > 0, LIFETIME_S * 4)  # fmt: skip
            print(f"\nfailover: follower evaluating {time.monotonic() - killed:.1f}s after SIGKILL")
