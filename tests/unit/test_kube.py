"""kube's small helpers: JSON pointers to annotations, the op that sets one (and the ops
act/scale builds with it), reading one key of a Secret; the raw calls' requests and
refusals; and that the client's API classes and models are never loaded."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes.aio import client

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


class Answer:
    """What the fake transport sends back, as the client's REST layer would."""

    def __init__(self, status: int, body: Any) -> None:
        self.status, self.reason, self.headers = status, "Fake", {}
        self.data = json.dumps(body).encode()

    async def read(self) -> bytes:
        return self.data


def fake_api(answer: Any, status: int = 200) -> tuple[calls.Api, list[tuple[str, str, Any]]]:
    """A real ApiClient whose transport answers `answer` to every request, and the
    requests it was given (method, URL, body as sent)."""
    api = client.ApiClient(client.Configuration(host="https://api.test"))
    sent: list[tuple[str, str, Any]] = []

    async def request(method: str, url: str, **kwargs: Any) -> Answer:
        sent.append((method, url, kwargs.get("body")))
        return Answer(status, answer)

    api.rest_client.request = request  # type: ignore[method-assign]
    return api, sent


async def test_a_secret_value_is_decoded_and_stripped() -> None:
    data = {"url": base64.b64encode(b"https://hooks.example/T0K3N\n").decode()}
    api, sent = fake_api({"kind": "Secret", "data": data})
    ref = SecretKeyRef(name="pager", key="url")
    assert await calls.secret_value(api, "shop", ref) == "https://hooks.example/T0K3N"
    assert sent[0][:2] == ("GET", "https://api.test/api/v1/namespaces/shop/secrets/pager")
    with pytest.raises(KeyError):  # a missing key: the callers report the type only
        await calls.secret_value(api, "shop", SecretKeyRef(name="pager", key="token"))


async def test_a_query_is_encoded_and_a_create_sends_the_manifest_as_it_is() -> None:
    api, sent = fake_api({"items": [{"reason": "RolledBack"}]})
    found = await calls.list_events(api, "shop", "involvedObject.name=v,type=Warning")
    assert found == [{"reason": "RolledBack"}]
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "m"},
           "spec": {"template": {"metadata": {"creationTimestamp": None}}}}  # fmt: skip
    await calls.create_job(api, "shop", job)
    assert sent[0][:2] == ("GET", "https://api.test/api/v1/namespaces/shop/events"
                           "?fieldSelector=involvedObject.name%3Dv%2Ctype%3DWarning")  # fmt: skip
    assert sent[1][:2] == ("POST", "https://api.test/apis/batch/v1/namespaces/shop/jobs")
    assert sent[1][2] == job


async def test_a_refusal_is_an_api_error_with_the_servers_status() -> None:
    status = {"kind": "Status", "code": 422, "message": "the server rejected our request"}
    api, _ = fake_api(status, status=422)
    with pytest.raises(calls.ApiError) as refused:
        await calls.patch_hpa(api, "shop", "h", [{"op": "test", "path": "/x", "value": 1}])
    assert refused.value.status == 422 and calls.is_conflict(refused.value)
    assert calls.refusal(refused.value) == "API 422 Fake: the server rejected our request"


