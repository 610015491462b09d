"""The operator's image, built by scripts/image (podman; a Debian-built base where no registry
is reachable) and run as its pod would run it: the ServiceAccount of manifests/ (its token,
the lab's CA and the namespace read-only at the in-cluster path), KUBERNETES_SERVICE_HOST/PORT,
a read-only root with an emptyDir-sized /tmp, uid 10001, no capabilities, the Deployment's
args and limits. It completes the packaging check of test_packaging (a bad rollout rolled
back, as that ServiceAccount) and answers /healthz and /metrics. The one difference from a
pod: the host's network, as the lab listens on loopback only."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from packaging.utils import canonicalize_name

from tests.harness import evaluations, fresh_namespace, rolls_back_a_bad_rollout
from tests.locks import pins
from venue_lab.operator_process import LAB_TENANCY, OperatorProcess
from venue_lab.processes import free_port
from venue_lab.session import Lab

# Marked by hand: the image tests without the lab need podman too (not in the fast tier).
pytestmark = [pytest.mark.xdist_group("test_image"), pytest.mark.cluster]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = str(REPO / "scripts" / "image")
NS = "venue-operator"  # manifests/namespace.yaml; its ServiceAccount has the same name
IN_CLUSTER = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def image() -> str:
    """scripts/image's build: seconds when only the code changed, ~2 min with no cache."""
    built = subprocess.run(["bash", SCRIPT], capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr[-4000:]
    return built.stdout.split()[-1]


def podman(*args: str) -> str:
    """A podman command with this machine's flags (scripts/image); its stdout."""
    done = subprocess.run(["bash", SCRIPT, "podman", *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def deployment_container() -> dict[str, Any]:
    docs = yaml.safe_load_all((REPO / "manifests" / "deployment.yaml").read_text())
    (deployment,) = [d for d in docs if d and d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = container
    return found


class ImageOperator(OperatorProcess):
    """The image in a container, configured as manifests/deployment.yaml configures its pod;
    `secrets` is the directory mounted where a pod has its ServiceAccount's."""

    def __init__(self, image: str, lab: Lab, secrets: Path, watched: str) -> None:
        container = deployment_container()
        ports = {"--liveness-port": free_port(), "--metrics-port": free_port()}
        at = {"--bind-address": "127.0.0.1", "--prometheus-url": lab.prometheus.url, **ports}
        args = [a for a in container["args"] if a.partition("=")[0] not in at]
        assert len(args) == len(container["args"]) - len(at), "a flag moved in the manifest"
        # The lab's services answer on loopback, and its tests act in seconds.
        args += [f"{flag}={value}" for flag, value in at.items()]
        args += [*LAB_TENANCY, f"--namespace={watched}"]
        super().__init__(Path(os.devnull), args=tuple(args))  # no kubeconfig: in-cluster
        self.image, self.lab, self.secrets = image, lab, secrets
        self.name = f"venue-operator-{uuid.uuid4().hex[:8]}"
        self.limits = container["resources"]["limits"]

    def argv(self) -> list[str]:
        server = self.lab.cluster.ports["kube-apiserver"]
        memory = self.limits["memory"].removesuffix("Mi")
        cpus = int(self.limits["cpu"].removesuffix("m")) / 1000
        return [
            "bash", SCRIPT, "podman", "run", "--rm", f"--name={self.name}", "--network=host",
            "--read-only", "--read-only-tmpfs=false", "--tmpfs=/tmp:rw,size=64m,mode=1777",
            "--user=10001:10001", "--cap-drop=ALL", "--security-opt=no-new-privileges",
            f"--memory={memory}m", f"--cpus={cpus}",
            f"--volume={self.secrets}:{IN_CLUSTER}:ro",
            "--env=KUBERNETES_SERVICE_HOST=127.0.0.1", f"--env=KUBERNETES_SERVICE_PORT={server}",
            f"--env=POD_NAMESPACE={NS}", self.image, *(self.args or ()),
        ]  # fmt: skip

    def stop(self) -> None:
        super().stop()  # SIGTERM to podman, which hands it to the operator
        podman("rm", "--force", "--ignore", "--time=0", self.name)  # after a SIGKILL too


@pytest.fixture
def service_account(installed: Lab, tmp_path: Path) -> Path:
    """What the kubelet mounts for the manifests' ServiceAccount: a token, the cluster's CA,
    the namespace; readable by uid 10001, as a projected volume's files are (0644)."""
    secrets = tmp_path / "serviceaccount"
    secrets.mkdir(mode=0o755)
    token = installed.cluster.kubectl("create", "token", NS, "-n", NS, "--duration=1h")
    (secrets / "token").write_text(token.stdout.strip())
    (secrets / "ca.crt").write_bytes((installed.cluster.workdir / "pki" / "ca.crt").read_bytes())
    (secrets / "namespace").write_text(NS)
    for path in (secrets, *secrets.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return secrets


@pytest.mark.timeout(900)  # a build without cache (the base too) is minutes on 2 cores
def test_image_as_a_pod_rolls_back_a_bad_rollout_and_answers_healthz_and_metrics(
    installed: Lab, service_account: Path, image: str
) -> None:
    with fresh_namespace(installed, "i") as ns:
        operator = ImageOperator(image, installed, service_account, watched="i-*")
        with rolls_back_a_bad_rollout(installed, ns, operator) as venue:
            healthz = httpx.get(f"http://127.0.0.1:{operator.liveness_port}/healthz", timeout=5)
            assert healthz.status_code == 200, healthz.text
            exposition = httpx.get(operator.metrics_url, timeout=5).text
            assert f'venue_operator_build_info{{version="{version("venue-operator")}"}}' in (
                exposition
            )
            assert evaluations(operator, venue) > 0


def test_image_holds_the_locked_dependencies_and_the_operator_only(image: str) -> None:
    listed = podman(
        "run", "--rm", "--network=none", "--entrypoint=/opt/venv/bin/python", image, "-c",
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
    )  # fmt: skip
    installed = {canonicalize_name(n): v for n, v in json.loads(listed).items()}
    # No pip, no setuptools, no lab: what runtime.txt pins and the operator.
    assert installed == {**pins("runtime.txt"), "venue-operator": version("venue-operator")}


def test_image_runs_as_10001_with_the_dockerfiles_entrypoint(image: str) -> None:
    (config,) = json.loads(podman("image", "inspect", image))
    assert config["Config"]["User"] == "10001:10001"
    assert config["Config"]["Entrypoint"] == ["venue-operator"]
    assert config["Config"]["Cmd"] == ["--log-json", "run", "--bind-address=0.0.0.0"]
