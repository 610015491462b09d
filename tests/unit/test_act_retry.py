"""act.retry: a write that conflicts is re-read and re-planned, a bounded number of times;
any other refusal goes through at once. No cluster: fakes raise what the API answers."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.aio import client

from venue_operator.act import ActError, ActResult, pause
from venue_operator.act.retry import TRIES, retry_conflicts
from venue_operator.kube import calls

# what the real API server answers (kube-apiserver in the lab, tests/integration/
# test_act_conflicts.py): a JSON patch that does not apply, e.g. its "test" op failed ...
NOT_APPLIED = b'{"kind":"Status","status":"Failure","message":"the server rejected our ' \
    b'request due to an error in our request","reason":"Invalid","details":{},' \
    b'"code":422}'  # fmt: skip
# ... and an object it will never take
INVALID = b'{"kind":"Status","status":"Failure","message":"Deployment.apps \\"x\\" is ' \
    b'invalid: spec.replicas: Invalid value: -1","reason":"Invalid","details":{"causes":' \
    b'[{"reason":"FieldValueInvalid","field":"spec.replicas"}]},"code":422}'  # fmt: skip


class Writes:
    """An attempt whose write answers each status in turn (None: accepted)."""

    def __init__(self, *answers: int | tuple[int, bytes] | None) -> None:
        self.answers, self.calls = list(answers), 0

    async def __call__(self) -> str:
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            status, body = answer if isinstance(answer, tuple) else (answer, b"")
            refused = client.ApiException(status=status, reason="refused")
            refused.body = body
            raise refused
        return f"written on attempt {self.calls}"


async def test_a_conflict_or_a_failed_resource_version_test_is_tried_again() -> None:
    attempt = Writes(409, (422, NOT_APPLIED))
    assert await retry_conflicts(attempt) == "written on attempt 3"


async def test_an_invalid_patch_is_raised_at_once_not_retried_as_a_conflict() -> None:
    attempt = Writes((422, INVALID))
    with pytest.raises(client.ApiException) as refused:
        await retry_conflicts(attempt)
    assert refused.value.status == 422 and attempt.calls == 1


async def test_any_other_refusal_is_raised_at_once() -> None:
    attempt = Writes(403)
    with pytest.raises(client.ApiException) as refused:
        await retry_conflicts(attempt)
    assert refused.value.status == 403 and attempt.calls == 1


async def test_it_gives_up_after_the_tries_and_says_what_it_was_doing() -> None:
    attempt = Writes(*[409] * TRIES)
    with pytest.raises(ActError, match=f"gave up suspending x after {TRIES} conflicting"):
        await retry_conflicts(attempt, "suspending x")
    assert attempt.calls == TRIES


async def test_pause_rereads_after_a_conflict_and_finds_it_paused_by_the_other_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone paused it between our read and our write: the rerun sees that, writes nothing."""
    reads: list[int] = []
    patches: list[list[dict[str, Any]]] = []

    async def get_deployment(api: Any, namespace: str, name: str) -> dict[str, Any]:
        reads.append(1)
        paused = len(reads) > 1  # the other writer's pause landed after our first read
        return {"metadata": {"resourceVersion": str(len(reads)), "annotations": {}},
                "spec": {"paused": paused}}  # fmt: skip

    async def patch_deployment(api: Any, namespace: str, name: str, ops: Any) -> dict[str, Any]:
        patches.append(ops)
        refused = client.ApiException(status=422, reason="the resourceVersion test failed")
        refused.body = NOT_APPLIED
        raise refused

    monkeypatch.setattr(calls, "get_deployment", get_deployment)
    monkeypatch.setattr(calls, "patch_deployment", patch_deployment)
    api: Any = None  # the fakes above take no client
    result = await pause.pause_rollout(api, "shop", "venue-service", "rid-1")
    assert result == ActResult(False, "already paused")
    assert len(reads) == 2 and len(patches) == 1
    assert patches[0][0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "1"}
