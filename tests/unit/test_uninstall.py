"""`venue-operator uninstall` releases only what is the operator's."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.aio import client

from venue_operator.cli import uninstall
from venue_operator.cli.uninstall import FINALIZER, release
from venue_operator.kube import calls


def item(finalizers: list[str], annotations: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "v", "namespace": "n", "resourceVersion": "7",
                         "finalizers": finalizers, "annotations": annotations}}  # fmt: skip


@pytest.mark.parametrize(
    ("finalizers", "annotations", "expected"),
    [
        ([], {}, None),
        (["example.com/keep"], {"team": "a"}, None),
        ([FINALIZER], {}, [{"op": "replace", "path": "/metadata/finalizers", "value": []}]),
        ([FINALIZER, "example.com/keep"], {"team": "a"},
         [{"op": "replace", "path": "/metadata/finalizers", "value": ["example.com/keep"]}]),
        ([], {"venue.ops.tickettoken.io/last-handled-configuration": "{}"},
         [{"op": "remove",
           "path": "/metadata/annotations/venue.ops.tickettoken.io~1last-handled-configuration"}]),
    ],
)  # fmt: skip
def test_release(
    finalizers: list[str], annotations: dict[str, str], expected: list[dict[str, Any]] | None
) -> None:
    ops = release(item(finalizers, annotations))
    if expected is None:
        assert ops is None
        return
    assert ops is not None
    test, *changes = ops
    assert test == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    assert changes == expected


async def test_one_deleted_meanwhile_counts_as_released_not_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its namespace's deletion took it between the list and the patch: nothing holds it."""

    async def gone(*_: Any) -> None:
        raise client.ApiException(status=404, reason="Not Found")

    monkeypatch.setattr(calls, "patch_custom", gone)
    api: Any = None  # the fake above takes no client
    assert await uninstall._release_one(api, item([FINALIZER], {})) is False


async def test_any_other_refusal_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    async def forbidden(*_: Any) -> None:
        raise client.ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(calls, "patch_custom", forbidden)
    api: Any = None
    with pytest.raises(client.ApiException):
        await uninstall._release_one(api, item([FINALIZER], {}))
