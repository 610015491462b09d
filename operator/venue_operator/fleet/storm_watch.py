"""The fleet watch: says when a storm starts and ends, once, for the whole fleet.

Every few seconds it compares the board's storms with the ones it knew: a new storm posts a
Warning `FleetStorm` Event on the operator's own Pod and sets `venue_operator_fleet_storm`
(the PrometheusRule's `VenueOperatorFleetStorm` alert: the fleet's one page); an ended one
posts a Normal `FleetStormOver` and drops its series. Each held VenueService says why in its
own `RemediationSuppressed` Event (remediate/remediator.py). With shards every replica sees the
same storms (fleet/exchange.py); the Events are posted by one of them, the member the shards'
hash gives the storm to (`announces`), so the fleet still hears each storm once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog

from venue_operator.decide.storm import Storm
from venue_operator.fleet.board import FleetBoard
from venue_operator.model.reasons import Reason
from venue_operator.record import telemetry
from venue_operator.record.transitions import EventSpec

log = structlog.get_logger(__name__)
TICK_S = 2.0
# An ended storm is said over once it has been gone this long: on a busy operator a few
# services' cycles run late and their breaches age out of the window for a tick or two.
QUIET = timedelta(seconds=10)

# (the Event, a key naming it once) -> posted; None: the operator does not know its Pod
Post = Callable[[EventSpec, str], Awaitable[object]]


def _started(storm: Storm) -> EventSpec:
    message = (f"{storm.describe()}: a shared cause; their scale-ups and service-wide "
               "rollbacks are held (the rollout guard still judges each rollout)")  # fmt: skip
    return EventSpec("Warning", Reason.FLEET_STORM, message)


def _ended(storm: Storm) -> EventSpec:
    return EventSpec("Normal", Reason.FLEET_STORM_OVER,
                     f"fewer services breaching {storm.check} together ({storm.scope}): each "
                     "acts on its own rules again")  # fmt: skip


class FleetWatch:
    def __init__(
        self, board: FleetBoard, post: Post | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC), quiet: timedelta = QUIET,
        announces: Callable[[str], bool] | None = None,
    ) -> None:  # fmt: skip
        """`announces(key)`: whether this replica posts the Events of the storm `key`."""
        self.board, self.post, self.clock, self.quiet = board, post, clock, quiet
        self.announces = announces
        self.active: dict[tuple[str, str], tuple[Storm, datetime]] = {}
        self.missing: dict[tuple[str, str], datetime] = {}  # active storms not seen since

    async def tick(self) -> None:
        now = self.clock()
        current = {storm.key: storm for storm in self.board.storms(now)}
        for key, storm in current.items():
            self.missing.pop(key, None)
            telemetry.FLEET_STORM.labels(*key).set(storm.breaching)
            if key not in self.active:
                self.active[key] = (storm, now)
                log.warning("fleet.storm", scope=storm.scope, check=storm.check,
                            breaching=storm.breaching, services=storm.services)  # fmt: skip
                await self._say(_started(storm), key, now)
            else:
                self.active[key] = (storm, self.active[key][1])
        for key in [k for k in self.active if k not in current]:
            if now - self.missing.setdefault(key, now) < self.quiet:
                continue  # a late cycle or two (a busy operator) does not end it
            del self.missing[key]
            storm, since = self.active.pop(key)
            with contextlib.suppress(KeyError):
                telemetry.FLEET_STORM.remove(*key)
            log.info("fleet.storm_over", scope=storm.scope, check=storm.check)
            await self._say(_ended(storm), key, since)

    async def _say(self, event: EventSpec, key: tuple[str, str], since: datetime) -> None:
        if self.announces is not None and not self.announces(f"storm/{key[0]}/{key[1]}"):
            return
        if self.post is not None:
            await self.post(event, f"storm/{key[0]}/{key[1]}/{since:%Y%m%dT%H%M%S}")

    async def run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # the watch must outlive a failed Event post
                log.exception("fleet.watch_failed")
            await asyncio.sleep(TICK_S)
