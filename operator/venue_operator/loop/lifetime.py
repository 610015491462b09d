"""How long one VenueService's loop runs: until Kopf stops its daemon, or the VenueService
is gone.

The daemon runs without Kopf's finalizer (cli/handlers.py): a finalizer outlives the
operator, and after `helm uninstall` every deleted VenueService, and its namespace, would
wait for it forever. Without one, a deletion is immediate and Kopf sees only the watch's
DELETED event, on which it does not stop daemons (it relies on its finalizer to see the
deletion first). So the loop also stops when that event, or a 404 on its own status write,
says the object is gone; it holds nothing outside the cluster that a deletion must clean up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, Protocol

import kopf

from venue_operator.kube import calls
from venue_operator.kube.status_store import StatusWrite


class VenueServiceGone(Exception):
    """The VenueService's status write found it deleted: its loop ends, nothing to report."""


class StopFlag(Protocol):
    """What the loop waits on: true once it must stop; `wait` returns early when it is."""

    def __bool__(self) -> bool: ...

    def wait(self, seconds: float | None, /, *also: Awaitable[object]) -> Awaitable[object]: ...


class Deletions:
    """The VenueServices the watch saw deleted, by uid, until their loops have stopped.

    A mark can come before its loop starts: Kopf batches a watch's events, and an object
    created and deleted within one batch gets its daemon spawned on the DELETED event itself
    (after the handler that marks it). Marks no loop claims are bounded (`KEEP`)."""

    KEEP = 1_000

    def __init__(self) -> None:
        self._gone: dict[str, asyncio.Event] = {}

    def event(self, uid: str) -> asyncio.Event:
        """The one `uid`'s loop waits on (set if its deletion was seen already)."""
        return self._gone.setdefault(uid, asyncio.Event())

    def mark(self, uid: str) -> None:
        self.event(uid).set()
        if len(self._gone) > self.KEEP:  # drop the older half of the marks, never a waiting loop's
            marks = [u for u, gone in self._gone.items() if gone.is_set()]
            for old in marks[: len(marks) // 2]:
                del self._gone[old]

    def forget(self, uid: str) -> None:
        """Its loop has stopped."""
        self._gone.pop(uid, None)


class Lifetime:
    """Kopf's stop flag, or the VenueService gone: whichever comes first.

    Waiting does not wait on Kopf's flag: the daemon is registered with a cancellation
    timeout, so Kopf cancels its task a few event-loop turns after setting the flag
    (kopf/_core/engines/daemons.py), and the cancellation ends any wait. Waiting on the flag
    too took five tasks a wait (Kopf's promise, its wait_for, ...): at 1,000 services, their
    waits between guard ticks were a tenth of the operator's CPU."""

    def __init__(self, stopped: kopf.DaemonStopped, gone: asyncio.Event) -> None:
        self._stopped, self.gone = stopped, gone

    def __bool__(self) -> bool:
        return bool(self._stopped) or self.gone.is_set()

    async def wait(self, seconds: float | None, /, *also: Awaitable[object]) -> None:
        """Until the VenueService is gone, `seconds` pass (None: no time limit), or one of
        `also` is done."""
        if not also:  # a timer and the event's own waiter: no task
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self.gone.wait()
            return
        waits = [asyncio.create_task(self.gone.wait()), *(asyncio.ensure_future(a) for a in also)]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def ends_on_not_found(self, write: StatusWrite) -> StatusWrite:
        """`write`, which also ends the lifetime when the VenueService is not found: deleted
        while the watch was down and relisted (Kopf sends no DELETED event then)."""

        async def written(status: dict[str, Any], resource_version: str | None) -> str | None:
            try:
                return await write(status, resource_version)
            except calls.ApiError as exc:
                if exc.status == 404:
                    self.gone.set()
                    raise VenueServiceGone from None
                raise

        return written
