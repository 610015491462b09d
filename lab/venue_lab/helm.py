"""The real `helm`, built from the Go module proxy (tools/helm/build.sh) and cached outside
the repo like the control plane; run against the lab's cluster for the chart's tests."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

from venue_lab.cluster import REPO_ROOT, LocalCluster
from venue_lab.processes import LabError, built

BUILD_SCRIPT = REPO_ROOT / "tools" / "helm" / "build.sh"


@cache
def ensure_helm() -> Path:
    """The helm binary: built the first time (a minute or two), then reused at once."""
    if os.environ.get("VENUE_HELM"):  # names the binary itself
        return Path(os.environ["VENUE_HELM"])
    return built(BUILD_SCRIPT, "helm") / "helm"


def helm(
    *args: str, cluster: LocalCluster | None = None, check: bool = True, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run helm (against `cluster` when given, with its admin kubeconfig); raise with its
    stderr on failure. Helm's own caches and config stay in a temporary home, never ~/."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
    home = Path(os.environ.get("TMPDIR", "/tmp")) / f"venue-lab-helm-{os.getuid()}"
    for var, sub in (("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"),
                     ("HELM_DATA_HOME", "data")):  # fmt: skip
        env[var] = str(home / sub)
    if cluster is not None:
        env["KUBECONFIG"] = str(cluster.kubeconfig)
    result = subprocess.run(
        [str(ensure_helm()), *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    if check and result.returncode != 0:
        raise LabError(f"helm {' '.join(args)} failed: {result.stderr.strip()}")
    return result
