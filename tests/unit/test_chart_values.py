"""The chart's values, its schema and its README say the same: values.schema.json names exactly
the keys of values.yaml and refuses any other at every level, and the README's values table
has a row per key with its default, no more; its kube-score exceptions are those
tests/integration/test_manifest_checks.py ignores. (helm applies the schema in
tests/integration/test_chart_schema.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.manifest_checks import KUBE_SCORE_IGNORED

CHART = Path(__file__).resolve().parents[2] / "charts" / "venue-operator"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
ROW = re.compile(r"^\| `([^`]+)` \| `([^`]*)` \|", re.MULTILINE)


def resolved(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMA["definitions"][schema["$ref"].removeprefix("#/definitions/")]
    return schema


def keys(value: Any, schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, default) of each value the README documents: a mapping whose schema has
    fixed properties is documented key by key (and must have exactly those keys); anything
    else (a scalar, a list, a free-form or empty mapping) as a whole."""
    schema = resolved(schema)
    if isinstance(value, dict) and value and "properties" in schema:
        assert set(value) == set(schema["properties"]), f"{prefix or 'top level'}: " + ", ".join(
            sorted(set(value) ^ set(schema["properties"]))
        )
        for key, sub in value.items():
            yield from keys(sub, schema["properties"][key], f"{prefix}{key}.")
    else:
        yield prefix.removesuffix("."), value


def object_schemas(schema: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        if "properties" in schema:
            yield where, schema
        for key, sub in schema.items():
            yield from object_schemas(sub, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, sub in enumerate(schema):
            yield from object_schemas(sub, f"{where}/{index}")


def test_schema_names_exactly_the_keys_of_values_yaml() -> None:
    assert dict(keys(VALUES, SCHEMA))  # asserts the key sets level by level


def test_schema_refuses_an_unknown_key_at_every_level() -> None:
    """A typo (`tenancy.maxReplica`) is an error, not a value silently ignored."""
    open_ended = [where for where, schema in object_schemas(SCHEMA)
                  if schema.get("additionalProperties") is not False]  # fmt: skip
    assert open_ended == []


def test_readme_values_table_is_values_yaml() -> None:
    readme = (CHART / "README.md").read_text()
    documented = {key: json.loads(default) for key, default in ROW.findall(readme)}
    assert len(documented) == len(ROW.findall(readme)), "a key has two rows"
    assert documented == dict(keys(VALUES, SCHEMA))


def test_chart_readme_lists_the_kube_score_exceptions() -> None:
    readme = (CHART / "README.md").read_text()
    table = readme[readme.index("| kube-score check |") :].split("\n\n")[0]
    rows = {line.split("`")[1] for line in table.splitlines()[2:]}
    assert rows == set(KUBE_SCORE_IGNORED)
