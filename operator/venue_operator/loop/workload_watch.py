"""The Pods, ReplicaSets, Jobs and HPAs that this replica's VenueServices name, and nothing
else, kept from the operator's own watches (kube/watches.py): a replica's memory follows the
services it owns (shards), not the size of the cluster.

Each kind is watched where the operator watches (cluster-wide, or each namespace named), as
Kopf's indexes were, but an object is kept only when its owner (the Deployment, or the
migration CronJob) is one that a loop of this replica wants (`want`). An owner wanted after
the watch listed is filled in by one list of its namespace per kind (batched: taking over
300 services is a few lists), and its loop waits for that before reading. An owner no loop
wants any more is dropped. Deployments and VenueServices stay Kopf's indexes
(cli/handlers.py): one Deployment per service, and the VenueServices are the work itself."""

from __future__ import annotations

import asyncio
import collections
import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import structlog

from venue_operator.kube import watches
from venue_operator.kube.calls import unreadable
from venue_operator.observe import cluster, scalers
from venue_operator.record import telemetry

log = structlog.get_logger(__name__)

Owner = tuple[str, str]  # (namespace, Deployment or CronJob name)
Key = tuple[str, str]  # an index key, as Kopf's were: (namespace, name)
# kube/watches.py's list_each and watch, with the connection bound
ListEach = Callable[[str, Callable[[dict[str, Any]], None]], Awaitable[str]]
Watch = Callable[[str, str, int], AsyncIterator[tuple[str, dict[str, Any]]]]
WATCH_TIMEOUT_S = 300  # the server ends a watch after this; it resumes from its last version
BATCH_S = 0.1  # owners wanted within this are filled in together
# A namespace is listed for fills at most this often: loops start (and take services over)
# spread across their interval, and a fill per few owners listed a namespace of 1,000 pods
# and ReplicaSets ~150 times in a 15 s interval (a fifth of a replica's CPU, bench/shards.py)
FILL_GAP_S = 3.0
RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)
SUMMARY: dict[str, Callable[[Mapping[str, Any]], dict[str, Any] | None]] = {
    "replicasets": cluster.replicaset_summary,
    "pods": cluster.pod_summary,
    "jobs": cluster.job_summary,
    "horizontalpodautoscalers": scalers.hpa_summary,
}
KINDS = tuple(SUMMARY)
INDEX_FIELD = {"replicasets": "deployment", "pods": "replicaset", "jobs": "cronjob",
               "horizontalpodautoscalers": "deployment"}  # fmt: skip


def owned_by(kind: str) -> str:
    """What owns a kind's objects, as wanted: a CronJob for Jobs, a Deployment otherwise."""
    return "cronjob" if kind == "jobs" else "deployment"


def owner_name(kind: str, key: str) -> str:
    """A Pod's ReplicaSet is `<deployment>-<pod-template-hash>`; the others' key is it."""
    return key.rsplit("-", 1)[0] if kind == "pods" else key


class Kept(Mapping[Key, list[dict[str, Any]]]):
    """One kind's kept objects, read as Kopf's index was: (namespace, key) -> summaries."""

    def __init__(self) -> None:
        self._objects: dict[Key, dict[str, dict[str, Any]]] = {}
        self._where: dict[str, Key] = {}  # uid -> its key
        self._by_owner: dict[Owner, set[Key]] = collections.defaultdict(set)
        self._owner_of: dict[str, Owner] = {}  # uid -> its owner
        self._changes = 0
        self._touched: dict[Owner, int] = {}  # owner -> the change that last touched it

    def version(self, owner: Owner) -> int:
        """Moves whenever an object of `owner` is kept, changed, removed or dropped."""
        return self._touched.get(owner, 0)

    def _touch(self, owner: Owner | None) -> None:
        if owner is not None:
            self._changes += 1
            self._touched[owner] = self._changes

    def __getitem__(self, key: Key) -> list[dict[str, Any]]:
        return list(self._objects[key].values())

    def __iter__(self) -> Iterator[Key]:
        return iter(self._objects)

    def __len__(self) -> int:
        return len(self._objects)

    def count(self) -> int:
        return len(self._where)

    def has(self, uid: str) -> bool:
        return uid in self._where

    def put(self, uid: str, key: Key, owner: Owner, summary: dict[str, Any]) -> None:
        self.remove(uid)
        self._objects.setdefault(key, {})[uid] = summary
        self._where[uid], self._owner_of[uid] = key, owner
        self._by_owner[owner].add(key)
        self._touch(owner)

    def remove(self, uid: str) -> None:
        key = self._where.pop(uid, None)
        self._touch(self._owner_of.pop(uid, None))
        if key is None:
            return
        found = self._objects.get(key, {})
        found.pop(uid, None)
        if not found:
            self._objects.pop(key, None)

    def drop(self, owner: Owner) -> None:
        for key in self._by_owner.pop(owner, set()):
            for uid in self._objects.pop(key, {}):
                self._where.pop(uid, None)
                self._owner_of.pop(uid, None)
        self._touched.pop(owner, None)  # a later put takes a new number, never an old one

    def clear(self, namespace: str) -> None:
        """Everything kept in `namespace` ("": everywhere), before a new list of it."""
        for owner in [o for o in self._by_owner if not namespace or o[0] == namespace]:
            self.drop(owner)


