"""The real Alertmanager (Debian's `prometheus-alertmanager` package) on loopback.

Started only by the tests that need it (well under a second). Its one route groups by
VenueService (`[namespace, venueservice]`) and sends every group, firing and resolved, to a
webhook (e.g. tests/harness.py's Receiver), with waits short enough for a test.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx

from venue_lab.processes import Lifecycle, Managed, find_binary, free_port

GROUP_BY = ("namespace", "venueservice")


def config(webhook_url: str, group_by: tuple[str, ...] = GROUP_BY) -> str:
    """One route, one webhook receiver that is also told of resolved groups."""
    labels = ", ".join(group_by)
    return (
        "route:\n"
        "  receiver: hook\n"
        f"  group_by: [{labels}]\n"
        "  group_wait: 1s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "- name: hook\n"
        "  webhook_configs:\n"
        f"  - url: '{webhook_url}'\n"
        "    send_resolved: true\n"
    )


class LocalAlertmanager(Lifecycle):
    """`with LocalAlertmanager(webhook_url) as am:`; `am.url` for the operator."""

    def __init__(self, webhook_url: str, workdir: Path | None = None) -> None:
        self.webhook_url = webhook_url
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="venue-am-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Managed | None = None

    def start(self, timeout: float = 30.0) -> None:
        path = self.workdir / "alertmanager.yml"
        path.write_text(config(self.webhook_url))
        self.proc = Managed(
            "alertmanager",
            [
                find_binary("prometheus-alertmanager", "VENUE_ALERTMANAGER_BIN"),
                f"--config.file={path}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip: a single, private instance
                "--log.level=warn",
            ],
            self.workdir / "alertmanager.log",
        )
        self.proc.start_ready(f"{self.url}/-/ready", timeout)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """Active alerts (`GET /api/v2/alerts`), those whose labels match `filters`."""
        found: list[dict[str, Any]] = httpx.get(f"{self.url}/api/v2/alerts", timeout=5.0).json()
        return [a for a in found if all(a["labels"].get(k) == v for k, v in filters.items())]

    def tail(self) -> str:
        return self.proc.tail() if self.proc else ""
