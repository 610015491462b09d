"""The fleet storm rule, pure: when many VenueServices breach the same check at once, the
cause is shared (the database behind them slowed down), and each service scaling up or
rolling back on its own adds pods and connections to the thing that is already struggling.
Node Health Check (medik8s) stops remediating past `maxUnhealthy` nodes for the same reason.

A storm is one check breached together within a scope: the namespace, the services naming
the same dependency (`spec.dependsOn`), or the whole cluster the operator watches. In a
namespace it takes `min_services` breaching and `min_fraction` of the namespace's services.
Across namespaces each namespace is one voice (a tenant owns its namespaces' VenueServices,
not the others': ten broken services of one tenant must not hold another tenant's scale-up),
so it also takes `min_namespaces` namespaces breaching and `min_fraction` of the scope's
namespaces. A service counts as breaching while it reported the check confirmed critical
within `window`, so services that cross a few cycles apart are seen together.

What a storm explains (`held_by_storm`): a service-wide scale-up or rollback whose every
confirmed-critical check is storming in one of the service's scopes. The rollout guard's
own new-versus-old comparison is not a service-wide rule and is never held by it.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from venue_operator.decide.decision import Action, Decision

HELD_ACTIONS = {Action.ROLL_BACK, Action.SCALE_UP}
CLUSTER = "cluster"
Key = tuple[str, str]  # namespace, name


@dataclass(frozen=True)
class StormRule:
    """Defaults (docs/fleet.md): a storm needs more services breaching together
    than a bad release train touches (one team's few services) and a share of the scope
    that independent incidents do not reach within a minute."""

    min_services: int = 5
    min_fraction: float = 0.3
    min_namespaces: int = 3
    window: timedelta = timedelta(seconds=60)

    @property
    def enabled(self) -> bool:
        return self.min_services > 0


@dataclass(frozen=True)
class Report:
    """What one VenueService's last cycle said about itself."""

    namespace: str
    name: str
    depends_on: frozenset[str]
    at: datetime  # its last cycle
    # check -> the last cycle that had it confirmed critical (fleet/board.py keeps it)
    breached: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Storm:
    scope: str  # "namespace shop", "dependency orders-db", "cluster"
    check: str
    breaching: int  # services breaching the check within the window
    services: int  # services in the scope
    namespaces: tuple[int, int] | None = None  # (breaching, in scope) across namespaces
    shards: int = 1  # the replicas whose services were counted (fleet/board.py)

    @property
    def key(self) -> tuple[str, str]:
        return self.scope, self.check

    def describe(self) -> str:
        across = ""
        if self.namespaces is not None:
            across = f" in {self.namespaces[0]} of {self.namespaces[1]} namespaces"
        counted = f"; counted across {self.shards} shards" if self.shards > 1 else ""
        return (f"{self.breaching} of {self.services} services{across} breaching "
                f"{self.check} together ({self.scope}{counted})")  # fmt: skip


def scopes_of(namespace: str, depends_on: Iterable[str]) -> tuple[str, ...]:
    """A service's scopes: its namespace, each dependency it names, the cluster."""
    return (f"namespace {namespace}", *(f"dependency {d}" for d in sorted(depends_on)),
            CLUSTER)  # fmt: skip


@dataclass(frozen=True)
class Seen:
    """A service as counted now: its namespace, its scopes, the checks it breaches, and until
    when that holds (its report or one of its breaches leaves the window then)."""

    namespace: str
    scopes: tuple[str, ...]
    breaching: frozenset[str]
    until: datetime

    @staticmethod
    def of(report: Report, rule: StormRule, now: datetime) -> Seen | None:
        if now - report.at > rule.window:
            return None
        recent = {check: at for check, at in report.breached.items() if now - at <= rule.window}
        until = min((report.at, *recent.values())) + rule.window
        scopes = scopes_of(report.namespace, report.depends_on)
        return Seen(report.namespace, scopes, frozenset(recent), until)

    def counts_as(self, other: Seen | None) -> bool:
        return other is not None and (self.namespace, self.scopes, self.breaching) == (
            other.namespace, other.scopes, other.breaching)  # fmt: skip


_NOWHERE = Seen("", (), frozenset(), datetime.min)  # a service not counted: in no scope


@dataclass
class _Scope:
    services: int = 0
    namespaces: Counter[str] = field(default_factory=Counter)  # namespace -> its services
    breaching: Counter[str] = field(default_factory=Counter)  # check -> services breaching
    voices: dict[str, Counter[str]] = field(default_factory=dict)  # check -> namespace -> ...


class Tally:
    """The storm rule's counts, kept as reports come and go: a report that changes what
    counts re-judges its own scopes and checks, not the fleet (at 5,000 services flapping, a
    full count at each such report was 41% of a replica's CPU), and what leaves the window is
    taken out when its time comes (`until`). The same storms as counting from scratch."""

    def __init__(self, rule: StormRule) -> None:
        self.rule = rule
        self._reports: dict[Key, tuple[Report, Seen]] = {}
        self._due: dict[Key, datetime] = {}  # the `until` each service waits for on the heap
        self._heap: list[tuple[datetime, Key]] = []
        self._scopes: dict[str, _Scope] = defaultdict(_Scope)
        self._storms: dict[str, dict[str, Storm]] = defaultdict(dict)  # scope -> check -> ...
        self._sorted: tuple[Storm, ...] | None = ()

    def put(self, key: Key, report: Report, now: datetime) -> None:
        """The service's latest report, counted as of `now`."""
        seen = Seen.of(report, self.rule, now) if self.rule.enabled else None
        if seen is None:
            self.drop(key)
            return
        before = self._reports.get(key, (None, None))[1]
        self._reports[key] = (report, seen)
        if key not in self._due or seen.until < self._due[key]:
            self._due[key] = seen.until
            heapq.heappush(self._heap, (seen.until, key))
        if not seen.counts_as(before):
            self._recount(before, seen)

    def drop(self, key: Key) -> None:
        """The service is gone, or not seen within the window."""
        self._due.pop(key, None)
        old = self._reports.pop(key, None)
        if old is not None:
            self._recount(old[1], None)

    def storms(self, now: datetime) -> tuple[Storm, ...]:
        self._expire(now)
        if self._sorted is None:
            self._sorted = tuple(self._storms[scope][check] for scope in sorted(self._storms)
                                 for check in sorted(self._storms[scope]))  # fmt: skip
        return self._sorted

    def around(self, scopes: Iterable[str], now: datetime) -> tuple[Storm, ...]:
        self._expire(now)
        return tuple(self._storms[scope][check] for scope in sorted(set(scopes))
                     if scope in self._storms for check in sorted(self._storms[scope]))  # fmt: skip

    def _expire(self, now: datetime) -> None:
        while self._heap and now > self._heap[0][0]:
            until, key = heapq.heappop(self._heap)
            if self._due.get(key) == until:
                del self._due[key]
                self.put(key, self._reports[key][0], now)

    def _count(self, seen: Seen | None, sign: int) -> None:
        if seen is None:
            return
        for name in seen.scopes:
            scope = self._scopes[name]
            scope.services += sign
            _add(scope.namespaces, seen.namespace, sign)
            for check in seen.breaching:
                _add(scope.breaching, check, sign)
                _add(scope.voices.setdefault(check, Counter()), seen.namespace, sign)
                if not scope.voices[check]:
                    del scope.voices[check]
            if not scope.services:
                del self._scopes[name]

    def _recount(self, before: Seen | None, after: Seen | None) -> None:
        self._count(before, -1)
        self._count(after, +1)
        was, now = before or _NOWHERE, after or _NOWHERE
        checks = was.breaching | now.breaching
        for name in {*was.scopes, *now.scopes}:
            judged = checks
            if name not in was.scopes or name not in now.scopes:
                # the scope's services changed: every share in it did
                judged = checks | {*self._scopes.get(name, _Scope()).breaching,
                                   *self._storms.get(name, ())}  # fmt: skip
            for check in judged:
                self._judge(name, check)
        self._sorted = None

    def _judge(self, name: str, check: str) -> None:
        scope = self._scopes.get(name, _Scope())
        namespaces = (len(scope.voices.get(check, ())), len(scope.namespaces))
        storm = _judged(name, check, scope.breaching[check], scope.services, namespaces, self.rule)
        if storm is not None:
            self._storms[name][check] = storm
        elif check in self._storms.get(name, {}):
            del self._storms[name][check]
            if not self._storms[name]:
                del self._storms[name]


def _add(counter: Counter[str], key: str, sign: int) -> None:
    counter[key] += sign
    if not counter[key]:
        del counter[key]


def _judged(scope: str, check: str, breaching: int, services: int, namespaces: tuple[int, int],
          rule: StormRule) -> Storm | None:  # fmt: skip
    """A storm, from the counts: services breaching `check` in `scope` and services in it;
    (namespaces breaching it, namespaces in it)."""
    if breaching < rule.min_services or breaching < rule.min_fraction * services:
        return None
    if scope.startswith("namespace "):
        return Storm(scope, check, breaching, services)
    voices, everyone = namespaces
    if voices < rule.min_namespaces or voices < rule.min_fraction * everyone:
        return None
    return Storm(scope, check, breaching, services, namespaces)


def explaining(storms_around: Sequence[Storm], critical: Sequence[str]) -> Storm | None:
    """The storm that explains a service's breach: every check it acts on is storming in
    one of its scopes (the largest such storm is named)."""
    if not critical or not storms_around:
        return None
    storming = {s.check for s in storms_around}
    if not set(critical) <= storming:
        return None
    return max((s for s in storms_around if s.check in critical),
               key=lambda s: (s.breaching, s.scope))  # fmt: skip


def held_by_storm(decision: Decision, storm: Storm | None) -> Decision:
    """A scale-up or service-wide rollback the storm explains, held: no escalation per
    service (the fleet is paged once, fleet/storm_watch.py), one Event that says why."""
    if storm is None or decision.action not in HELD_ACTIONS:
        return decision  # a cooldown or budget holding it too: the storm is the reason given
    why = (f"{decision.reason}; held: {storm.describe()}, a shared cause: no service acts "
           "on it alone (the rollout guard still judges each rollout)")  # fmt: skip
    return replace(decision, suppressed_by="storm", reason=why)
