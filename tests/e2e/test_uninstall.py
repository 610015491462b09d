"""Uninstalling: a VenueService deleted after the operator is gone must not hang on Kopf's
finalizer; `venue-operator uninstall` releases it (the supported order is in the README)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.harness import FAST, fresh_namespace, get, venue_outside_session
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_operator.cli.uninstall import FINALIZER


def test_venueservices_deleted_after_the_operator_are_released_by_uninstall(
    the_lab: Lab,
) -> None:
    lab, kubectl = the_lab, the_lab.cluster.kubectl
    with fresh_namespace(lab, "x") as ns, venue_outside_session(lab, ns, **FAST) as venue:
        with OperatorProcess(lab.cluster.kubeconfig, lab.prometheus.url, namespaces=("x-*",)):
            venue.wait_status("evaluated", lambda s: bool(s.get("health")), 60)

        def finalizers() -> list[str]:
            meta = get(lab, "venueservice", ns, venue.name)["metadata"]
            return list(meta.get("finalizers") or [])

        assert FINALIZER in finalizers()  # the operator is gone, its finalizer is not
        kubectl("delete", "venueservice", venue.name, "-n", ns, "--wait=false")
        stuck = get(lab, "venueservice", ns, venue.name)
        assert stuck["metadata"].get("deletionTimestamp"), "waits for the finalizer"

        env = {**os.environ, "KUBECONFIG": str(lab.cluster.kubeconfig)}
        # -n: the lab is shared, and the session operator still runs over the t-* namespaces
        # (uninstalling under a running operator is not the supported order)
        done = subprocess.run(
            [sys.executable, "-m", "venue_operator.cli", "uninstall", "-n", ns],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"released {ns}/{venue.name}" in done.stdout
        wait_until("the VenueService deleted", lambda: not kubectl(
            "get", "venueservice", venue.name, "-n", ns, "--ignore-not-found", "-o", "name",
        ).stdout.strip(), 30)  # fmt: skip
