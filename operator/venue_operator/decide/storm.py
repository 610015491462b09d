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

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from venue_operator.decide.decision import Action, Decision

HELD_ACTIONS = {Action.ROLL_BACK, Action.SCALE_UP}
CLUSTER = "cluster"


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


def storms(reports: Iterable[Report], rule: StormRule, now: datetime) -> tuple[Storm, ...]:
    """Every storm now, over the reports of services seen within the window."""
    if not rule.enabled:
        return ()
    members: dict[str, list[Seen]] = defaultdict(list)
    for report in reports:
        if now - report.at <= rule.window:
            seen = Seen(report.namespace, _recent(report, rule, now))
            for scope in scopes_of(report.namespace, report.depends_on):
                members[scope].append(seen)
    found = []
    for scope, inside in sorted(members.items()):
        for check in sorted({c for seen in inside for c in seen.breaching}):
            storm = _judge(scope, check, inside, rule)
            if storm is not None:
                found.append(storm)
    return tuple(found)


@dataclass(frozen=True)
class Seen:
    """A service counted in a scope: its namespace, and the checks it breaches now (worked
    out once a computation, not once per scope and check: at 5,000 services in breach the
    board's recomputations were 40% of a replica's CPU)."""

    namespace: str
    breaching: frozenset[str]


def _recent(report: Report, rule: StormRule, now: datetime) -> frozenset[str]:
    """The checks the service counts as breaching: said within the window."""
    return frozenset(check for check, at in report.breached.items() if now - at <= rule.window)


def _judge(scope: str, check: str, inside: Sequence[Seen], rule: StormRule) -> Storm | None:
    breaching = [seen for seen in inside if check in seen.breaching]
    if len(breaching) < rule.min_services or len(breaching) < rule.min_fraction * len(inside):
        return None
    if scope.startswith("namespace "):
        return Storm(scope, check, len(breaching), len(inside))
    voices = {r.namespace for r in breaching}
    everyone = {r.namespace for r in inside}
    if len(voices) < rule.min_namespaces or len(voices) < rule.min_fraction * len(everyone):
        return None
    return Storm(scope, check, len(breaching), len(inside), (len(voices), len(everyone)))


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