# In a process of its own: every module of the operator imported, `serve` run up to Kopf,
# then every call of kube/ made (through a fake transport); then which of the client's API
# classes (kubernetes.aio.client.api.*) and models (.models.*) are loaded.
EVERY_CALL = """
import asyncio, base64, importlib, json, pkgutil, sys
import kopf
import venue_operator
from kubernetes.aio import client
from venue_operator.cli import handlers
from venue_operator.cli.settings import Settings
from venue_operator.kube import calls, events, permissions
from venue_operator.model.spec import SecretKeyRef
from venue_operator.record.transitions import EventSpec

for found in pkgutil.walk_packages(venue_operator.__path__, "venue_operator."):
    if not found.name.endswith("__main__"):
        importlib.import_module(found.name)

ANSWER = json.dumps({"metadata": {"resourceVersion": "1"}, "items": [],
                     "data": {"k": base64.b64encode(b"v").decode()},
                     "status": {"allowed": True}}).encode()

class Answer:
    status, reason, headers = 200, "OK", {}
    async def read(self):
        return ANSWER

def fake_api():
    api = client.ApiClient(client.Configuration(host="https://api.test"))
    async def request(*args, **kwargs):
        return Answer()
    api.rest_client.request = request
    return api

async def connect(kubeconfig=None):
    return fake_api()

async def operator(**kwargs):
    pass

async def every_call(api):
    ns, ops, obj, name = "shop", [], {"metadata": {}}, "x"
    for call, *args in [
        (calls.get_service, name), (calls.get_endpoint_slice, name),
        (calls.replace_status, name, {}, "1"), (calls.read_status, name),
        (calls.annotate_venueservice, name, {}), (calls.list_venueservices,),
        (calls.get_scaled_object, name), (calls.patch_scaled_object, name, ops),
        (calls.get_deployment, name), (calls.patch_deployment, name, ops),
        (calls.list_replicasets,), (calls.list_pods,), (calls.list_jobs,),
        (calls.list_events, "type=Warning"), (calls.create_event, obj),
        (calls.get_cronjob, name), (calls.get_job, name), (calls.create_job, obj),
        (calls.get_config_map, name), (calls.create_config_map, obj),
        (calls.merge_patch_config_map, name, obj),
        (calls.get_hpa, name), (calls.patch_hpa, name, ops),
        (calls.secret_value, SecretKeyRef(name=name, key="k")),
    ]:
        await call(api, ns, *args)
    target = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns}}
    await events.post_once(api, target, EventSpec("Normal", "Tested", "m"), "k")
    await permissions.check(api, [ns])

calls.connect, kopf.operator = connect, operator
asyncio.run(handlers.serve(Settings()))
asyncio.run(every_call(fake_api()))
loaded = [m for m in sys.modules
          if m.startswith(("kubernetes.aio.client.api.", "kubernetes.aio.client.models."))]
print(json.dumps(sorted(loaded)))
"""


def test_the_operator_never_loads_the_clients_api_classes_or_models() -> None:
    """They were 40 MB of RSS, and one imported on first use stalled the event loop (CoreV1Api:
    0.41 s at the first Event, every other VenueService's cycle waited): every call is raw."""
    ran = subprocess.run([sys.executable, "-c", EVERY_CALL], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert json.loads(ran.stdout.splitlines()[-1]) == []


def test_no_module_names_an_api_class_or_a_model_of_the_client() -> None:
    """A name the test above does not call would load one lazily, on the event loop."""
    source = Path(venue_operator.__file__).parent
    pattern = re.compile(r"\bclient\.(\w+Api|V\d\w*)\b")
    named = {str(path.relative_to(source)): found for path in source.rglob("*.py")
             if (found := pattern.findall(path.read_text()))}  # fmt: skip
    assert not named, named


@pytest.mark.parametrize(
    ("env", "proxy"),
    [
        ({}, None),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "http://proxy:3128"),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "10.0.0.1"}, None),
        ({"HTTP_PROXY": "http://proxy:3128"}, None),  # for http:// only
    ],
)
async def test_the_api_session_reads_no_netrc_and_keeps_the_environments_proxy(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], proxy: str | None
) -> None:
    """aiohttp's `trust_env` looked ~/.netrc up in a thread before every request (a hop
    through the GIL each time); the proxy it would take from the environment is the
    client's own setting instead."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
                 "no_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    configuration = client.Configuration(host="https://10.0.0.1:443")
    configuration.client_session_kwargs = {"read_bufsize": 2**20}
    api = client.ApiClient(calls.without_netrc(configuration))
    try:
        session = api.rest_client._create_pool_manager()
        assert session.trust_env is False
        assert api.rest_client.proxy == proxy
        assert configuration.client_session_kwargs["read_bufsize"] == 2**20
        await session.close()
    finally:
        await api.close()
