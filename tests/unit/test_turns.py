"""loop/turns.py's Presence: the services a replica only waits on, recounted together."""

from __future__ import annotations

import asyncio
import contextlib

from tests.unit.waiting import eventually
from venue_operator.loop.turns import Presence


def test_a_waiting_service_is_counted_at_once_and_at_each_recount_until_it_stops() -> None:
    presence, counted = Presence(), []
    with presence.waiting("ns/a", lambda: counted.append("a")):
        assert counted == ["a"]
        presence.recount()
        presence.recount()
        assert counted == ["a", "a", "a"]
    presence.recount()
    assert counted == ["a", "a", "a"]  # no longer waiting: its own loop reports it


def test_a_newer_daemon_of_the_same_name_keeps_its_count_when_the_old_one_stops() -> None:
    presence, counted = Presence(), []
    old = presence.waiting("ns/a", lambda: counted.append("old"))
    old.__enter__()
    with presence.waiting("ns/a", lambda: counted.append("new")):
        old.__exit__(None, None, None)  # deleted and created again: the old daemon ends late
        counted.clear()
        presence.recount()
        assert counted == ["new"]


async def test_the_recount_runs_on_its_period() -> None:
    presence, counted = Presence(), []
    with presence.waiting("ns/a", lambda: counted.append("a")):
        recounting = asyncio.create_task(presence.recount_forever(every=0.01))
        await eventually("two recounts", lambda: len(counted) >= 3)
        recounting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recounting
