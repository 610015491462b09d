"""Which API calls the operator's ServiceAccount may make, asked once at startup with
SelfSubjectAccessReviews, so that a missing permission degrades the operator instead of
killing it.

Why ask first: Kopf (1.45) retries a 403 on a watch with its `networking.error_backoffs`
(1+1+2+3+5+8+13+21 = 54 s, `kopf/_cogs/clients/api.py` `request`), then the watcher task
fails, the orchestrator re-raises it and the whole operator exits (a crash loop in a pod,
which a restart cannot fix); meanwhile no handler runs, because Kopf starts them only once
every index has been listed. So an index is registered only if its resource can be listed
and watched (handlers.register), and what is missing is reported in the log, the metrics,
`/healthz` and `memo.missing_permissions` for the per-VenueService loop.

Not checked: `get secrets` (per namespace and per Secret name, from each VenueService's
spec: a denied read fails that page only), `get`/`patch` on KEDA's `scaledobjects` (optional
where KEDA is not used; a denied read or write escalates for that VenueService only), and
what Kopf itself degrades on (namespaces, CRDs: it logs "Not enough permissions" and carries
on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import structlog

from venue_operator.kube import calls
from venue_operator.model.spec import GROUP, PLURAL
from venue_operator.record import telemetry

log = structlog.get_logger(__name__)
WHO = "the operator's ServiceAccount"
CLUSTER_WIDE = ""  # a review's namespace: "" asks about all namespaces
GLOB_CHARACTERS = set("*?[],!")  # Kopf's namespace patterns: globs, lists, negations
REVIEW_TIMEOUT_S = 10.0
REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
CONCURRENT_REVIEWS = 10


@dataclass(frozen=True)
class Need:
    """Verbs on one resource, reported under one key of `memo.missing_permissions`."""

    key: str
    verbs: tuple[str, ...]
    group: str
    resource: str  # plural, optionally with "/subresource"

    @property
    def name(self) -> str:
        """As kubectl spells it: `deployments.apps`, `pods`, `venueservices.GROUP/status`."""
        plural, slash, sub = self.resource.partition("/")
        return f"{plural}.{self.group}{slash}{sub}" if self.group else self.resource


def _watch(key: str, group: str, resource: str) -> Need:
    return Need(key, ("list", "watch"), group, resource)


def _write(verb: str, group: str, resource: str) -> Need:
    return Need(f"{verb} {resource}", (verb,), group, resource)


VENUESERVICES = _watch("venueservices", GROUP, PLURAL)
INDEXES: dict[str, Need] = {  # the watch-fed indexes of cli/handlers.py, by index name
    "deployments": _watch("deployments", "apps", "deployments"),
    "replicasets": _watch("replicasets", "apps", "replicasets"),
    "pods": _watch("pods", "", "pods"),
    "jobs": _watch("jobs", "batch", "jobs"),
    # Who owns the replica count (observe/scalers.py); without it, no scale-up (escalation).
    "horizontalpodautoscalers": _watch(
        "horizontalpodautoscalers", "autoscaling", "horizontalpodautoscalers"
    ),
}
WATCHED = {VENUESERVICES.key: VENUESERVICES, **INDEXES}  # what Kopf watches, by handler id
WRITES = (  # and the reads that only act/ does
    _write("patch", GROUP, PLURAL),  # Kopf: removes the finalizer older versions left
    _write("patch", GROUP, f"{PLURAL}/status"),  # kube.patch_status
    _write("get", "apps", "deployments"),  # rollback, scale: read before the patch
    _write("patch", "apps", "deployments"),  # rollback, scale
    _write("get", "autoscaling", "horizontalpodautoscalers"),  # act/scale.py
    _write("patch", "autoscaling", "horizontalpodautoscalers"),  # its minReplicas
    _write("get", "batch", "jobs"),  # the migration Job's outcome
    _write("create", "batch", "jobs"),  # the migration Job
    _write("get", "batch", "cronjobs"),  # the migration Job's template
    _write("get", "", "configmaps"),  # circuit breaker
    _write("create", "", "configmaps"),
    _write("patch", "", "configmaps"),
    _write("create", "", "events"),  # Kopf posts our Events
)
NEEDS = (VENUESERVICES, *INDEXES.values(), *WRITES)
# --shards: each replica's own Lease and the others' (kube/leases.py), in the operator's own
# namespace only. Without them a replica can never renew, so it owns and evaluates nothing.
LEASES = Need("leases", ("get", "list", "create", "patch", "delete"), "coordination.k8s.io",
              "leases")  # fmt: skip


class Review(NamedTuple):
    """One SelfSubjectAccessReview: may we `verb` this resource in `namespace`?"""

    verb: str
    group: str
    resource: str
    namespace: str  # CLUSTER_WIDE for all namespaces


class Denied(NamedTuple):
    verb: str
    resource: str  # Need.name


@dataclass(frozen=True)
class PermissionReport:
    """What the ServiceAccount may not do. `missing` maps a Need's key to one line for
    humans; `unchecked` are keys whose review failed (assumed granted: as before a check)."""

    missing: Mapping[str, str] = field(default_factory=dict)
    denied: tuple[Denied, ...] = ()
    unchecked: tuple[str, ...] = ()

    @property
    def degraded(self) -> bool:
        return bool(self.missing)

    def allows(self, key: str) -> bool:
        return key not in self.missing

    def probe(self) -> dict[str, Any]:
        """For `/healthz`: a restart cannot grant RBAC, so this reports and stays 200."""
        return {"degraded": self.degraded, "missing": dict(self.missing),
                "unchecked": list(self.unchecked)}  # fmt: skip


def scopes(namespaces: Sequence[str]) -> tuple[str, ...]:
    """Where to ask: each namespace given by name; cluster-wide when watching all of them
    or a pattern (a namespace created later may match it)."""
    if not namespaces or any(GLOB_CHARACTERS & set(ns) for ns in namespaces):
        return (CLUSTER_WIDE,)
    return tuple(sorted(set(namespaces)))


def reviews(needs: Iterable[Need], where: Sequence[str]) -> list[Review]:
    return [Review(verb, need.group, need.resource, namespace)
            for need in needs for verb in need.verbs for namespace in where]  # fmt: skip


def report(
    answers: Mapping[Review, bool | None], where: Sequence[str], shard_namespace: str | None = None
) -> PermissionReport:
    """Pure: the reviews' answers (None: could not ask) -> what is missing, and why."""
    missing: dict[str, str] = {}
    denied: list[Denied] = []
    unchecked: list[str] = []
    for need, places in _asked_where(where, shard_namespace):
        asked = {r: answers.get(r) for r in reviews([need], places)}
        refused = [r for r, allowed in asked.items() if allowed is False]
        if refused:
            verbs = [v for v in need.verbs if any(r.verb == v for r in refused)]
            places = sorted({r.namespace for r in refused})
            missing[need.key] = f"{WHO} may not {'/'.join(verbs)} {need.name} ({_where(places)})"
            denied.extend(Denied(verb, need.name) for verb in verbs)
        elif any(allowed is None for allowed in asked.values()):
            unchecked.append(need.key)
    return PermissionReport(missing, tuple(denied), tuple(unchecked))


