"""Install a vendored upstream CRD (tests/data) into the lab and wait until it is served."""

from __future__ import annotations

from pathlib import Path

import yaml

from venue_lab.session import Lab, wait_established

DATA = Path(__file__).resolve().parent / "data"


# (kubeconfig, CRD name): installed in that lab already. No test deletes one, and applying a
# large CRD again took a test's set-up 11 s under the full tier's load.
_installed: set[tuple[str, str]] = set()


def install(lab: Lab, path: Path) -> None:
    """Server-side apply (some are over client-side apply's 256 kB annotation limit), then poll
    for Established (`kubectl wait` fails while the new CRD has no conditions yet); once per
    lab."""
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    key = (str(lab.cluster.kubeconfig), name)
    if key in _installed:
        return
    lab.cluster.kubectl("apply", "--server-side", "-f", str(path))
    wait_established(lab.cluster, name)
    _installed.add(key)
