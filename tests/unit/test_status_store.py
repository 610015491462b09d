"""The one status writer (kube/status_store.py): a status is stored only when something worth a
write changed, and `known` always follows the loop's latest view."""

from __future__ import annotations

from typing import Any

from venue_operator.kube.status_store import StatusStore
from venue_operator.model.status import Health, VenueServiceStatus


async def test_save_changes_writes_what_changed_and_only_that() -> None:
    written: list[dict[str, Any]] = []

    async def write(body: dict[str, Any]) -> None:
        written.append(body)

    store = StatusStore(write, VenueServiceStatus())
    same = VenueServiceStatus()
    assert not await store.save_changes(same)
    assert store.known is same and not written  # nothing worth an API write
    healthy = VenueServiceStatus(health=Health.HEALTHY)
    assert await store.save_changes(healthy)
    assert store.written is healthy and [w["health"] for w in written] == ["Healthy"]
    assert not await store.save_changes(healthy.model_copy())
    assert len(written) == 1
