"""The real Prometheus server (Debian's `prometheus` package) on loopback.

Scrape targets are file-based service discovery: `add_target` writes one JSON
file per target, which Prometheus picks up without a restart.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import httpx

from venue_lab.processes import LabError, Lifecycle, Managed, find_binary, free_port, wait_until


class LocalPrometheus(Lifecycle):
    """`with LocalPrometheus(scrape_interval="1s") as prom:`; `prom.url` for queries."""

    def __init__(
        self, workdir: Path | None = None, scrape_interval: str = "1s", keep: bool = False
    ) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="venue-prom-"))
        self.scrape_interval = scrape_interval
        self.keep = keep
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets_dir = self.workdir / "targets"
        self.rules_dir = self.workdir / "rules"
        self.proc: Managed | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        self.rules_dir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {self.scrape_interval}\n"
            f"  evaluation_interval: {self.scrape_interval}\n"
            f"  scrape_timeout: {self.scrape_interval}\n"
            f"rule_files: ['{self.rules_dir}/*.json']\n"
            "scrape_configs:\n"
            "- job_name: venue\n"
            "  file_sd_configs:\n"
            f"  - files: ['{self.targets_dir}/*.json']\n"
            "    refresh_interval: 1s\n"
        )
        self.proc = Managed(
            "prometheus",
            [
                find_binary("prometheus", "VENUE_PROMETHEUS_BIN"),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=2h",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            self.workdir / "prometheus.log",
        )
        self.proc.start_ready(f"{self.url}/-/ready", timeout)

    def close(self) -> None:
        self.stop()
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def restart(self, timeout: float = 60.0) -> None:
        self.stop()
        self.start(timeout)

    def add_target(self, address: str, labels: dict[str, str]) -> None:
        """Scrape `address` (host:port) with extra `labels` from the next refresh on."""
        self.add_targets(_file_name(address), {address: labels})

    def add_targets(
        self,
        name: str,
        targets: Mapping[str, dict[str, str]] | Iterable[tuple[str, dict[str, str]]],
    ) -> None:
        """Many targets (address -> labels, or pairs: one address scraped with several
        `__param_*` labels) in one file: at 1,000 targets, one file per target costs
        Prometheus' file discovery most of a core."""
        pairs = targets.items() if isinstance(targets, Mapping) else targets
        groups = [{"targets": [address], "labels": labels} for address, labels in pairs]
        tmp = self.targets_dir / f".{name}.tmp"
        tmp.write_text(json.dumps(groups))
        tmp.rename(self.targets_dir / f"{name}.json")  # atomic: never a half-written file

    def remove_target(self, address: str) -> None:
        self.remove_targets(_file_name(address))

    def remove_targets(self, name: str) -> None:
        """No more scrapes of what `add_targets(name, ...)` (or `add_target`) added."""
        (self.targets_dir / f"{name}.json").unlink(missing_ok=True)

    def load_rules(self, name: str, groups: list[dict[str, object]], timeout: float = 30.0) -> None:
        """Evaluate these rule groups (a rules file's `groups`, e.g. a PrometheusRule's
        spec.groups) from now on: written as rules/NAME.json, then a config reload."""
        path = self.rules_dir / f"{name}.json"
        path.write_text(json.dumps({"groups": groups}))
        try:
            self._reload_until(lambda loaded: {g["name"] for g in groups} <= loaded, timeout)
        except LabError:
            path.unlink()  # a file Prometheus refuses would fail every later reload
            raise

    def remove_rules(self, name: str, timeout: float = 30.0) -> None:
        path = self.rules_dir / f"{name}.json"
        if not path.exists():
            return  # never loaded (e.g. a test failed before): nothing to remove
        groups = {g["name"] for g in json.loads(path.read_text())["groups"]}
        path.unlink()
        self._reload_until(lambda loaded: not groups & loaded, timeout)

    def _reload_until(self, done: Callable[[set[str]], bool], timeout: float) -> None:
        def loaded() -> set[str]:
            body = httpx.get(f"{self.url}/api/v1/rules", timeout=2.0).json()
            return {g["name"] for g in body["data"]["groups"]}

        response = httpx.post(f"{self.url}/-/reload", timeout=10.0)
        if response.status_code != 200:  # e.g. a rules file Prometheus refuses
            raise LabError(f"prometheus reload failed: {response.text.strip()}")
        wait_until("prometheus rules reloaded", lambda: done(loaded()), timeout, interval=0.2)

    def wait_target_up(self, address: str, timeout: float = 30.0) -> None:
        """Until Prometheus has scraped `address` successfully at least once."""

        def up() -> bool:
            data = httpx.get(f"{self.url}/api/v1/targets", timeout=2.0).json()
            return any(
                t["scrapeUrl"].split("/")[2] == address and t["health"] == "up"
                for t in data["data"]["activeTargets"]
            )

        wait_until(f"prometheus target {address} up", up, timeout, interval=0.2)

    def query(self, promql: str) -> list[dict[str, object]]:
        """Instant query (lab helper for tests); raises on a Prometheus error."""
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5.0).json()
        if body.get("status") != "success":
            raise LabError(f"query {promql!r} failed: {body}")
        result: list[dict[str, object]] = body["data"]["result"]
        return result


def _file_name(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", address)
