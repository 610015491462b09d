"""act.writer, the Acts port: what the API server refuses leaves it as an ActError carrying the
server's message and status, and the migration act names the Job it created. No cluster:
kube's calls are replaced by fakes answering what the API server would."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from kubernetes.aio import client

from venue_operator.act import ActError, ActResult
from venue_operator.act.migration import job_name
from venue_operator.act.writer import WorkloadWriter
from venue_operator.kube import calls

NS, NAME = "shop", "venue-service"
FORBIDDEN = (403, "Forbidden", 'deployments.apps "venue-service" is forbidden: User '
             '"system:serviceaccount:x:y" cannot get resource "deployments"')  # fmt: skip
NOT_FOUND = (404, "Not Found", 'deployments.apps "venue-service" not found')
CRONJOB = {
    "metadata": {"name": "venue-migrate", "namespace": NS, "uid": "u-cj"},
    "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
}


def refused(status: int, reason: str, message: str) -> Callable[..., Awaitable[Any]]:
    """A call the API server answers with a Status of `status`."""

    async def call(*_: Any) -> Any:
        exc = client.ApiException(status=status, reason=reason)
        exc.body = json.dumps({"kind": "Status", "message": message, "code": status})
        raise exc

    return call


def writer() -> WorkloadWriter:
    api: Any = None  # the fakes take no client
    return WorkloadWriter(api)


@pytest.mark.parametrize("answer", [FORBIDDEN, NOT_FOUND], ids=["403", "404"])
async def test_a_refusal_leaves_the_port_as_an_act_error_with_the_servers_words(
    monkeypatch: pytest.MonkeyPatch, answer: tuple[int, str, str]
) -> None:
    status, reason, message = answer
    monkeypatch.setattr(calls, "get_deployment", refused(status, reason, message))
    with pytest.raises(ActError) as raised:
        await writer().pause_rollout(NS, NAME, "rid-1")
    assert str(raised.value) == f"API {status} {reason}: {message}"
    assert raised.value.status == status
    assert raised.value.denied is (status == 403)


async def test_an_unreadable_migration_job_is_an_act_error_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The remediator follows a running Job through the same port (not a 404: that is Failed)."""
    monkeypatch.setattr(calls, "get_job", refused(*FORBIDDEN))
    with pytest.raises(ActError) as raised:
        await writer().migration_outcome(NS, "venue-migrate-venue-1234")
    assert raised.value.denied and "cannot get resource" in str(raised.value)


@pytest.mark.parametrize("exists", [False, True], ids=["created", "found created"])
async def test_the_migration_act_names_its_job(
    monkeypatch: pytest.MonkeyPatch, exists: bool
) -> None:
    """Created now or by the run before a crash: the same name, the remediator's to follow."""
    created: list[dict[str, Any]] = []

    async def get_cronjob(api: Any, namespace: str, name: str) -> dict[str, Any]:
        assert (namespace, name) == (NS, "venue-migrate")
        return CRONJOB

    async def create_job(api: Any, namespace: str, job: dict[str, Any]) -> None:
        if exists:
            await refused(409, "Conflict", "jobs.batch already exists")()
        created.append(job)

    monkeypatch.setattr(calls, "get_cronjob", get_cronjob)
    monkeypatch.setattr(calls, "create_job", create_job)
    result = await writer().run_migration(NS, "venue-migrate", "rid-1")
    name = job_name("venue-migrate", "rid-1")
    assert result == ActResult(not exists, result.message, job=name)
    assert [j["metadata"]["name"] for j in created] == ([] if exists else [name])
