"""The workload watch keeps the Pods, ReplicaSets, Jobs and HPAs of the Deployments its loops
want, and nothing else (loop/workload_watch.py), driven through its list and watch ports by
a cluster of plain objects: what the API server would list and send."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from venue_operator.kube import watches
from venue_operator.loop.workload_watch import WorkloadWatch
from venue_operator.record import telemetry

NS = "shop"


def meta(name: str, uid: str, owner: tuple[str, str] | None = None, **labels: str) -> Any:
    refs = [{"kind": owner[0], "name": owner[1], "controller": True}] if owner else []
    return {"name": name, "namespace": NS, "uid": uid, "labels": labels,
            "ownerReferences": refs, "resourceVersion": "1"}  # fmt: skip


def replicaset(deployment: str, digest: str) -> dict[str, Any]:
    name = f"{deployment}-{digest}"
    return {"metadata": meta(name, f"rs-{name}", ("Deployment", deployment),
                             **{"pod-template-hash": digest})}  # fmt: skip


def pod(deployment: str, digest: str, n: int) -> dict[str, Any]:
    rs = f"{deployment}-{digest}"
    return {"metadata": meta(f"{rs}-{n}", f"pod-{rs}-{n}", ("ReplicaSet", rs),
                             **{"pod-template-hash": digest})}  # fmt: skip


def job(cronjob: str, n: int) -> dict[str, Any]:
    return {"metadata": meta(f"{cronjob}-{n}", f"job-{cronjob}-{n}", ("CronJob", cronjob)),
            "status": {"active": 1}}  # fmt: skip


class Cluster:
    """Objects by kind, listed whole; changes sent to the kind's open watch."""

    def __init__(self, *objects: tuple[str, dict[str, Any]]) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in watches.PATHS}
        for kind, obj in objects:
            self.objects[kind][obj["metadata"]["uid"]] = obj
        self.queues: dict[str, asyncio.Queue[tuple[str, dict[str, Any]]]] = {}
        self.before_listing: Callable[[str], Awaitable[None]] | None = None
        self.lists: list[str] = []

    def kind(self, where: str) -> str:
        return next(k for k in watches.PATHS if where.endswith(watches.PATHS[k][1]))

    async def list_each(self, where: str, keep: Callable[[dict[str, Any]], None]) -> str:
        self.lists.append(where)
        if self.before_listing is not None:
            await self.before_listing(where)
        for obj in list(self.objects[self.kind(where)].values()):
            keep(obj)
        return "1"

    async def watch(
        self, where: str, version: str, seconds: int
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        queue = self.queues.setdefault(self.kind(where), asyncio.Queue())
        while True:
            yield await queue.get()

    async def send(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        uid = obj["metadata"]["uid"]
        if event == "DELETED":
            self.objects[kind].pop(uid, None)
        else:
            self.objects[kind][uid] = obj
        await self.queues.setdefault(kind, asyncio.Queue()).put((event, obj))
        for _ in range(5):  # let the watch task take it
            await asyncio.sleep(0)


def cluster_of_two() -> Cluster:
    """Deployments `web` (ours) and `batch` (no VenueService names it), two pods each."""
    return Cluster(
        ("replicasets", replicaset("web", "aaa")), ("pods", pod("web", "aaa", 1)),
        ("pods", pod("web", "aaa", 2)), ("replicasets", replicaset("batch", "bbb")),
        ("pods", pod("batch", "bbb", 1)), ("pods", pod("batch", "bbb", 2)),
        ("jobs", job("migrate", 1)), ("jobs", job("nightly", 1)),
    )  # fmt: skip


async def started(cluster: Cluster, fill_gap: float = 0.0) -> WorkloadWatch:
    watch = WorkloadWatch(cluster.list_each, cluster.watch, ("",),
                          ("replicasets", "pods", "jobs"), fill_gap=fill_gap)  # fmt: skip
    watch.start()
    return watch


async def ready(watch: WorkloadWatch, loop: str) -> None:
    async with asyncio.timeout(5):
        await watch.until_ready(loop)


def pods_of(watch: WorkloadWatch, rs: str) -> set[str]:
    return {p["name"] for p in watch.indexes()["pods"].get((NS, rs), [])}


def kept_count(kind: str) -> float:
    value = telemetry.KEPT.labels(kind)._value.get()  # set_function's answer
    return float(value)


async def test_only_the_objects_of_a_wanted_deployment_are_kept() -> None:
    cluster = cluster_of_two()
    watch = await started(cluster)
    try:
        watch.want("shop/web", NS, "web", "migrate")
        await ready(watch, "shop/web")
        indexes = watch.indexes()
        assert pods_of(watch, "web-aaa") == {"web-aaa-1", "web-aaa-2"}
        assert pods_of(watch, "batch-bbb") == set()
        assert [r["name"] for r in indexes["replicasets"].get((NS, "web"), [])] == ["web-aaa"]
        assert (NS, "batch") not in indexes["replicasets"]
        assert [j["name"] for j in indexes["jobs"].get((NS, "migrate"), [])] == ["migrate-1"]
        assert (NS, "nightly") not in indexes["jobs"]
        assert watch.kept["pods"].count() == 2
    finally:
        await watch.stop()


async def test_changes_after_the_list_update_what_is_kept_and_others_are_not_taken() -> None:
    cluster = cluster_of_two()
    watch = await started(cluster)
    try:
        watch.want("shop/web", NS, "web", None)
        await ready(watch, "shop/web")
        await cluster.send("pods", "ADDED", pod("web", "aaa", 3))
        await cluster.send("pods", "ADDED", pod("batch", "bbb", 3))
        await cluster.send("pods", "DELETED", pod("web", "aaa", 1))
        assert pods_of(watch, "web-aaa") == {"web-aaa-2", "web-aaa-3"}
        assert watch.kept["pods"].count() == 2
    finally:
        await watch.stop()


async def test_a_deployment_wanted_later_is_filled_in_without_resurrecting_a_deleted_pod() -> None:
    cluster = cluster_of_two()
    watch = await started(cluster)
    try:
        watch.want("shop/web", NS, "web", None)
        await ready(watch, "shop/web")
        lists = len(cluster.lists)
        listed_pod = pod("batch", "bbb", 1)

        async def delete_during_the_fill(where: str) -> None:
            if where.endswith("/pods") and "/namespaces/" in where:
                cluster.before_listing = None
                listed = dict(cluster.objects["pods"])  # the fill lists what was there...
                await cluster.send("pods", "DELETED", listed_pod)  # ...deleted meanwhile
                cluster.objects["pods"] = listed

        cluster.before_listing = delete_during_the_fill
        watch.want("shop/batch", NS, "batch", None)
        assert not watch.ready("shop/batch")
        await ready(watch, "shop/batch")
        assert pods_of(watch, "batch-bbb") == {"batch-bbb-2"}
        fills = cluster.lists[lists:]
        assert fills and all(f"/namespaces/{NS}/" in where for where in fills)
    finally:
        await watch.stop()


async def test_a_deployment_no_loop_wants_is_forgotten() -> None:
    cluster = cluster_of_two()
    watch = await started(cluster)
    try:
        watch.want("shop/web", NS, "web", "migrate")
        watch.want("shop/web-again", NS, "web", None)  # a second VenueService naming it
        await ready(watch, "shop/web")
        watch.drop("shop/web")
        assert pods_of(watch, "web-aaa") == {"web-aaa-1", "web-aaa-2"}  # still wanted
        assert watch.indexes()["jobs"].get((NS, "migrate")) is None
        watch.drop("shop/web-again")
        assert watch.kept["pods"].count() == 0
        assert watch.kept["replicasets"].count() == 0
    finally:
        await watch.stop()


async def test_nothing_is_ready_before_every_kind_is_listed() -> None:
    cluster = cluster_of_two()
    gate = asyncio.Event()

    async def slow(where: str) -> None:
        await gate.wait()

    cluster.before_listing = slow
    watch = await started(cluster)
    try:
        watch.want("shop/web", NS, "web", None)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await watch.until_ready("shop/web")
        gate.set()
        await ready(watch, "shop/web")
        assert pods_of(watch, "web-aaa") == {"web-aaa-1", "web-aaa-2"}
    finally:
        await watch.stop()


async def test_a_namespace_is_listed_for_fills_at_most_once_a_gap() -> None:
    """Loops start (and take services over) spread across their interval: a fill per few
    owners listed the whole namespace each time; owners wanted within the gap wait for it."""
    cluster = cluster_of_two()
    watch = await started(cluster, fill_gap=60)
    try:
        watch.want("shop/web", NS, "web", None)
        await ready(watch, "shop/web")
        lists = len(cluster.lists)
        watch.want("shop/batch", NS, "batch", None)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await watch.until_ready("shop/batch")
        assert len(cluster.lists) == lists  # not listed again within the gap
    finally:
        await watch.stop()


async def test_a_fill_lists_a_namespaces_kinds_at_once_and_fails_whole() -> None:
    """A takeover's fill waited for a namespace's Pods, then its ReplicaSets, page after
    page: the kinds are listed at once; one list failing fails the fill (asked again), once
    every list of it has ended."""
    cluster = cluster_of_two()
    watch = await started(cluster)
    try:
        watch.want("shop/web", NS, "web", None)
        await ready(watch, "shop/web")
        listing: set[str] = set()
        most = [0]
        failed = [False]

        async def overlapping(where: str) -> None:
            listing.add(where)
            most[0] = max(most[0], len(listing))
            await asyncio.sleep(0.05)
            listing.discard(where)
            if where.endswith("/jobs") and not failed[0]:
                failed[0] = True
                raise OSError("the API server went away")

        cluster.before_listing = overlapping
        watch.want("shop/batch", NS, "batch", None)
        await ready(watch, "shop/batch")
        assert most[0] == len(watch.kinds)  # the namespace's kinds, listed together
        assert failed[0] and pods_of(watch, "batch-bbb") == {"batch-bbb-1", "batch-bbb-2"}
    finally:
        await watch.stop()


async def test_an_owners_version_moves_with_its_objects_and_no_others() -> None:
    """What an idle rollout watch's tick is skipped by (loop/workload.py guard_marker): a
    ReplicaSet of this Deployment kept, changed or deleted moves its version; another's not."""
    cluster = cluster_of_two()
    watch = await started(cluster)
    try:
        watch.want("shop/web", NS, "web", None)
        watch.want("shop/batch", NS, "batch", None)
        await ready(watch, "shop/web")
        await ready(watch, "shop/batch")
        web, batch = (NS, "web"), (NS, "batch")
        before = watch.version("replicasets", web)
        assert before and watch.version("replicasets", batch)
        await cluster.send("replicasets", "ADDED", replicaset("batch", "ccc"))
        assert watch.version("replicasets", web) == before  # another Deployment's rollout
        await cluster.send("replicasets", "ADDED", replicaset("web", "ddd"))  # web's rollout
        moved = watch.version("replicasets", web)
        assert moved > before
        await cluster.send("replicasets", "DELETED", replicaset("web", "aaa"))
        assert watch.version("replicasets", web) > moved
        watch.drop("shop/web")
        assert watch.version("replicasets", web) == 0 and watch.version("jobs", web) == 0
    finally:
        await watch.stop()


async def test_an_owner_let_go_of_while_the_list_runs_is_not_kept_by_it() -> None:
    """A list hands its pages out with awaits between them: a loop that stops meanwhile (or
    whose service another shard took over) must not find its pods kept once the list ends."""
    cluster = cluster_of_two()
    handed_out, gate = asyncio.Event(), asyncio.Event()

    async def paged(where: str, keep: Callable[[dict[str, Any]], None]) -> str:
        version = await cluster.list_each(where, keep)  # every page handed out...
        if where.endswith("/pods") and not gate.is_set():
            handed_out.set()
            await gate.wait()  # ...and the list not ended yet
        return version

    watch = WorkloadWatch(paged, cluster.watch, ("",), ("replicasets", "pods", "jobs"),
                          fill_gap=0)  # fmt: skip
    watch.start()
    try:
        watch.want("shop/web", NS, "web", None)  # wanted as the list hands web's pods out
        async with asyncio.timeout(5):
            await handed_out.wait()
        watch.drop("shop/web")
        watch.want("shop/batch", NS, "batch", None)
        gate.set()
        await ready(watch, "shop/batch")
        assert pods_of(watch, "web-aaa") == set()
        assert pods_of(watch, "batch-bbb") == {"batch-bbb-1", "batch-bbb-2"}
        assert watch.kept["pods"].count() == 2
    finally:
        await watch.stop()
