"""The one status writer (kube/status_store.py): a status is stored only when something worth a
write changed, and `known` always follows the loop's latest view."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.aio import client

from venue_operator.kube import status_store
from venue_operator.kube.status_store import StatusStore, StatusTaken, parse_status, status_body
from venue_operator.model.status import (
    ActionRecord,
    ActionResult,
    CheckStatus,
    Health,
    Level,
    VenueServiceStatus,
)
from venue_operator.record.write_causes import write_causes


async def test_save_changes_writes_what_changed_and_only_that() -> None:
    written: list[dict[str, Any]] = []

    async def write(body: dict[str, Any], resource_version: str | None) -> str | None:
        written.append(body)
        return None

    store = StatusStore(write, VenueServiceStatus())
    same = VenueServiceStatus()
    assert not await store.save_changes(same)
    assert store.known is same and not written  # nothing worth an API write
    healthy = VenueServiceStatus(health=Health.HEALTHY)
    assert await store.save_changes(healthy)
    assert store.written is healthy and [w["health"] for w in written] == ["Healthy"]
    assert not await store.save_changes(healthy.model_copy())
    assert len(written) == 1


def _measured(latency: float, pods: float) -> VenueServiceStatus:
    checks = [CheckStatus(name="p99_latency", level=Level.OK, value=latency, unit="ms",
                          warning=500, critical=2000, section="High Latency"),
              CheckStatus(name="pods", level=Level.WARNING, value=pods, unit="pods",
                          section="Service Not Starting")]  # fmt: skip
    return VenueServiceStatus(health=Health.DEGRADED, checks=checks)


async def test_what_was_written_is_read_back_from_its_body_once_the_view_moved_on() -> None:
    """Not a second model per service (20 MB at 1,000): the body it was stored as, which has
    all that decides the next write; a calm check's value is not stored, so not read back."""
    stored: list[dict[str, Any]] = []

    async def write(body: dict[str, Any], resource_version: str | None) -> str | None:
        stored.append(json.loads(json.dumps(body)))
        return None

    store = StatusStore(write, VenueServiceStatus())
    first = _measured(150, 1)
    assert await store.save_changes(first) and store.written is first
    later = _measured(180, 2)  # values move every cycle: no write
    assert not await store.save_changes(later) and store.known is later
    assert store.written == parse_status(stored[-1]) != first  # the calm check's value
    assert {c.name: c.value for c in store.written.checks} == {"p99_latency": None, "pods": 1}
    assert write_causes(store.written, later) == write_causes(first, later) == []
    assert await store.save_changes(later.model_copy(update={"health": Health.DOWN}))
    assert len(stored) == 2


async def test_a_steady_cycle_reads_no_body_back_and_settled_is_what_is_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Values that move every cycle compare by the kept mark: the body is not parsed back
    (two parses a cycle were a quarter of a healthy cycle's CPU); `settled` (what the page
    outbox is sent from) is the latest view then, and what was written while a view that
    differs in something worth a write is not stored yet."""
    store = StatusStore(_write_nothing, VenueServiceStatus())
    assert await store.save_changes(_measured(150, 1))
    assert not await store.save_changes(_measured(160, 1))  # the body kept from here
    parses = []
    real = status_store.parse_status
    monkeypatch.setattr(status_store, "parse_status", lambda raw: parses.append(1) or real(raw))
    for latency in (170, 180, 190):
        later = _measured(latency, 1)
        assert not await store.save_changes(later)
        assert store.settled is later
    assert parses == []
    down = _measured(190, 1).model_copy(update={"health": Health.DOWN})
    store.known = down  # the loop's view, before save_changes
    assert store.settled.health is Health.DEGRADED  # what is stored, read back
    assert await store.save_changes(down) and store.settled is down


async def _write_nothing(body: dict[str, Any], resource_version: str | None) -> str | None:
    return None


AT = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


class StoredObject:
    """A VenueService as the API server keeps it, for fenced writes: a write that names an
    older resourceVersion is refused with a 422 (its JSON-patch "test" failed)."""

    def __init__(self, status: VenueServiceStatus) -> None:
        self.status, self.version, self.writes = status_body(status), 1, 0

    def touch(self) -> None:
        """A write to the metadata or spec (Kopf's annotations, a user's edit)."""
        self.version += 1

    async def write(self, body: dict[str, Any], resource_version: str | None) -> str | None:
        if resource_version != str(self.version):
            raise client.ApiException(status=422, reason="Unprocessable Entity")
        self.status, self.version = json.loads(json.dumps(body)), self.version + 1
        self.writes += 1
        return str(self.version)

    async def read(self) -> tuple[dict[str, Any], str]:
        return json.loads(json.dumps(self.status)), str(self.version)


def store_of(obj: StoredObject) -> StatusStore:
    return StatusStore(obj.write, parse_status(obj.status), obj.read, str(obj.version))


async def test_a_write_after_a_metadata_change_is_fenced_then_made_at_the_new_version() -> None:
    obj = StoredObject(VenueServiceStatus())
    store = store_of(obj)
    obj.touch()  # the resourceVersion moved; the status is still the store's own
    healthy = VenueServiceStatus(health=Health.HEALTHY)
    await store.save(healthy, "test")
    assert obj.status["health"] == "Healthy" and obj.writes == 1
    assert store.resource_version == str(obj.version)
    await store.save(healthy.model_copy(update={"revision": 2}), "test")  # no re-read needed
    assert obj.writes == 2 and obj.status["revision"] == 2


async def test_a_status_someone_else_wrote_is_adopted_never_overwritten() -> None:
    """Two operators during a peering overlap, or a replica that lost its services: the one
    behind finds the status moved on, writes nothing and holds what is stored."""
    obj = StoredObject(VenueServiceStatus(health=Health.HEALTHY))
    behind, ahead = store_of(obj), store_of(obj)
    rolled_back = ActionRecord(action="RollBack", reason="error_rate", at=AT,
                               result=ActionResult.SUCCEEDED, correlation_id="rb-1")  # fmt: skip
    theirs = VenueServiceStatus(health=Health.HEALTHY, history=[rolled_back])
    await ahead.save(theirs, "remediation")
    ours = VenueServiceStatus(health=Health.DEGRADED)  # computed before theirs was written
    with pytest.raises(StatusTaken):
        await behind.save(ours, "test")
    assert obj.status["history"][0]["action"] == "RollBack"  # their history kept
    assert obj.writes == 1
    assert behind.written.history == theirs.history and behind.known == behind.written
    await behind.save(behind.written.model_copy(update={"revision": 3}), "test")  # adopted
    assert obj.status["history"][0]["action"] == "RollBack" and obj.status["revision"] == 3


async def test_an_object_that_keeps_moving_is_given_up_on_not_overwritten() -> None:
    obj = StoredObject(VenueServiceStatus())

    async def moving() -> tuple[dict[str, Any], str]:
        found = await obj.read()
        obj.touch()  # moves again before every write
        return found

    store = StatusStore(obj.write, parse_status(obj.status), moving, str(obj.version))
    obj.touch()
    with pytest.raises(StatusTaken, match="kept moving"):
        await store.save(VenueServiceStatus(health=Health.HEALTHY), "test")
    assert obj.writes == 0
