"""Status writes express removal: any status, written over any other and read back from the
real API server, equals itself (#10: an open incident kept the `resolvedAt` of the one
before it, because a merge patch of a dump without None fields never removes a field)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.aio import client, config

from tests.harness import fresh_namespace, get, venue_manifest
from venue_lab.session import Lab
from venue_operator.kube import calls
from venue_operator.kube.status_store import StatusStore, parse_status
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
        cfg = client.Configuration()
        await config.load_kube_config(config_file=str(lab.cluster.kubeconfig),
                                      client_configuration=cfg)  # fmt: skip
        async with client.ApiClient(configuration=cfg) as api:
            store = StatusStore(lambda body: calls.replace_status(api, ns, "store", body),
                                model.VenueServiceStatus())  # fmt: skip
            await store.save(first, "test")
            await store.save(second, "test")

    asyncio.run(write_both())
    assert parse_status(read_back(lab, ns)) == second
