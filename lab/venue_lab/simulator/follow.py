"""Follow-a-Deployment: a simulated service takes its faults from a Deployment's image.

So a real `kubectl set image ...:v1.2.4-bad` breaks the simulated service and a real
`kubectl rollout undo` heals it. The blocking Kubernetes client runs in worker threads
(`asyncio.to_thread`); the results are applied on the loop.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from venue_lab.simulator.control import Simulator

log = structlog.get_logger(__name__)

# (namespace, deployment) -> the image of the pod template's first container; raises on failure.
ImageReader = Callable[[str, str], str]


@dataclass(frozen=True)
class PodView:
    """What the simulator needs of one of the Deployment's pods."""

    name: str
    ip: str
    image: str


_SPEC = re.compile(r"(?P<namespace>[^/=\s]+)/(?P<deployment>[^/=\s]+)(=(?P<service>[^/=\s]+))?")
REQUEST_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class FollowTarget:
    """`NAMESPACE/DEPLOYMENT[=SERVICE]`; the service name defaults to the Deployment's."""

    namespace: str
    deployment: str
    service: str

    @classmethod
    def parse(cls, spec: str) -> FollowTarget:
        match = _SPEC.fullmatch(spec)
        if match is None:
            raise ValueError(f"expected NAMESPACE/DEPLOYMENT[=SERVICE], got {spec!r}")
        deployment = match["deployment"]
        return cls(match["namespace"], deployment, match["service"] or deployment)


def kubernetes_image_reader(kubeconfig: str | None = None) -> ImageReader:
    """An ImageReader backed by the `kubernetes` client (default kubeconfig when None)."""
    from kubernetes import client, config  # imported late: slow, and only this mode needs it

    new_client: Callable[..., Any] = config.new_client_from_config  # untyped upstream
    apps = client.AppsV1Api(new_client(config_file=kubeconfig))

    def read_image(namespace: str, deployment: str) -> str:
        found = apps.read_namespaced_deployment(
            deployment, namespace, _request_timeout=REQUEST_TIMEOUT_S
        )
        pod_spec = found.spec.template.spec if found.spec else None
        image = pod_spec.containers[0].image if pod_spec and pod_spec.containers else None
        if not image:
            raise ValueError(f"deployment {namespace}/{deployment} has no container image")
        return image

    return read_image


# One read for every target at once: (namespace, deployment) -> (image, its pods).
BulkReader = Callable[[], dict[tuple[str, str], tuple[str, list[PodView]]]]


