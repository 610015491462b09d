"""A real local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (one fake node), all on 127.0.0.1, built from Go modules.

Used by the pytest fixtures and by the demo. Everything lives in one work
directory (certificates, kubeconfig, data, one log per component).
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import structlog

from venue_lab.pod_network import PodNetwork
from venue_lab.processes import LabError, Lifecycle, Managed, built, free_port, wait_until

log = structlog.get_logger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "tools" / "cluster" / "build.sh"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "job-controller",
    "cronjob-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "ttl-after-finished-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",  # manifests/user-roles.yaml into view/edit/admin
    # enforces an HPA's minReplicas even without a metrics API (tests/e2e/test_coexistence.py)
    "horizontal-pod-autoscaler-controller",
)
FAKE_NODE = "kwok-node-0"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


def ensure_binaries() -> Path:
    """Build (first time, with progress on stderr) or reuse the cached control plane."""
    return built(BUILD_SCRIPT, "control-plane", "VENUE_CLUSTER_BIN")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_pki(pki: Path) -> None:
    """A throwaway CA, an apiserver serving cert for 127.0.0.1, and a service-account key."""
    pki.mkdir(parents=True)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "7", "-subj", "/CN=venue-lab-ca", cwd=pki,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key",
        "-out", "apiserver.csr", "-subj", "/CN=kube-apiserver", cwd=pki,
    )  # fmt: skip
    (pki / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "apiserver.crt", "-days", "7", "-extfile", "san.ext", cwd=pki,
    )  # fmt: skip


class LocalCluster(Lifecycle):
    """Start with `with LocalCluster() as cluster:`; `cluster.kubeconfig` is admin's."""

    def __init__(self, workdir: Path | None = None, keep: bool = False) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="venue-lab-"))
        self.keep = keep
        self.bin_dir: Path | None = None
        self.token = secrets.token_hex(16)
        self.ports = {name: free_port() for name in (*COMPONENTS, "etcd-peer")}
        self.procs: dict[str, Managed] = {}
        self.kubeconfig = self.workdir / "kubeconfig"
        self.server = f"https://127.0.0.1:{self.ports['kube-apiserver']}"
        self.startup_seconds: float | None = None
        self.pod_network = PodNetwork.allocate()  # pod IPs on loopback: the simulator serves them
        self._reader: httpx.Client | None = None

    # --- lifecycle ---------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        started = time.monotonic()
        self.bin_dir = ensure_binaries()
        _make_pki(self.workdir / "pki")
        (self.workdir / "tokens.csv").write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        self._write_kubeconfig()
        for name in COMPONENTS:
            self._launch(name)
            self._wait_ready(name, timeout)
            log.info("lab.component.ready", component=name, port=self.ports[name])
        self._create_fake_node(timeout)
        self.wait_for_service_account("default", timeout)
        self.startup_seconds = time.monotonic() - started
        log.info(
            "lab.cluster.ready",
            seconds=round(self.startup_seconds, 1),
            kubeconfig=str(self.kubeconfig),
        )

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.close()
        for name in reversed(COMPONENTS):
            proc = self.procs.get(name)
            if proc is not None:
                proc.stop()
        self.pod_network.release()
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Stop and start one component (e.g. the apiserver in resilience tests)."""
        self.procs[name].stop()
        self._launch(name)
        self._wait_ready(name, timeout)

    def logs(self) -> dict[str, str]:
        """The tail of every component's log, for failure reports."""
        return {name: proc.tail() for name, proc in self.procs.items()}

    # --- components ----------------------------------------------------------------

    def _bin(self, name: str) -> str:
        assert self.bin_dir is not None
        return str(self.bin_dir / name)

    def _argv(self, name: str) -> list[str]:
        p, w, pki = self.ports, self.workdir, self.workdir / "pki"
        kubeconfig = f"--kubeconfig={self.kubeconfig}"
        if name == "etcd":
            client, peer = f"http://127.0.0.1:{p['etcd']}", f"http://127.0.0.1:{p['etcd-peer']}"
            return [
                "--name=lab", f"--data-dir={w / 'etcd'}",
                f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=lab={peer}", "--unsafe-no-fsync", "--log-level=warn",
            ]  # fmt: skip
        if name == "kube-apiserver":
            return [
                f"--etcd-servers=http://127.0.0.1:{p['etcd']}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                f"--secure-port={p['kube-apiserver']}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--authorization-mode=RBAC",
                f"--token-auth-file={w / 'tokens.csv'}",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={pki / 'sa.key'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--api-audiences={SA_ISSUER}",
                # It would taint new nodes not-ready until a node-lifecycle controller
                # lifted it; kwok's node is Ready at once and we run no such controller.
                "--disable-admission-plugins=TaintNodesByCondition",
                "--allow-privileged=true", "--profiling=false", "-v=1",
            ]  # fmt: skip
        if name == "kube-controller-manager":
            return [
                kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1",
                f"--secure-port={p[name]}", f"--cert-dir={w / 'kcm-certs'}",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}", "-v=1",
                # 20 QPS (the default) makes 1,000 Deployments take minutes to become Available
                "--kube-api-qps=200", "--kube-api-burst=400",
                # 15 s by default: a raised minReplicas should scale within a lab test's cycle
                "--horizontal-pod-autoscaler-sync-period=1s",
            ]  # fmt: skip
        if name == "kube-scheduler":
            return [
                kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1",
                f"--secure-port={p[name]}", f"--cert-dir={w / 'scheduler-certs'}", "-v=1",
            ]  # fmt: skip
        if name == "kwok":
            assert self.bin_dir is not None
            return [
                kubeconfig, f"--config={self.bin_dir.parent / 'kwok-stages.yaml'}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--cidr={self.pod_network.cidr}", "--node-ip=10.0.0.1",
                f"--server-address=127.0.0.1:{p['kwok']}",
            ]  # fmt: skip
        raise ValueError(name)

    def _launch(self, name: str) -> None:
        proc = Managed(
            name, [self._bin(name), *self._argv(name)], self.workdir / "logs" / f"{name}.log"
        )
        proc.start()
        self.procs[name] = proc

    def _wait_ready(self, name: str, timeout: float) -> None:
        proc = self.procs[name]
        port = self.ports[name]
        if name == "etcd":
            url, headers = f"http://127.0.0.1:{port}/health", {}
        elif name == "kube-apiserver":
            url, headers = f"{self.server}/readyz", {"Authorization": f"Bearer {self.token}"}
        else:
            scheme = "http" if name == "kwok" else "https"
            url, headers = f"{scheme}://127.0.0.1:{port}/healthz", {}

        def ready() -> bool:
            proc.check_alive()
            # Loopback health endpoints of components with self-signed certs.
            response = httpx.get(url, headers=headers, verify=False, timeout=2.0)  # noqa: S501
            return response.status_code == 200

        try:
            wait_until(f"{name} at {url}", ready, timeout)
        except LabError as exc:
            raise LabError(f"{exc}\n--- {name} log ({proc.log_path}) ---\n{proc.tail()}") from None

    def _write_kubeconfig(self) -> None:
        ca = self.workdir / "pki" / "ca.crt"
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: venue-lab\n  cluster:\n    server: {self.server}\n"
            f"    certificate-authority: {ca}\n"
            f"users:\n- name: admin\n  user:\n    token: {self.token}\n"
            "contexts:\n- name: venue-lab\n  context:\n    cluster: venue-lab\n    user: admin\n"
            "current-context: venue-lab\n"
        )

    def _create_fake_node(self, timeout: float) -> None:
        # Every resource a real kubelet reports: a pod that requests ephemeral-storage (the
        # operator's does) is unschedulable on a node without it.
        capacity = '{"cpu": "1000", "memory": "4Ti", "ephemeral-storage": "4Ti", "pods": "10000"}'
        manifest = f"""
apiVersion: v1
kind: Node
metadata:
  name: {FAKE_NODE}
  annotations: {{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}}
  labels:
    kubernetes.io/hostname: {FAKE_NODE}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {capacity}
  capacity: {capacity}
"""
        self.kubectl("apply", "-f", "-", input=manifest)

        def node_ready() -> bool:
            out = self.kubectl(
                "get", "node", FAKE_NODE, "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False,
            ).stdout  # fmt: skip
            return out.strip() == "True"

        wait_until(f"node {FAKE_NODE} Ready (kwok)", node_ready, timeout, interval=0.2)

    def wait_for_service_account(self, namespace: str, timeout: float = 60.0) -> None:
        """Pods can only be created once the namespace's `default` ServiceAccount exists."""
        wait_until(
            f"ServiceAccount default in {namespace}",
            lambda: (
                self.kubectl("get", "sa", "default", "-n", namespace, check=False).returncode == 0
            ),
            timeout,
            interval=0.2,
        )

    # --- helpers -----------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster; raise with its stderr on failure."""
        result = subprocess.run(
            [self._bin("kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise LabError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def read(self, path: str, **params: str) -> dict[str, Any]:
        """GET an API path as admin, parsed; LabError on anything but 200. Tests poll
        status and Events this way: a kubectl process per poll cost ~45 ms of CPU, a third of a
        lab test's own CPU (measured), on a 2-core machine running three labs."""
        if self._reader is None:
            ca = ssl.create_default_context(cafile=self.workdir / "pki" / "ca.crt")
            self._reader = httpx.Client(
                base_url=self.server, verify=ca, timeout=10.0,
                headers={"Authorization": f"Bearer {self.token}"},
            )  # fmt: skip
        response = self._reader.get(path, params=params)
        if response.status_code != 200:
            detail = f"{response.status_code} {response.text[:300]}"
            raise LabError(f"GET {path} {params or ''}: {detail}")
        found: dict[str, Any] = response.json()
        return found

    def events_of(
        self, namespace: str, kind: str, name: str, reason: str | None = None
    ) -> list[dict[str, Any]]:
        """The Events about one object (optionally of one reason), as the API lists them."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        if reason:
            selector += f",reason={reason}"
        found = self.read(f"/api/v1/namespaces/{namespace}/events", fieldSelector=selector)
        items: list[dict[str, Any]] = found["items"]
        return items

    def kubeconfig_for(self, service_account: str, namespace: str) -> Path:
        """A kubeconfig that authenticates as a ServiceAccount (RBAC tests, least privilege)."""
        token = self.kubectl(
            "create", "token", service_account, "-n", namespace, "--duration=2h"
        ).stdout.strip()
        path = self.workdir / f"kubeconfig-{namespace}-{service_account}"
        ca = self.workdir / "pki" / "ca.crt"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: venue-lab\n  cluster:\n    server: {self.server}\n"
            f"    certificate-authority: {ca}\n"
            f"users:\n- name: {service_account}\n  user:\n    token: {token}\n"
            f"contexts:\n- name: sa\n  context:\n    cluster: venue-lab\n"
            f"    user: {service_account}\n    namespace: {namespace}\n"
            "current-context: sa\n"
        )
        return path

    def env(self) -> dict[str, str]:
        """Environment for a child process (e.g. the operator) that should use this cluster."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
