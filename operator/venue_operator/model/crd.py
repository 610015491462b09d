"""Generate the VenueService CRD from the pydantic models (the one source of truth).

pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema:
no $ref, no anyOf-null, no `additionalProperties: false`, no propertyNames, and
defaults on nested objects so the API server fills the whole tree in.
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

PRINTER_COLUMNS = [
    {"name": "Health", "type": "string", "jsonPath": ".status.health"},
    {"name": "Severity", "type": "string", "jsonPath": ".status.severity"},
    {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
    {"name": "Revision", "type": "integer", "jsonPath": ".status.revision"},
    {"name": "Last Action", "type": "string", "jsonPath": ".status.lastAction.action"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
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
    _default_nested_objects(out, schema)
    return out


def _default_nested_objects(out: dict[str, Any], source: dict[str, Any]) -> None:
    """Give `default: {}` to required-free object fields so their own defaults apply."""
    props = out.get("properties", {})
    for name, sub in props.items():
        is_map = "additionalProperties" in sub
        if "default" in sub or sub.get("type") != "object" or not ("properties" in sub or is_map):
            continue
        if sub.get("required"):
            continue
        raw = source.get("properties", {}).get(name, {})
        nullable = any(opt.get("type") == "null" for opt in raw.get("anyOf", []))
        if not nullable:
            sub["default"] = {}


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


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a dict, ready to dump or apply."""
    spec_schema = _schema_of(spec.VenueServiceSpec)
    status_schema = _schema_of(status.VenueServiceStatus)
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
