"""This replica's place among the shards: renews its Lease, reads the others', and says which
VenueServices it owns (fleet/shards.py).

It owns nothing while its own Lease may expire before a write lands (not renewed within two
thirds of its term), until it renews again. A renewal that lands nine tenths of a term or
more after the one before is a lapse: the others may have seen the Lease expire and taken its
services over (SIGSTOP, a partition, a long GC), so every service starts afresh (a new epoch:
loop/ownership.py). A slower renewal short of that (a busy API server) is no lapse: nobody
else ran anything meanwhile. Its status writes are fenced besides (kube/status_store.py).

Joining, or back after a lapse, beside live members, it takes nothing for two thirds of a
term more: a member that has not seen it yet still runs the services it gains, until that
member renews and lists it, or its own Lease is no longer certain, whichever comes first; two
thirds of a term covers both. Without it both ran such a service for up to a renewal (1.3 s
with a 4 s Lease), and a lab scale-out posted its breach Events twice. Alone, it waits for no
one (one replica, the first to start)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import structlog

from venue_operator.fleet.shards import Member, live, owner

log = structlog.get_logger(__name__)
T = TypeVar("T")
LAPSE = 0.9  # of a term between two renewals: the others may have seen the Lease expire
HISTORY = 16  # the member lists kept, to tell how long a service has been this replica's


class Exchange(Protocol):
    """What rides on the renewals: this replica's annotations out, the members' in
    (fleet/exchange.py)."""

    def publish(self) -> dict[str, str]: ...

    def receive(self, listed: Sequence[Member], live: Sequence[str]) -> None: ...


class Membership:
    def __init__(
        self, me: str, renew: Callable[[Mapping[str, str]], Awaitable[None]],
        members: Callable[[], Awaitable[Sequence[tuple[Any, ...]]]], lease: timedelta,
        exchange: Exchange | None = None, thread: RenewalThread | None = None,
    ) -> None:  # fmt: skip
        """`renew(annotations)`; `members()`: the Leases as (holder, renewed, term[,
        annotations]) (kube/leases.py); `thread`: where they run (their API connection's),
        else on this loop."""
        self.me, self._renew, self._members, self.lease = me, renew, members, lease
        self.exchange, self.thread = exchange, thread
        self.members: tuple[str, ...] = ()
        self.epoch = 0
        self.task: asyncio.Task[None] | None = None  # run_forever, once started
        self._renewed_at: float | None = None  # time.monotonic() of the last renewal
        self._settles_at: float | None = None  # ... from which it may take what it gains
        # (epoch, members) since our Lease last lapsed, oldest first; and per service asked
        # about in this epoch, the epoch it has been ours since (holds)
        self._history: list[tuple[int, tuple[str, ...]]] = []
        self._since: dict[str, int | None] = {}
        self._changed = asyncio.Event()
        # what the renewal thread publishes, prepared here; and when it last renewed in time
        self._outbox: dict[str, str] = {}
        self._renewed_in_time = -math.inf

    def current(self) -> bool:
        """Our own Lease is certainly still ours: renewed within two thirds of its term (by
        a renewal applied here, or one the renewal thread made in time after it)."""
        renewed = max(self._renewed_at or -math.inf, self._renewed_in_time)
        return time.monotonic() - renewed < self.lease.total_seconds() * 2 / 3

    @property
    def period(self) -> float:
        """Seconds between renewals: a third of the term (and the spread of a take-over)."""
        return self.lease.total_seconds() / 3

    def _lapsed(self, landed: float, after: float | None = None) -> bool:
        """A renewal that landed at `landed` comes after our Lease may have expired for the
        others (a tenth of the term is left for clocks): since the renewal begun at `after`
        (by default, the last one applied here)."""
        after = self._renewed_at if after is None else after
        return after is None or landed - after >= self.lease.total_seconds() * LAPSE

    def settled(self) -> bool:
        """Joined (or back) long enough ago that no member runs what we gain any more."""
        return self._settles_at is not None and time.monotonic() >= self._settles_at

    def renewing(self) -> bool:
        """Settled, but our own Lease was not renewed within two thirds of its term: a busy
        API server, most often. What we own is known again when the renewal lands (in time,
        the same epoch; late, a new one), so a loop waits for it rather than letting go."""
        return self.settled() and not self.current()

    def owns(self, key: str) -> bool:
        return self.holds(key) is not None

    def holds(self, key: str) -> int | None:
        """The epoch since which this replica has owned `key` without a gap, or None. A lapse
        of its own Lease starts every service afresh (the others may have run them); a change
        of members, only those it moves: a service this replica kept through it was run by no
        one else (a newcomer takes nothing until it has settled). A cycle that began in
        another epoch must not go on (loop/ownership.py)."""
        if not (self.current() and self.settled()):
            return None
        if key not in self._since:  # hashed once per service and epoch, however often asked
            since = None
            for epoch, members in reversed(self._history):
                if owner(key, members) != self.me:
                    break
                since = epoch
            self._since[key] = since
        return self._since[key]

    def changed(self) -> Awaitable[object]:
        """Done at the next change of what this replica may own: the members, its own Lease
        lapsing or back, the wait after joining over (loop/turns.py waits on it)."""
        return self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def tick(self) -> None:
        """One renewal and listing (on the renewal thread, when there is one), applied here."""
        io = self._io(self._published())
        self._apply(*await (io if self.thread is None else self.thread.run(io)))

    async def _io(self, annotations: Mapping[str, str]) -> tuple[float, float, list[Member]]:
        """Renew, then list the Leases: when the renewal started and landed, what was listed."""
        started = time.monotonic()
        await self._renew(annotations)
        landed = time.monotonic()  # from now on the others may see us
        return started, landed, [Member(*m) for m in await self._members()]

    def _apply(self, started: float, landed: float, listed: list[Member]) -> None:
        lapsed, before = self._lapsed(landed), self.members
        found = live(listed, datetime.now(UTC))
        if lapsed:
            others = any(name != self.me for name in found)
            wait = self.lease.total_seconds() * 2 / 3 if others else 0
            self._settles_at = landed + wait
            if wait:
                asyncio.get_running_loop().call_later(wait, self._notify)
        self.members = found if self.me in found else tuple(sorted({*found, self.me}))
        self._renewed_at = started
        if lapsed or self.members != before:
            self.epoch += 1
            kept = [] if lapsed else self._history[-(HISTORY - 1) :]
            self._history, self._since = [*kept, (self.epoch, self.members)], {}
            self._notify()
        if self.exchange is not None:
            try:
                self.exchange.receive(listed, self.members)
            except Exception:  # the others' view is a help: never the renewal's end
                log.exception("fleet.receive_failed")

    def _published(self) -> dict[str, str]:
        if self.exchange is None:
            return {}
        try:
            return self.exchange.publish()
        except Exception:  # renewed without it: what was published last ages out
            log.exception("fleet.publish_failed")
            return {}

    async def run_forever(self) -> None:
        """Renew three times per Lease term; a failed renewal is logged and retried. With a
        renewal thread the renewals are timed and made there, and only applied here."""
        if self.thread is not None:
            self._outbox = self._published()
            await self.thread.run(self._renew_forever(asyncio.get_running_loop()))
            return
        while True:
            started = time.monotonic()
            try:
                self._landed(await self._io(self._published()))
            except Exception as exc:  # the API server down: own nothing once the Lease lapses
                log.warning("shards.renew_failed", error=str(exc)[:300])
            await asyncio.sleep(self._until_next(started))

    def _until_next(self, started: float) -> float:
        """Renewals begin every third of a term, however long the last one took."""
        return max(0.0, started + self.period - time.monotonic())

    async def _renew_forever(self, main: asyncio.AbstractEventLoop) -> None:
        """On the renewal thread. A renewal short of a lapse counts at once (`current`); one
        after a lapse (the process was paused) only once applied on the main loop, with the
        new epoch, so a cycle resumed meanwhile cannot pass for current."""
        last: float | None = None
        while True:
            started = time.monotonic()
            try:
                done = await self._io(self._outbox)
                if last is not None and not self._lapsed(done[1], last):
                    self._renewed_in_time = done[0]
                last = done[0]
                main.call_soon_threadsafe(self._landed, done)
            except Exception as exc:
                log.warning("shards.renew_failed", error=str(exc)[:300])
            await asyncio.sleep(self._until_next(started))

    def _landed(self, done: tuple[float, float, list[Member]]) -> None:
        """A renewal's result, applied on the main loop; what the next one publishes."""
        before = self.members
        self._apply(*done)
        if self.members != before:
            log.info("shards.members", members=list(self.members), me=self.me)
        self._outbox = self._published()


class RenewalThread:
    """An event loop on a thread of its own for the Lease renewals and their API connection:
    a busy main loop (a take-over of hundreds of services on 2 cores) delays evaluations,
    never a renewal. bench/shards.py at 2,000 over 4 saw 25 s between one replica's renewals
    against a 15 s Lease: the others dropped it, it came back, and every flap moved a quarter
    of the fleet twice."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._api: Any = None  # `connect`'s, closed with the thread
        self._thread = threading.Thread(target=self.loop.run_forever, name="lease-renewals",
                                         daemon=True)  # fmt: skip
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """`work` run on the renewal thread, awaited from the main loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    async def connect(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """An API connection made on the thread (whose loop it belongs to), closed with it."""
        self._api = api = await self.run(make())
        return api

    async def close(self) -> None:
        """Its API connection closed, its loop stopped, the thread joined (not blocking the
        main loop meanwhile)."""
        if self._api is not None:
            with contextlib.suppress(Exception):
                await self.run(self._api.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, 5)
