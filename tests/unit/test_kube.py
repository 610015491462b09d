"""kube's small helpers: JSON pointers to annotations, the op that sets one (and the ops
act/scale builds with it), reading one key of a Secret, and the API classes imported
before the loop runs."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import venue_operator
from venue_operator.act import scale
from venue_operator.kube import calls
from venue_operator.model import keys
from venue_operator.model.spec import SecretKeyRef

SCALED_FROM = calls.annotation_path(keys.SCALED_FROM)


def test_an_annotation_key_is_escaped_as_a_json_pointer() -> None:
    assert calls.annotation_path("example.com/a~b") == "/metadata/annotations/example.com~1a~0b"


def test_setting_an_annotation_adds_the_map_when_there_is_none() -> None:
    bare: dict[str, Any] = {"metadata": {"name": "x"}}
    assert calls.set_annotation_op(bare, "a/b", "1") == {
        "op": "add", "path": "/metadata/annotations", "value": {"a/b": "1"}}  # fmt: skip
    annotated = {"metadata": {"annotations": {"team": "t"}}}
    assert calls.set_annotation_op(annotated, "a/b", "1") == {
        "op": "add", "path": "/metadata/annotations/a~1b", "value": "1"}  # fmt: skip


# (id, annotations as read, scaled_from, the ops after the count)
SCALED_FROM_OPS = [
    ("no map, a loan", None, 2,
     [{"op": "add", "path": "/metadata/annotations", "value": {keys.SCALED_FROM: "2"}}]),
    ("a map, a loan", {"team": "t"}, 2, [{"op": "add", "path": SCALED_FROM, "value": "2"}]),
    ("already recorded", {keys.SCALED_FROM: "2"}, 2, []),
    ("another value recorded", {keys.SCALED_FROM: "3"}, 2,
     [{"op": "add", "path": SCALED_FROM, "value": "2"}]),
    ("all given back", {keys.SCALED_FROM: "2"}, None, [{"op": "remove", "path": SCALED_FROM}]),
    ("given back, nothing recorded", {"team": "t"}, None, []),
    ("given back, no map", None, None, []),
]  # fmt: skip


@pytest.mark.parametrize(("case", "annotations", "scaled_from", "expected"), SCALED_FROM_OPS,
                         ids=[c[0] for c in SCALED_FROM_OPS])  # fmt: skip
def test_the_scaled_from_annotation_ops(
    case: str, annotations: dict[str, str] | None, scaled_from: int | None, expected: Any
) -> None:
    obj = {"metadata": {"annotations": annotations}}
    assert scale._annotation_ops(obj, scaled_from) == expected


async def test_a_secret_value_is_decoded_and_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    data = {"url": base64.b64encode(b"https://hooks.example/T0K3N\n").decode()}

    class CoreV1Api:
        def __init__(self, api: Any) -> None:
            pass

        async def read_namespaced_secret(self, name: str, namespace: str) -> Any:
            assert (name, namespace) == ("pager", "shop")
            return SimpleNamespace(data=data)

    monkeypatch.setattr(calls.client, "CoreV1Api", CoreV1Api)
    api: Any = None  # the fake above takes no client
    ref = SecretKeyRef(name="pager", key="url")
    assert await calls.secret_value(api, "shop", ref) == "https://hooks.example/T0K3N"
    with pytest.raises(KeyError):  # a missing key: the callers report the type only
        await calls.secret_value(api, "shop", SecretKeyRef(name="pager", key="token"))


def test_every_api_class_the_operator_calls_is_imported_at_start() -> None:
    source = Path(venue_operator.__file__).parent
    called = {name for path in source.rglob("*.py")
              for name in re.findall(r"\bclient\.(\w+Api)\b", path.read_text())}  # fmt: skip
    assert called, "no API class found: has the client been imported under another name?"
    missing = called - set(calls.API_CLASSES)
    assert not missing, f"called, not in kube.API_CLASSES: {missing}"


# serve() in a process of its own (this one has imported API classes already): which of them
# are imported by its first API call
FIRST_CALL = """
import asyncio, json
from kubernetes.aio import client
from venue_operator.cli import handlers
from venue_operator.cli.settings import Settings
from venue_operator.kube import calls

async def connect(kubeconfig=None):
    print(json.dumps(sorted(n for n in calls.API_CLASSES if n in vars(client))))
    raise SystemExit(0)

calls.connect = connect
asyncio.run(handlers.serve(Settings()))
"""


def test_the_operator_imports_its_api_classes_before_it_runs_any_loop() -> None:
    """A class imported on first use blocked the event loop (CoreV1Api: 0.4 s) in the cycle
    that posted the first Event, and every other VenueService's cycle waited."""
    ran = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert json.loads(ran.stdout) == sorted(calls.API_CLASSES)
