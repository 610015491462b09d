"""The checks platform teams run on what they install: kubeconform (every object against its
API schema, unknown fields refused) and kube-score (production practice). Both are Go modules
from the proxy (tools/kubeconform, tools/kube-score: `build.sh`), cached outside the repo.

kubeconform's schemas are made here, offline (its default registry is GitHub): Kubernetes'
own from the OpenAPI v3 documents of the k8s.io/kubernetes module the lab's control plane is
built from (tools/cluster/k8s/go.mod), the CRDs' from their `openAPIV3Schema`. Both strict,
as the API server's field validation is: an object with `properties` allows no other field."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from venue_lab.cluster import REPO_ROOT
from venue_lab.processes import built

KUBERNETES_MODULE = REPO_ROOT / "tools" / "cluster" / "k8s"
KUBERNETES_VERSION = "v1.36"  # kube-score's deprecation checks: the lab's control plane
REF = re.compile(r"^#/components/schemas/(.+)$")
Schema = dict[str, Any]

# kube-score checks that do not apply here, one reason each (the chart's README lists them).
KUBE_SCORE_IGNORED = (
    # The tag is a pinned version, for which IfNotPresent is Kubernetes' own default; where
    # nodes are shared with untrusted tenants, image.pullPolicy=Always.
    "container-image-pull-policy",
    # Kopf without peering must run exactly one instance (peering.enabled runs several).
    "deployment-replicas",
    # The same: Recreate, so that an old and a new pod never act at once.
    "deployment-strategy",
    # The NetworkPolicy is opt-in (networkPolicy.enabled, manifests/optional/): it needs a
    # CNI that enforces it and the cluster's own peers.
    "pod-networkpolicy",
)


def tool(name: str) -> Path:
    return built(REPO_ROOT / "tools" / name / "build.sh", name) / name


# --- schemas ---------------------------------------------------------------------------


def _strict(node: Any) -> None:
    """additionalProperties: false on every object schema with properties (in place), but
    where the API server keeps unknown fields; a property named `properties` stays one."""
    if not isinstance(node, dict):
        return
    for sub in node.get("properties", {}).values():
        _strict(sub)
    for key in ("items", "additionalProperties", "not"):
        _strict(node.get(key))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key, ()):
            _strict(sub)
    if node.get("x-kubernetes-embedded-resource"):
        _with_object_fields(node)
    keeps_unknown = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and "additionalProperties" not in node and not keeps_unknown:
        node["additionalProperties"] = False


def _with_object_fields(node: Schema) -> None:
    """apiVersion, kind and metadata: every object has them, whether its schema says so."""
    fields = node.setdefault("properties", {})
    for name, schema in (("apiVersion", {"type": "string"}), ("kind", {"type": "string"}),
                         ("metadata", {"type": "object"})):  # fmt: skip
        fields.setdefault(name, schema)


def _file_name(kind: str, api_version: str) -> str:
    """kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}.json`: deployment-apps-v1.json."""
    group, _, version = api_version.rpartition("/")
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{kind}{suffix}.json".lower()


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")  # JSONSchemaProps has a property named "$ref"
        ref = REF.match(ref) if isinstance(ref, str) else None
        if ref:
            yield ref.group(1)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _closure(name: str, schemas: dict[str, Schema]) -> dict[str, Schema]:
    found: dict[str, Schema] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current not in found:
            found[current] = schemas[current]
            todo.extend(_refs(schemas[current]))
    return found


def kubernetes_openapi() -> Path:
    """The OpenAPI v3 documents of the k8s.io/kubernetes module (downloaded if need be)."""
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    out = subprocess.run(["go", "mod", "download", "-json", "k8s.io/kubernetes"],
                         cwd=KUBERNETES_MODULE, env=env, capture_output=True, text=True,
                         check=True, timeout=600).stdout  # fmt: skip
    return Path(json.loads(out)["Dir"]) / "api" / "openapi-spec" / "v3"


def kubernetes_schemas(openapi: Path) -> dict[str, Schema]:
    """File name -> a self-contained strict schema, for every kind Kubernetes serves."""
    made: dict[str, Schema] = {}
    for document in sorted(openapi.glob("*__v*_openapi.json")):  # one per group-version
        schemas = json.loads(document.read_text()).get("components", {}).get("schemas", {})
        for name, schema in schemas.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", ()):
                api_version = "/".join(p for p in (gvk["group"], gvk["version"]) if p)
                file = _file_name(gvk["kind"], api_version)
                if file in made:
                    continue
                parts = copy.deepcopy(_closure(name, schemas))
                for part in parts.values():
                    _strict(part)
                made[file] = {**parts[name], "components": {"schemas": parts}}
    return made


def crd_schemas(paths: Iterable[Path]) -> dict[str, Schema]:
    """File name -> strict schema, for every version of every CRD in these files."""
    made: dict[str, Schema] = {}
    for path in paths:
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                _with_object_fields(schema)
                _strict(schema)
                api_version = f"{spec['group']}/{version['name']}"
                made[_file_name(spec["names"]["kind"], api_version)] = schema
    return made


def write_schemas(folder: Path, schemas: dict[str, Schema]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file, schema in schemas.items():
        (folder / file).write_text(json.dumps(schema))
    return folder


# --- the checks --------------------------------------------------------------------------


@dataclass(frozen=True)
class Conformance:
    """kubeconform's verdict on a YAML stream: how many objects were valid, and a line per
    object that was not (invalid, unreadable, or of a kind no schema covers)."""

    valid: int
    problems: tuple[str, ...]


def kubeconform(manifests: str, schemas: Path) -> Conformance:
    location = f"{schemas}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json"
    result = subprocess.run([str(tool("kubeconform")), "-strict", "-summary", "-output", "json",
                             "-schema-location", location, "-"], input=manifests,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    report = json.loads(result.stdout)
    problems = tuple(f"{r['kind']} {r['name']}: {r['status']}: {r['msg']}"
                     for r in report["resources"])  # fmt: skip
    assert (result.returncode != 0) == bool(problems), result.stderr
    return Conformance(report["summary"]["valid"], problems)


def kube_score(manifests: str, ignored: Iterable[str] = ()) -> tuple[int, list[str]]:
    """kube-score's checks on a YAML stream: (how many passed, one line per finding,
    warnings included: `[CRITICAL] name/namespace apps/v1/Deployment: check title`)."""
    args = [arg for check in ignored for arg in ("--ignore-test", check)]
    result = subprocess.run([str(tool("kube-score")), "score", "--output-format", "ci",
                             "--kubernetes-version", KUBERNETES_VERSION, *args, "-"],
                            input=manifests, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines and not result.stderr.strip(), result.stderr
    findings = [line for line in lines if not line.startswith(("[OK]", "[SKIPPED]"))]
    return len(lines) - len(findings), findings


def failed_checks(manifests: str) -> set[str]:
    """The ids of the kube-score checks that find something (nothing ignored)."""
    result = subprocess.run([str(tool("kube-score")), "score", "--output-format", "json",
                             "--kubernetes-version", KUBERNETES_VERSION, "-"],
                            input=manifests, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    return {check["check"]["id"] for scored in json.loads(result.stdout)
            for check in scored["checks"]
            if not check["skipped"] and check["grade"] < 10}  # fmt: skip
