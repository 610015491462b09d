"""The shared metrics snapshot: one read for many services, refreshed ahead of need."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from venue_operator.evaluation import MetricsBatcher
from venue_operator.observations import MetricReadings, Reading
from venue_operator.observe.prometheus import PrometheusReader, Target


class CountingReader(PrometheusReader):
    """Answers every target with the number of reads so far, after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay, self.reads = delay, 0

    async def read(self, targets: Sequence[Target]) -> dict[str, MetricReadings]:
        self.reads += 1
        seen = self.reads
        await asyncio.sleep(self.delay)
        return {t.key: MetricReadings(request_rate=Reading.of(seen)) for t in targets}


def target(name: str) -> Target:
    return Target(key=f"prod/{name}", url="http://p", labels={"service": name})


async def test_many_services_share_one_read() -> None:
    reader = CountingReader(delay=0.05)
    batcher = MetricsBatcher(reader)
    await batcher.get(target("a"), max_age=10)  # registers a; one read
    results = await asyncio.gather(*(batcher.get(target("a"), 10) for _ in range(50)))
    assert reader.reads == 1 and {r.request_rate.value for r in results} == {1}


async def test_a_snapshot_near_its_age_limit_is_served_and_refreshed_behind() -> None:
    reader = CountingReader(delay=0.1)
    batcher = MetricsBatcher(reader)
    await batcher.get(target("a"), max_age=1.0)  # the read took 0.1 s
    assert reader.reads == 1
    await asyncio.sleep(0.85)  # age 0.95: within 1.0, but a read (0.1 s) would end past it
    served = await batcher.get(target("a"), max_age=1.0)
    assert served.request_rate.value == 1, "served at once from the current snapshot"
    await asyncio.sleep(0)  # let the background task take its first step
    assert reader.reads == 2, "and a refresh started behind it"
    assert batcher._inflight is not None
    await asyncio.wait_for(batcher._inflight, 1)  # that refresh, however long it takes
    assert (await batcher.get(target("a"), max_age=1.0)).request_rate.value == 2


async def test_a_stale_snapshot_is_never_served() -> None:
    reader = CountingReader(delay=0.01)
    batcher = MetricsBatcher(reader)
    await batcher.get(target("a"), max_age=0.05)
    await asyncio.sleep(0.1)
    assert (await batcher.get(target("a"), max_age=0.05)).request_rate.value == 2
