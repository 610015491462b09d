"""Install a vendored upstream CRD (tests/data) into the lab and wait until it is served."""

from __future__ import annotations

from pathlib import Path

import yaml

from venue_lab.session import Lab, wait_established

DATA = Path(__file__).resolve().parent / "data"


def install(lab: Lab, path: Path) -> None:
    """Server-side apply (some are over client-side apply's 256 kB annotation limit), then poll
    for Established (`kubectl wait` fails while the new CRD has no conditions yet)."""
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    kubectl = lab.cluster.kubectl
    kubectl("apply", "--server-side", "-f", str(path))
    wait_established(lab.cluster, name)