def kubernetes_bulk_reader(kubeconfig: str | None = None) -> BulkReader:
    """Every Deployment and its pods (by the lab's `app: <deployment>` label) in two list
    calls, however many targets: a benchmark following a hundred Deployments costs the API
    server two requests per poll instead of two hundred."""
    from kubernetes import client, config

    new_client: Callable[..., Any] = config.new_client_from_config  # untyped upstream
    api = new_client(config_file=kubeconfig)
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)

    def listed(response: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(response.data)["items"]
        return items

    def read_all() -> dict[tuple[str, str], tuple[str, list[PodView]]]:
        # Raw JSON, not the client's models: deserialising a thousand pods into models took
        # seconds per poll, long enough for a new pod to go unserved past a guard's reads.
        raw: dict[str, Any] = {"_request_timeout": REQUEST_TIMEOUT_S, "_preload_content": False}
        deployments = listed(apps.list_deployment_for_all_namespaces(**raw))
        pods = listed(core.list_pod_for_all_namespaces(label_selector="app", **raw))
        by_app: dict[tuple[str, str], list[PodView]] = {}
        for pod in pods:
            meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
            if meta.get("deletionTimestamp") or not status.get("podIP"):
                continue
            containers = spec.get("containers") or [{}]
            app, image = (meta.get("labels") or {}).get("app"), containers[0].get("image")
            if app and image:
                view = PodView(meta["name"], status["podIP"], image)
                by_app.setdefault((meta["namespace"], app), []).append(view)
        out = {}
        for d in deployments:
            containers = d["spec"]["template"]["spec"].get("containers") or []
            if containers:
                key = (d["metadata"]["namespace"], d["metadata"]["name"])
                out[key] = (str(containers[0]["image"]), by_app.get(key, []))
        return out

    return read_all


@dataclass
class _Progress:
    image: str | None = None
    failures: int = 0
    retry_at: float = 0.0


class DeploymentFollower:
    """Polls each target's Deployment and hands image changes to its simulated service."""

    def __init__(
        self,
        simulator: Simulator,
        targets: Sequence[FollowTarget],
        read_image: ImageReader,
        interval: float = 0.5,
        max_backoff: float = 10.0,
    ) -> None:
        self.simulator = simulator
        self.targets = tuple(targets)
        self.read_image = read_image
        self.interval = interval
        self.max_backoff = max_backoff
        self._progress = {target: _Progress() for target in self.targets}
        self.read_all: BulkReader | None = None
        self.pod_port = 0
        self.targets_file: Path | None = None
        self._listed: list[dict[str, Any]] | None = None  # what targets_file holds
        # per target: "namespace/pod" -> the (ip, image) its endpoint serves
        self._pod_identity: dict[FollowTarget, dict[str, tuple[str, str]]] = {
            target: {} for target in self.targets
        }

    async def run(self) -> None:
        """Poll until cancelled; API errors are logged and retried with backoff."""
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval)

    def follow_in_bulk(
        self, read_all: BulkReader, port: int, targets_file: Path | None = None
    ) -> None:
        """Read every target with one `read_all` per poll, and serve each of its pods' own
        endpoint on podIP:port (the lab's pod IPs are loopback). With `targets_file`, list
        those endpoints there for Prometheus' file discovery, labelled `namespace`, `service`
        and `pod` as a ServiceMonitor labels a pod's series."""
        self.read_all = read_all
        self.pod_port = port
        self.targets_file = targets_file

    async def poll_once(self) -> None:
        """One pass over the targets that are not backing off."""
        if self.read_all is not None:
            await self._poll_bulk(self.read_all)
            return
        for target in self.targets:
            progress = self._progress[target]
            if time.monotonic() >= progress.retry_at:
                await self._poll(target, progress)

    async def _poll(self, target: FollowTarget, progress: _Progress) -> None:
        try:
            image = await asyncio.to_thread(self.read_image, target.namespace, target.deployment)
            if image != progress.image:
                await self.simulator.service(target.service).set_image(image)
                progress.image = image
        except Exception as exc:
            progress.failures += 1
            delay = min(self.max_backoff, self.interval * 2**progress.failures)
            progress.retry_at = time.monotonic() + delay
            log.warning(
                "cannot follow deployment",
                deployment=f"{target.namespace}/{target.deployment}",
                error=str(exc) or type(exc).__name__,
                failures=progress.failures,
                retry_in_s=round(delay, 1),
            )
            return
        if progress.failures:
            log.info("following deployment again", deployment=target.deployment)
        progress.failures = 0

    async def _poll_bulk(self, read_all: BulkReader) -> None:
        try:
            snapshot = await asyncio.to_thread(read_all)
        except Exception as exc:
            log.warning("cannot follow deployments", error=str(exc) or type(exc).__name__)
            return
        for target in self.targets:
            found = snapshot.get((target.namespace, target.deployment))
            if found is None:
                continue
            image, pods = found
            progress = self._progress[target]
            if image != progress.image:
                await self.simulator.service(target.service).set_image(image)
                progress.image = image
            await self._sync_pods(self._pod_identity[target], target.namespace, pods)
        if self.targets_file is not None:
            self._list_targets(self.targets_file)

    def _list_targets(self, path: Path) -> None:
        """The served pod endpoints as file_sd groups, rewritten only when they change."""
        groups = [
            {"targets": [f"{ip}:{self.pod_port}"],
             "labels": {"namespace": target.namespace, "service": target.service,
                        "pod": name.split("/", 1)[1]}}
            for target in self.targets
            for name, (ip, _) in sorted(self._pod_identity[target].items())
        ]  # fmt: skip
        if groups == self._listed:
            return
        partial = path.with_name(f".{path.name}.tmp")
        partial.write_text(json.dumps(groups))
        partial.replace(path)  # atomic: Prometheus never reads half a file
        self._listed = groups

    def stop_listing(self) -> None:
        """Remove targets_file (the endpoints it lists are gone)."""
        if self.targets_file is not None:
            self.targets_file.unlink(missing_ok=True)

    async def _sync_pods(
        self, served: dict[str, tuple[str, str]], namespace: str, pods: list[PodView]
    ) -> None:
        """Gone (or changed) pods first: kwok may hand a deleted pod's IP to a new one."""
        wanted = {f"{namespace}/{pod.name}": (pod.ip, pod.image) for pod in pods}
        for name, identity in list(served.items()):
            if wanted.get(name) != identity:
                await self.simulator.remove_pod(name)
                del served[name]
        for name, (ip, image) in wanted.items():
            if name not in served:
                try:
                    await self.simulator.add_pod(name, ip, self.pod_port, image)
                except OSError as exc:
                    log.warning("cannot serve pod", pod=name, ip=ip, error=str(exc))
                    continue
                served[name] = (ip, image)