def _asked_where(
    where: Sequence[str], shard_namespace: str | None
) -> list[tuple[Need, Sequence[str]]]:
    shards = [(LEASES, (shard_namespace,))] if shard_namespace is not None else []
    return [(need, where) for need in NEEDS] + shards


def _where(places: Sequence[str]) -> str:
    if places == [CLUSTER_WIDE]:
        return "cluster-wide"
    return f"in namespace{'s' if len(places) > 1 else ''} {', '.join(places)}"


# --- the adapter: SelfSubjectAccessReviews ------------------------------------------------


async def check(
    api: calls.Api, namespaces: Sequence[str], shard_namespace: str | None = None
) -> PermissionReport:
    """Ask the API server about every Need, where the operator will watch (and, with
    --shards, about the Leases in `shard_namespace`)."""
    where = scopes(namespaces)
    gate = asyncio.Semaphore(CONCURRENT_REVIEWS)
    asked = [r for need, places in _asked_where(where, shard_namespace)
             for r in reviews([need], places)]  # fmt: skip
    answers = await asyncio.gather(*(_ask(api, review, gate) for review in asked))
    return report(dict(zip(asked, answers, strict=True)), where, shard_namespace)


async def _ask(api: calls.Api, review: Review, gate: asyncio.Semaphore) -> bool | None:
    plural, _, sub = review.resource.partition("/")
    attributes = {"namespace": review.namespace, "verb": review.verb, "group": review.group,
                  "resource": plural, "subresource": sub}  # fmt: skip
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}  # fmt: skip
    async with gate:
        try:
            async with asyncio.timeout(REVIEW_TIMEOUT_S):
                result = await calls.request(api, "POST", REVIEWS, body=body)
        except Exception as exc:  # API down, SSAR itself forbidden: unknown, not denied
            log.warning("permissions.review_failed", verb=review.verb,
                        resource=review.resource, error=type(exc).__name__)  # fmt: skip
            return None
    status = result.get("status")
    return bool(status.get("allowed")) if isinstance(status, dict) else None


def publish(found: PermissionReport) -> None:
    """The startup log line and the metrics; `/healthz` reads the report from the memo."""
    telemetry.DEGRADED.labels("permission_missing").set(int(found.degraded))
    telemetry.DEGRADED.labels("permission_unchecked").set(int(bool(found.unchecked)))
    for denied in found.denied:
        telemetry.PERMISSION_MISSING.labels(denied.verb, denied.resource).set(1)
    if found.degraded:
        unwatched = [k for k in WATCHED if not found.allows(k)]
        log.warning("permissions.missing", missing=dict(found.missing), not_watched=unwatched,
                    unchecked=list(found.unchecked))  # fmt: skip
    elif found.unchecked:
        log.warning("permissions.unchecked", unchecked=list(found.unchecked))
    else:
        log.info("permissions.complete", checked=len(NEEDS))
