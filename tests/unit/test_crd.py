"""The CRD is generated from the models, and the committed copy must match."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from venue_operator.model.crd import CRD_PATH, build_crd, render_crd

REPO = Path(__file__).resolve().parents[2]


def walk(node: Any, path: str = "") -> list[tuple[str, str, Any]]:
    found: list[tuple[str, str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((path, key, value))
            found.extend(walk(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(walk(value, f"{path}[{i}]"))
    return found


def test_committed_crd_is_generated_from_the_models() -> None:
    committed = (REPO / CRD_PATH).read_text()
    assert committed == render_crd(), "run: venue-operator crd --write"


def test_schema_is_structural() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    forbidden = {"$ref", "$defs", "anyOf", "title", "patternProperties", "propertyNames"}
    bad = [(path, key) for path, key, _ in walk(schema) if key in forbidden]
    assert bad == []
    closed = [p for p, k, v in walk(schema) if k == "additionalProperties" and v is False]
    assert closed == []


def test_only_written_blocks_get_their_defaults_but_remediation_always() -> None:
    """The API server stores what was written (describe and GitOps diffs show choices, not
    the runbook's defaults); a block written gets its own defaults; remediation, its mode."""
    spec = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    props = spec["properties"]
    assert "default" not in props["thresholds"] and "default" not in props["probe"]
    assert props["thresholds"]["properties"]["errorRatePercent"]["default"] == {
        "warning": 1.0,
        "critical": 5.0,
    }
    assert props["probe"]["properties"]["interval"]["default"] == "15s"
    assert props["remediation"]["default"] == {}
    assert props["remediation"]["properties"]["mode"]["default"] == "Auto"
    assert "default" not in props["remediation"]["properties"]["rollback"]
    assert "default" not in props["notification"], "optional blocks stay absent"


def test_short_names_avoid_well_known_ones() -> None:
    names = build_crd()["spec"]["names"]
    assert "vs" not in names["shortNames"]  # Istio's VirtualService


def test_printer_columns() -> None:
    columns = build_crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    shown = [c["name"] for c in columns if not c.get("priority")]
    wide = [c["name"] for c in columns if c.get("priority") == 1]
    assert shown == [
        "Health", "Severity", "Ready", "Revision", "Last Action", "Acted", "Refused", "Age",
    ]  # fmt: skip
    assert wide == ["Deployment", "Mode", "Result", "Watching", "Message"]
    acted = next(c for c in columns if c["name"] == "Acted")
    assert acted["type"] == "date" and acted["jsonPath"] == ".status.lastAction.at"


def test_status_has_no_defaults_for_the_api_server_to_fill_back_in() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert "default" not in json.dumps(schema["properties"]["status"])


def test_rendered_crd_is_plain_yaml() -> None:
    text = render_crd()
    assert "&id" not in text and "*id" not in text, "no YAML anchors in a CRD"
    assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"


def test_every_query_override_says_its_unit() -> None:
    # #23: an override's value was multiplied by 100 without saying so
    spec = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    queries = spec["properties"]["prometheus"]["properties"]["queries"]["properties"]
    units = {name: q.get("description", "") for name, q in queries.items()}
    for share in ("errorRate", "rateLimited", "poolUtilisation"):
        assert "ratio from 0 to 1" in units[share] and "multiplies by 100" in units[share]
        assert "absent(), which is 1, is 100 %" in units[share]
    assert "multiplies by 100" in units["memoryUtilisation"]
    assert "seconds, which status multiplies by 1000 into ms" in units["p99Latency"]
    assert "requests per second, shown as is" in units["requestRate"]
    assert "a count, shown as is" in units["poolPending"]
