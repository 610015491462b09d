"""Generate the VenueService CRD from the pydantic models (the one source of truth).

pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema:
no $ref, no anyOf-null, no `additionalProperties: false`, no propertyNames.

The API server stores what was written: a block's own defaults fill in only where the block
is written (a block left out is read with its defaults by the models, not stored), so
`kubectl describe` and a GitOps diff show the choices made, not 80 lines of defaults. The
exception is `remediation`, filled in always: its `mode` (`kubectl get -o wide`) is what
on-call looks for first.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema

from venue_operator.model import fields, spec, status
from venue_operator.model.durations import format_duration

CRD_PATH = Path("crds") / "venueservices.ops.tickettoken.io.yaml"

_DROP = {"title", "propertyNames", "$defs"}


def _column(
    name: str, kind: str, path: str, description: str, wide: bool = False
) -> dict[str, Any]:
    column = {"name": name, "type": kind, "jsonPath": path, "description": description}
    return {**column, "priority": 1} if wide else column


_HEALTHY_MESSAGE = '.status.conditions[?(@.type=="Healthy")].message'
# `kubectl get`: read at a glance; `-o wide` (priority 1) adds what the row is about.
PRINTER_COLUMNS = [
    _column("Health", "string", ".status.health", "Healthy, Degraded, Down or Unknown."),
    _column("Severity", "string", ".status.severity", "P1 (worst) to P4; blank when healthy."),
    _column("Ready", "string", ".status.ready", "Ready/desired replicas."),
    _column("Revision", "integer", ".status.revision", "The Deployment's current revision."),
    _column("Last Action", "string", ".status.lastAction.action", "The operator's last action."),
    _column("Acted", "date", ".status.lastAction.at", "How long ago it was taken."),
    _column(
        "Refused",
        "string",
        '.status.conditions[?(@.type=="DuplicateTarget")].message',
        "Why this VenueService never acts.",
    ),
    _column("Age", "date", ".metadata.creationTimestamp", "Since the VenueService was made."),
    _column("Deployment", "string", ".spec.deployment.name", "The Deployment it heals.", True),
    _column("Mode", "string", ".spec.remediation.mode", "Auto, DryRun or Off.", True),
    _column("Result", "string", ".status.lastAction.result", "How the last action ended.", True),
    _column(
        "Watching", "string", ".status.rolloutGuard.template", "The new version guarded.", True
    ),
    _column("Message", "string", _HEALTHY_MESSAGE, "What the checks say.", True),
]


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Turn one pydantic JSON-schema node into a structural Kubernetes schema node."""
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return structural(merged, defs)
    any_of = schema.get("anyOf")
    if any_of is not None:
        options = [s for s in any_of if s.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {any_of} structurally")
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        if rest.get("default", "") is None:
            del rest["default"]
        return structural({**options[0], **rest}, defs)

    pattern_props = schema.get("patternProperties")
    if pattern_props:
        # Kubernetes has no patternProperties: a map of values plus a CEL rule on keys.
        ((key_pattern, value_schema),) = pattern_props.items()
        rest = {k: v for k, v in schema.items() if k != "patternProperties"}
        rest["additionalProperties"] = value_schema
        rest["propertyNames"] = {"pattern": key_pattern}
        return structural(rest, defs)

    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP or (key == "additionalProperties" and value is False):
            continue
        if key == "properties":
            out[key] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = structural(value, defs)
        else:
            out[key] = value

    key_pattern = schema.get("propertyNames", {}).get("pattern")
    if key_pattern:
        out.setdefault("x-kubernetes-validations", []).append(
            {
                "rule": f"self.all(k, k.matches('{key_pattern}'))",
                "message": f"every key must match {key_pattern}",
            }
        )
    return out


class _KubernetesJsonSchema(GenerateJsonSchema):
    """Defaults rendered as users write them: durations as "15s", not ISO "PT15S"."""

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _schema_of(cls: type[fields.Model]) -> dict[str, Any]:
    raw = cls.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_KubernetesJsonSchema
    )
    return structural(raw, raw.get("$defs", {}))


def _without_defaults(schema: Any) -> Any:
    """Only the operator writes status, and what it leaves out must stay out (kube/
    status_store.py): no defaults for the API server to fill back in."""
    if isinstance(schema, dict):
        return {k: _without_defaults(v) for k, v in schema.items() if k != "default"}
    if isinstance(schema, list):
        return [_without_defaults(v) for v in schema]
    return schema


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a dict, ready to dump or apply."""
    spec_schema = _schema_of(spec.VenueServiceSpec)
    spec_schema["properties"]["remediation"]["default"] = {}  # its mode, always (see above)
    status_schema = _without_defaults(_schema_of(status.VenueServiceStatus))
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{spec.PLURAL}.{spec.GROUP}"},
        "spec": {
            "group": spec.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": spec.KIND,
                "listKind": f"{spec.KIND}List",
                "plural": spec.PLURAL,
                "singular": spec.SINGULAR,
                "shortNames": spec.SHORT_NAMES,
                "categories": ["all"],
            },
            "versions": [
                {
                    "name": spec.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A Venue Service watched and healed per its runbook.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crd() -> str:
    header = (
        "# Generated from operator/venue_operator/model/spec.py and status.py"
        " by `venue-operator crd`.\n"
    )
    header += "# Do not edit: change the models and regenerate.\n"
    return header + yaml.dump(build_crd(), Dumper=_NoAliasDumper, sort_keys=False, width=100)
