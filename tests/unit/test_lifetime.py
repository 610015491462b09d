"""A VenueService's loop runs without Kopf's finalizer and stops when its VenueService is
gone: the watch's DELETED event, or a 404 on its status write (loop/lifetime.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import kopf
import pytest
from kopf._core.engines import daemons
from kopf._core.intents.stoppers import DaemonStopper, DaemonStoppingReason
from kubernetes.aio import client

from venue_operator.cli import handlers
from venue_operator.kube.permissions import PermissionReport
from venue_operator.loop.lifetime import Deletions, Lifetime, VenueServiceGone


def lifetime(gone: asyncio.Event | None = None) -> tuple[DaemonStopper, Lifetime]:
    stopper = DaemonStopper()  # Kopf's own: what it sets when the operator stops or pauses
    return stopper, Lifetime(stopper.async_waiter, gone or asyncio.Event())


async def test_a_lifetime_waits_its_time_while_nothing_ends_it() -> None:
    _, running = lifetime()
    started = time.monotonic()
    await running.wait(0.05)
    assert time.monotonic() - started >= 0.05 and not running


async def test_a_lifetime_ends_at_once_when_the_object_is_gone() -> None:
    _, running = lifetime()
    waiting = asyncio.create_task(running.wait(30))
    await asyncio.sleep(0)
    running.gone.set()
    await asyncio.wait_for(waiting, 1)
    assert running


async def test_kopf_stopping_the_daemon_ends_its_wait_at_once() -> None:
    """The wait does not wait on Kopf's flag (five tasks a wait): Kopf, stopping our daemon
    as registered (with a cancellation timeout), sets the flag and cancels its task a few
    event-loop turns later, and the cancellation ends the wait."""
    registry = kopf.OperatorRegistry()
    handlers.register(PermissionReport(missing={}), registry)
    (handler,) = registry._spawning.get_all_handlers()
    stopper, running = lifetime()
    waiting = asyncio.create_task(running.wait(30))
    await asyncio.sleep(0)
    daemon = daemons.Daemon(task=waiting, logger=logging.getLogger("test"), handler=handler,
                            stopper=stopper)  # fmt: skip
    started = time.monotonic()
    await daemons.stop_daemon(settings=kopf.OperatorSettings(), daemon=daemon,
                              reason=DaemonStoppingReason.OPERATOR_EXITING)  # fmt: skip
    assert waiting.cancelled() and time.monotonic() - started < 1 and running


async def test_a_deletion_seen_before_the_loop_started_ends_it_at_once() -> None:
    """Kopf batches events: an object created and deleted within one batch gets its daemon
    spawned on the DELETED event, after the handler that marked it."""
    deletions = Deletions()
    deletions.mark("uid-1")
    _, running = lifetime(deletions.event("uid-1"))
    assert running
    assert not Lifetime(DaemonStopper().async_waiter, deletions.event("uid-2"))


def test_old_marks_are_dropped_but_never_a_running_loop_s() -> None:
    deletions = Deletions()
    deletions.KEEP = 10
    waiting = deletions.event("running")
    for n in range(50):
        deletions.mark(f"deleted-{n}")
    assert len(deletions._gone) <= 11
    assert deletions.event("running") is waiting  # a later mark still reaches its loop
    deletions.mark("running")
    assert waiting.is_set()
    deletions.forget("running")
    assert "running" not in deletions._gone


@pytest.mark.parametrize(("status", "gone"), [(404, True), (409, False), (500, False)])
async def test_a_status_write_that_finds_no_object_ends_the_lifetime(
    status: int, gone: bool
) -> None:
    """Deleted while the watch was down: a relist sends no DELETED event."""

    async def refused(body: dict[str, Any], resource_version: str | None) -> str | None:
        raise client.ApiException(status=status)

    _, running = lifetime()
    # gone: a VenueServiceGone the loop ends on without a traceback; else the API's error
    with pytest.raises(VenueServiceGone if gone else client.ApiException):
        await running.ends_on_not_found(refused)({}, None)
    assert bool(running) is gone


def test_the_daemon_requires_no_finalizer_and_deletions_are_watched() -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(PermissionReport(missing={}), registry)
    daemons = registry._spawning.get_all_handlers()  # Kopf has no public listing
    assert [h.id for h in daemons] == ["watch_venue_service"]
    assert [h.requires_finalizer for h in daemons] == [False]
    (spy,) = registry._watching.get_all_handlers()
    assert spy.fn is handlers.venueservice_deleted and spy.when is not None
    assert spy.when(type="DELETED") and not spy.when(type="MODIFIED") and not spy.when(type=None)


async def test_the_deletion_handler_marks_the_uid() -> None:
    memo = kopf.Memo(deletions=Deletions())
    await handlers.venueservice_deleted(uid="u", memo=memo)
    assert memo.deletions.event("u").is_set()
