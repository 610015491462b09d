"""The fleet board: every VenueService's last word on itself (which checks it has confirmed
critical), kept in the operator's memory, and the storms they add up to (decide/storm.py).

One per operator process: each loop reports once a cycle and asks which storms surround it
before deciding. The counts follow each report as it comes (decide/storm.py's Tally): the
fifth service to breach sees the storm it makes, so no more than four act.

With shards, a service another member runs is only `present` here (counted among its scopes'
services); its breaches are what that member published in its Lease (`merge`, every renewal:
fleet/exchange.py), so every replica counts the whole fleet."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from venue_operator.decide.storm import Key, Report, Storm, StormRule, Tally, scopes_of
from venue_operator.fleet.summary import Breaches


class FleetBoard:
    def __init__(self, rule: StormRule) -> None:
        self.rule = rule
        self.shards = 1  # the members whose breaches are counted (`merge`)
        self._reports: dict[Key, Report] = {}
        self._elsewhere: set[Key] = set()  # services only `present`: run by another member
        self._remote: dict[Key, Breaches] = {}
        self._tally = Tally(rule)

    def report(
        self, namespace: str, name: str, depends_on: Iterable[str], critical: Iterable[str],
        at: datetime,
    ) -> tuple[Storm, ...]:  # fmt: skip
        """This cycle's confirmed-critical checks, and the storms around the service then; a
        check breached before keeps its time (it counts for the storm rule's window after it
        recovered)."""
        key = (namespace, name)
        before = None if key in self._elsewhere else self._reports.get(key)
        self._elsewhere.discard(key)
        breached = {} if before is None else {
            check: when for check, when in before.breached.items()
            if at - when <= self.rule.window
        }  # fmt: skip
        breached.update(dict.fromkeys(critical, at))
        report = Report(namespace, name, frozenset(depends_on), at, breached)
        self._put(report)
        return self.around(namespace, report.depends_on, at)

    def present(self, namespace: str, name: str, depends_on: Iterable[str], at: datetime) -> None:
        """A service another shard runs: one of its scopes' services here; its breaches are
        that shard's to publish."""
        key = (namespace, name)
        self._elsewhere.add(key)
        self._put(Report(namespace, name, frozenset(depends_on), at))

    def _put(self, report: Report) -> None:
        key = (report.namespace, report.name)
        self._reports[key] = report
        self._tally.put(key, self._counted(key), report.at)

    def forget(self, namespace: str, name: str) -> None:
        self._elsewhere.discard((namespace, name))
        self._reports.pop((namespace, name), None)
        self._tally.drop((namespace, name))

    def published(self, at: datetime) -> list[Breaches]:
        """The breaches within the window of the services this replica runs, the most recent
        first: what the others count (fleet/summary.py bounds them)."""
        out = []
        for key, report in self._reports.items():
            if key in self._elsewhere:
                continue
            recent = {c: t for c, t in report.breached.items() if at - t <= self.rule.window}
            if recent:
                out.append(Breaches(report.namespace, report.name, report.at, recent))
        return sorted(out, key=lambda b: (max(b.breached.values()), b.at), reverse=True)

    def merge(self, remote: Mapping[str, Iterable[Breaches]], shards: int, at: datetime) -> None:
        """The other live members' published breaches, replacing what they published before
        (a member no longer live is left out by the caller, and its breaches with it)."""
        merged: dict[Key, Breaches] = {}
        for member in sorted(remote):
            for breaches in remote[member]:
                key = (breaches.namespace, breaches.name)
                if key not in merged or merged[key].at < breaches.at:
                    merged[key] = breaches
        changed = {key for key in merged.keys() | self._remote.keys()
                   if merged.get(key) != self._remote.get(key)}  # fmt: skip
        self._remote, self.shards = merged, shards
        for key in changed & self._reports.keys():
            self._tally.put(key, self._counted(key), at)

    def _counted(self, key: Key) -> Report:
        """The latest word on a service's breaches: its own cycle's or the member's that runs
        it. A published service this replica does not know (not yet seen by its watch) is
        left out: another member names breaches, never services."""
        report, remote = self._reports[key], self._remote.get(key)
        if remote is None or (key not in self._elsewhere and remote.at <= report.at):
            return report
        return replace(report, at=max(report.at, remote.at), breached=remote.breached)

    def storms(self, at: datetime) -> tuple[Storm, ...]:
        return self._counted_across(self._tally.storms(at))

    def around(self, namespace: str, depends_on: Iterable[str], at: datetime) -> tuple[Storm, ...]:
        """The storms in this service's scopes: its namespace, its dependencies, the cluster."""
        return self._counted_across(self._tally.around(scopes_of(namespace, depends_on), at))

    def _counted_across(self, found: tuple[Storm, ...]) -> tuple[Storm, ...]:
        if self.shards == 1:
            return found
        return tuple(replace(storm, shards=self.shards) for storm in found)
