"""The fleet view across shards: what this replica publishes in its own Lease's annotation
at each renewal (its services' recent breaches, the rate slots it spent: fleet/summary.py),
and what it takes from the other members' Leases, which `Membership.tick` lists anyway. So the
storm guard and the fleet rate count the whole fleet for no API request of their own.

The others' breaches replace what they published before at every renewal, and a member
whose Lease is not live counts no more; its spent slots are kept for their minute (a member
killed mid-minute spent them all the same). A malformed annotation is logged once and left
out, never the renewal's end."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog

from venue_operator.fleet.board import FleetBoard
from venue_operator.fleet.rate import ShardedRate
from venue_operator.fleet.shards import Member
from venue_operator.fleet.summary import ANNOTATION, MAX_REPORTS, Breaches, encode, parse
from venue_operator.record import telemetry

log = structlog.get_logger(__name__)


class FleetExchange:
    def __init__(
        self, me: str, board: FleetBoard | None, rate: ShardedRate | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self.me, self.board, self.rate, self.clock = me, board, rate, clock
        self._unreadable: dict[str, str] = {}  # member -> the annotation last refused
        self._left_out = 0
        self._shares: tuple[int, int] | None = None

    def publish(self) -> dict[str, str]:
        """The annotations of this replica's Lease, for its next renewal."""
        reports = [] if self.board is None else self.board.published(self.clock())
        spent = () if self.rate is None else self.rate.spent()
        text, left_out = encode(reports, spent, 0 if self.rate is None else self.rate.per_minute)
        if left_out and not self._left_out:
            log.warning("fleet.summary_bounded", published=len(reports) - left_out,
                        left_out=left_out, most=MAX_REPORTS)  # fmt: skip
        self._left_out = left_out
        return {ANNOTATION: text}

    def receive(self, listed: Sequence[Member], live: Sequence[str]) -> None:
        """The members' Leases as listed (live or not) and the live members' names."""
        remote: dict[str, tuple[Breaches, ...]] = {}
        for member in listed:
            text = member.annotations.get(ANNOTATION)
            if member.name == self.me or text is None:
                continue  # ourselves; or a member without the fleet view (an older version)
            try:
                summary = parse(text)
            except ValueError as exc:
                if self._unreadable.get(member.name) != text:
                    log.warning("fleet.summary_unreadable", member=member.name,
                                error=str(exc)[:200])  # fmt: skip
                self._unreadable[member.name] = text
                continue
            self._unreadable.pop(member.name, None)
            if self.rate is not None:
                self.rate.seen(summary.spent, summary.per_minute)
            if member.name in live:
                remote[member.name] = summary.reports
        if self.board is not None:
            self.board.merge(remote, len(live), self.clock())
        telemetry.FLEET_REPLICAS.labels("leases").set(len(live))
        self._say_share()

    def _say_share(self) -> None:
        if self.rate is None:
            return
        share = self.rate.share()
        if share is not None and share != self._shares:
            log.info("fleet.rate_share", per_minute=self.rate.per_minute, place=share[0],
                     shards=share[1])  # fmt: skip
        self._shares = share
