"""Status writes express removal: any status, written over any other and read back from the
real API server, equals itself (#10: an open incident kept the `resolvedAt` of the one
before it, because a merge patch of a dump without None fields never removes a field)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.aio import client, config

from tests.harness import fresh_namespace, get, venue_manifest
from venue_lab.session import Lab
from venue_operator.kube import calls
from venue_operator.kube.status_store import StatusStore, StatusTaken, parse_status, status_body
from venue_operator.model import status as model

# module-scoped fixtures: the whole module runs on one xdist worker, in order
pytestmark = pytest.mark.xdist_group("test_status_store")

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
times = st.integers(0, 10_000).map(lambda s: T0 + timedelta(seconds=s))
words = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), max_size=40)
maybe = st.one_of  # readability: maybe(st.none(), x)

# By alias: hypothesis reads pydantic's signature, which names the camelCase aliases.
levels, severities = st.sampled_from(list(model.Level)), st.sampled_from(list(model.Severity))
checks = st.builds(
    model.CheckStatus, name=st.sampled_from(["health", "error_rate", "memory"]), level=levels,
    observed=maybe(st.none(), levels), pending=maybe(st.none(), levels),
    pendingCount=st.integers(0, 5), value=maybe(st.none(), st.floats(0, 1e6, allow_nan=False)),
    unit=maybe(st.none(), words), section=words, reason=maybe(st.none(), words),
    lastKnown=maybe(st.none(), levels),
)  # fmt: skip
records = st.builds(
    model.ActionRecord, at=times, action=st.sampled_from(["RollBack", "ScaleUp"]), reason=words,
    result=st.sampled_from(list(model.ActionResult)), dryRun=st.booleans(), correlationId=words,
    section=maybe(st.none(), words), inputs=st.dictionaries(words, words, max_size=3),
)  # fmt: skip
entries = st.builds(model.IncidentEntry, at=times, severity=severities, message=words)
amounts = st.floats(0, 1e6, allow_nan=False)
tenants = st.builds(
    model.TenantImpact, tenant=st.text(max_size=64), failedRequests=amounts,
    errorPercent=maybe(st.none(), st.floats(0, 100)), affected=st.booleans(),
)  # fmt: skip
impacts = st.builds(
    model.Impact, updatedAt=times, requestRate=maybe(st.none(), amounts),
    failingRate=maybe(st.none(), amounts), peakFailingRate=amounts, failedRequests=amounts,
    tenantsAffected=st.integers(0, 100), topTenants=st.lists(tenants, max_size=3),
    checks=st.lists(words, max_size=2), sections=st.lists(words, max_size=2),
)  # fmt: skip
incidents = st.builds(
    model.Incident, id=words, openedAt=times, resolvedAt=maybe(st.none(), times),
    beganAt=maybe(st.none(), times), mitigatedAt=maybe(st.none(), times),
    severity=severities, escalated=st.booleans(), timeline=st.lists(entries, max_size=3),
    escalations=st.lists(words, max_size=3), pages=st.lists(words, max_size=3),
    impact=maybe(st.none(), impacts), timeToRecover=maybe(st.none(), st.just("1m30s")),
)  # fmt: skip
rollouts = st.builds(
    model.RolloutRecord, templateHash=words, revision=st.integers(0, 9), seenAt=times,
    healthySince=maybe(st.none(), times),
)  # fmt: skip
statuses = st.builds(
    model.VenueServiceStatus, health=maybe(st.none(), st.sampled_from(list(model.Health))),
    severity=maybe(st.none(), severities), revision=maybe(st.none(), st.integers(0, 100)),
    checks=st.lists(checks, max_size=3), lastAction=maybe(st.none(), records),
    history=st.lists(records, max_size=3), incident=maybe(st.none(), incidents),
    incidents=st.lists(incidents, max_size=2),
    rollout=maybe(st.none(), rollouts), healthyTemplates=st.lists(words, max_size=3),
    circuitOpen=st.booleans(),
)  # fmt: skip


@pytest.fixture(scope="module")
def target(the_lab: Lab) -> Iterator[tuple[Lab, str]]:
    with fresh_namespace(the_lab, "s") as ns:  # not t-*: no operator writes here
        the_lab.cluster.kubectl("apply", "-n", ns, "-f", "-", input=venue_manifest("store", 1))
        yield the_lab, ns


def read_back(lab: Lab, ns: str) -> dict[str, Any]:
    status: dict[str, Any] = get(lab, "venueservice", ns, "store").get("status", {})
    return status


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(first=statuses, second=statuses)
def test_any_status_written_over_any_other_reads_back_as_itself(
    target: tuple[Lab, str], first: model.VenueServiceStatus, second: model.VenueServiceStatus
) -> None:
    lab, ns = target

    async def write_both() -> None:
        async with connected(lab) as api:
            store = fenced(api, ns, *await calls.read_status(api, ns, "store"))
            await store.save(first, "test")
            await store.save(second, "test")

    asyncio.run(write_both())
    # as it was, but for what is not stored: a calm check's past value (kube/status_store.py)
    assert parse_status(read_back(lab, ns)) == parse_status(status_body(second))


@contextlib.asynccontextmanager
async def connected(lab: Lab) -> AsyncIterator[Any]:
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(lab.cluster.kubeconfig),
                                  client_configuration=cfg)  # fmt: skip
    async with client.ApiClient(configuration=cfg) as api:
        yield api


def fenced(api: Any, ns: str, raw: dict[str, Any], version: str) -> StatusStore:
    """A store as the operator's loop makes one (cli/handlers.py)."""
    return StatusStore(functools.partial(calls.replace_status, api, ns, "store"),
                       parse_status(raw), functools.partial(calls.read_status, api, ns, "store"),
                       version)  # fmt: skip


def test_a_fenced_write_survives_metadata_changes_and_never_overwrites_another_writer(
    target: tuple[Lab, str],
) -> None:
    """#24: the API server refuses a status write whose resourceVersion is not the object's
    (a JSON-patch test op on the status subresource); annotations moving it are written
    through, a status written by someone else is adopted."""
    lab, ns = target
    mine = model.VenueServiceStatus(health=model.Health.HEALTHY, revision=1)
    theirs = model.VenueServiceStatus(
        health=model.Health.HEALTHY, revision=2, rolledBackTemplates=["bad1"]
    )

    async def overlap() -> None:
        async with connected(lab) as api:
            stored = await calls.read_status(api, ns, "store")
            behind, ahead = fenced(api, ns, *stored), fenced(api, ns, *stored)
            await behind.save(mine, "test")
            # Kopf's annotations (a user's label...) move the object, not its status
            await calls.annotate_venueservice(api, ns, "store", {"test/touched": "1"})
            await behind.save(mine.model_copy(update={"ready": "2/2"}), "test")
            assert read_back(lab, ns)["ready"] == "2/2"
            ahead = fenced(api, ns, *await calls.read_status(api, ns, "store"))
            await ahead.save(theirs, "remediation")  # e.g. the replica that took it over
            with pytest.raises(StatusTaken):
                await behind.save(mine.model_copy(update={"ready": "3/3"}), "test")
            assert behind.written.rolled_back_templates == ["bad1"]  # adopted, not lost

    asyncio.run(overlap())
    stored = read_back(lab, ns)
    assert stored["rolledBackTemplates"] == ["bad1"] and stored["revision"] == 2
    assert "ready" not in stored  # theirs, whole: the behind one wrote nothing after it
