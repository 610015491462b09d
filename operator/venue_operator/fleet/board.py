"""The fleet board: every VenueService's last word on itself (which checks it has confirmed
critical), kept in the operator's memory, and the storms they add up to (decide/storm.py).

One per operator process: each loop reports once a cycle and asks which storms surround it
before deciding. The storms are computed again when a report changes what counts (a new
breach, a new service: the fifth service to breach sees the storm it makes, so no more than
four act) and otherwise at most once a second, however many loops ask (1,000 steady
services at 15 s: about 67 asks a second, one computation)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from venue_operator.decide.storm import Report, Storm, StormRule, scopes_of, storms

RECOMPUTE = timedelta(seconds=1)


class FleetBoard:
    def __init__(self, rule: StormRule) -> None:
        self.rule = rule
        self._reports: dict[tuple[str, str], Report] = {}
        self._storms: tuple[Storm, ...] = ()
        self._computed_at: datetime | None = None

    def report(
        self, namespace: str, name: str, depends_on: Iterable[str], critical: Iterable[str],
        at: datetime,
    ) -> None:  # fmt: skip
        """This cycle's confirmed-critical checks; a check breached before keeps its time
        (it counts for the storm rule's window after it recovered)."""
        before = self._reports.get((namespace, name))
        breached = {} if before is None else {
            check: when for check, when in before.breached.items()
            if at - when <= self.rule.window
        }  # fmt: skip
        breached.update(dict.fromkeys(critical, at))
        report = Report(namespace, name, frozenset(depends_on), at, breached)
        if before is None or (before.depends_on, set(before.breached)) != (
            report.depends_on,
            set(breached),
        ):
            self._computed_at = None  # the counts changed: the next ask sees it at once
        self._reports[(namespace, name)] = report

    def forget(self, namespace: str, name: str) -> None:
        if self._reports.pop((namespace, name), None) is not None:
            self._computed_at = None

    def storms(self, at: datetime) -> tuple[Storm, ...]:
        if self._computed_at is None or abs(at - self._computed_at) >= RECOMPUTE:
            self._storms = storms(self._reports.values(), self.rule, at)
            self._computed_at = at
        return self._storms

    def around(self, namespace: str, depends_on: Iterable[str], at: datetime) -> tuple[Storm, ...]:
        """The storms in this service's scopes: its namespace, its dependencies, the cluster."""
        mine = set(scopes_of(namespace, depends_on))
        return tuple(s for s in self.storms(at) if s.scope in mine)