class WorkloadWatch:
    def __init__(
        self, list_each: ListEach, watch: Watch, scopes: tuple[str, ...], kinds: tuple[str, ...],
        fill_gap: float = FILL_GAP_S,
    ) -> None:  # fmt: skip
        """`scopes`: "" for cluster-wide or the namespaces watched (permissions.scopes);
        `kinds`: those the ServiceAccount may list and watch."""
        self._list_each, self._watch_from, self.scopes, self.kinds = list_each, watch, scopes, kinds
        self.kept = {kind: Kept() for kind in kinds}
        self.fill_gap = fill_gap
        for kind, kept in self.kept.items():
            telemetry.KEPT.labels(kind).set_function(kept.count)
        self._wants: dict[str, tuple[Owner, Owner | None]] = {}  # loop -> Deployment, CronJob
        self._deployments: collections.Counter[Owner] = collections.Counter()
        self._cronjobs: collections.Counter[Owner] = collections.Counter()
        self._filled: set[tuple[str, Owner]] = set()  # ("deployment" | "cronjob", owner)
        self._pending: set[tuple[str, Owner]] = set()
        self._listing: dict[tuple[str, str], set[tuple[str, Owner]]] = {}  # wanted meanwhile
        self._synced = {(kind, scope): asyncio.Event() for kind in kinds for scope in scopes}
        self._changed = asyncio.Event()  # a fill or a list finished
        self._work = asyncio.Event()  # something to fill
        self._deleted: set[str] | None = None  # uids deleted while a fill runs
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._watch(kind, scope))
                       for kind, scope in self._synced]  # fmt: skip
        self._tasks.append(asyncio.create_task(self._fill_forever()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- the loops' side ----------------------------------------------------------------

    def want(self, loop: str, namespace: str, deployment: str, cronjob: str | None) -> None:
        """This loop reads `deployment`'s objects (and `cronjob`'s Jobs) from now on."""
        wanted = ((namespace, deployment), (namespace, cronjob) if cronjob else None)
        if self._wants.get(loop) == wanted:
            return
        self.drop(loop)
        self._wants[loop] = wanted
        self._add("deployment", wanted[0])
        if wanted[1] is not None:
            self._add("cronjob", wanted[1])

    def ready(self, loop: str) -> bool:
        """Everything this loop wants is kept (listed, and filled in)."""
        deployment, cronjob = self._wants[loop]
        return (all(e.is_set() for e in self._synced.values())
                and ("deployment", deployment) in self._filled
                and (cronjob is None or ("cronjob", cronjob) in self._filled))  # fmt: skip

    async def until_ready(self, loop: str) -> None:
        while not self.ready(loop):
            await self._changed.wait()

    def drop(self, loop: str) -> None:
        """This loop no longer reads its Deployment's objects (stopped, or not owned)."""
        wanted = self._wants.pop(loop, None)
        if wanted is not None:
            self._remove("deployment", wanted[0])
            if wanted[1] is not None:
                self._remove("cronjob", wanted[1])

    def indexes(self) -> dict[str, Kept]:
        return dict(self.kept)

    def version(self, kind: str, owner: Owner) -> int:
        """Moves whenever `owner`'s objects of `kind` do (0: none kept, or not watched)."""
        kept = self.kept.get(kind)
        return 0 if kept is None else kept.version(owner)

    def _counter(self, which: str) -> collections.Counter[Owner]:
        return self._deployments if which == "deployment" else self._cronjobs

    def _add(self, which: str, owner: Owner) -> None:
        counter = self._counter(which)
        counter[owner] += 1
        if counter[owner] == 1:
            self._pending.add((which, owner))
            for meanwhile in self._listing.values():
                meanwhile.add((which, owner))
            self._work.set()

    def _remove(self, which: str, owner: Owner) -> None:
        counter = self._counter(which)
        counter[owner] -= 1
        if counter[owner] > 0:
            return
        del counter[owner]
        self._filled.discard((which, owner))
        self._pending.discard((which, owner))
        for kind, kept in self.kept.items():
            if owned_by(kind) == which:
                kept.drop(owner)

    # --- the watches' side --------------------------------------------------------------

    def _apply(self, kind: str, kind_of_event: str, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        uid, namespace = str(meta.get("uid") or ""), str(meta.get("namespace") or "")
        kept = self.kept[kind]
        if kind_of_event == "DELETED":
            kept.remove(uid)
            if self._deleted is not None:
                self._deleted.add(uid)
            return
        placed = self._place(kind, namespace, obj)
        if placed is None:
            kept.remove(uid)  # not ours (any more)
        else:
            kept.put(uid, *placed)

    def _place(
        self, kind: str, namespace: str, obj: Mapping[str, Any]
    ) -> tuple[Key, Owner, dict[str, Any]] | None:
        """Where a wanted object is kept: its index key, owner and summary; None if unwanted."""
        summary = SUMMARY[kind](obj)
        key = summary.get(INDEX_FIELD[kind]) if summary else None
        if summary is None or not key:
            return None
        owner = (namespace, owner_name(kind, str(key)))
        if owner not in self._counter(owned_by(kind)):
            return None
        return (namespace, str(key)), owner, summary

    async def _watch(self, kind: str, scope: str) -> None:
        """List, then watch from the list; again from the list when the watch is too old,
        after a pause when a call fails."""
        where, failures = watches.path(kind, scope), 0
        while True:
            try:
                version = await self._list(kind, scope, where)
                failures = 0
                while True:
                    async for event, obj in self._watch_from(where, version, WATCH_TIMEOUT_S):
                        version = str((obj.get("metadata") or {}).get("resourceVersion")
                                      or version)  # fmt: skip
                        if event != "BOOKMARK":
                            self._apply(kind, event, obj)
            except watches.Gone:
                log.info("workload_watch.relist", kind=kind, scope=scope or "cluster")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                pause = RETRY_S[min(failures, len(RETRY_S) - 1)] * random.uniform(0.8, 1.2)
                failures += 1
                log.warning("workload_watch.failed", kind=kind, scope=scope or "cluster",
                            error=unreadable(exc), retry_in_s=round(pause, 1))  # fmt: skip
                await asyncio.sleep(pause)

    async def _list(self, kind: str, scope: str, where: str) -> str:
        """The whole list, kept by what is wanted now; owners first wanted while it ran
        are filled in after it."""
        listed: list[tuple[str, Key, Owner, dict[str, Any]]] = []
        meanwhile: set[tuple[str, Owner]] = set()
        self._listing[(kind, scope)] = meanwhile

        def keep(obj: dict[str, Any]) -> None:
            meta = obj.get("metadata") or {}
            placed = self._place(kind, str(meta.get("namespace") or ""), obj)
            if placed is not None:
                listed.append((str(meta.get("uid") or ""), *placed))

        try:
            version = await self._list_each(where, keep)
        finally:
            del self._listing[(kind, scope)]
            self._notify()
        kept, wanted = self.kept[kind], self._counter(owned_by(kind))
        kept.clear(scope)
        for uid, key, owner, summary in listed:
            if owner in wanted:  # a loop may have let go of it while the list ran
                kept.put(uid, key, owner, summary)
        self._filled -= meanwhile
        self._pending |= {m for m in meanwhile if m[1] in self._counter(m[0])}
        self._work.set()
        self._synced[(kind, scope)].set()
        self._notify()
        return version

    async def _fill_forever(self) -> None:
        clock = asyncio.get_running_loop().time
        filled_at: dict[str, float] = {}  # namespace -> when a fill last listed it
        while True:
            await self._work.wait()
            await asyncio.sleep(BATCH_S)
            while self._listing or not all(e.is_set() for e in self._synced.values()):
                await self._changed.wait()  # a fill beside a list could be cleared by it
            waiting = {owner[0] for _, owner in self._pending}
            gap = self.fill_gap
            due = {ns for ns in waiting if clock() - filled_at.get(ns, -gap) >= gap}
            if not due:
                if not waiting:
                    self._work.clear()
                else:
                    await asyncio.sleep(min(filled_at[ns] for ns in waiting) + gap - clock())
                continue
            batch = {p for p in self._pending if p[1][0] in due}
            self._pending -= batch
            if not self._pending:
                self._work.clear()
            filled_at.update(dict.fromkeys(due, clock()))
            try:
                await self._fill(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("workload_watch.fill_failed", owners=len(batch),
                            error=unreadable(exc))  # fmt: skip
                self._pending |= batch
                self._work.set()
                await asyncio.sleep(RETRY_S[0])

    async def _fill(self, batch: set[tuple[str, Owner]]) -> None:
        """One list per kind of each namespace in `batch`, the kinds at once (a takeover at
        5,000 over 4 waited ~8 s for a namespace's 5,000 Pods and then its 5,000 ReplicaSets,
        page after page), keeping what the batch's owners own and no watch event has already
        said (newer) or deleted meanwhile."""
        self._deleted = deleted = set[str]()
        try:
            for namespace in sorted({owner[0] for _, owner in batch}):
                listed = await asyncio.gather(*(
                    self._list_each(watches.path(kind, namespace), functools.partial(
                        self._fill_one, kind, batch=batch, deleted=deleted))
                    for kind in self.kinds
                ), return_exceptions=True)  # fmt: skip
                failed = next((e for e in listed if isinstance(e, BaseException)), None)
                if failed is not None:  # every list has ended: none keeps objects after this
                    raise failed
        finally:
            self._deleted = None
        self._filled |= {b for b in batch if b[1] in self._counter(b[0])}
        self._notify()

    def _fill_one(
        self, kind: str, obj: dict[str, Any], *, batch: set[tuple[str, Owner]], deleted: set[str]
    ) -> None:
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        kept = self.kept[kind]
        if kept.has(uid) or uid in deleted:
            return
        placed = self._place(kind, str(meta.get("namespace") or ""), obj)
        if placed is not None and (owned_by(kind), placed[1]) in batch:
            kept.put(uid, *placed)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
