"""The shared metrics snapshot: one read for many services, refreshed ahead of need."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from venue_operator.loop.evaluation import metrics_max_age
from venue_operator.model.observations import MetricReadings, Reading
from venue_operator.observe.batcher import MetricsBatcher
from venue_operator.observe.prometheus import PrometheusReader, Target
from venue_operator.record import loop_lag


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


def target(name: str, url: str = "http://p", window: str = "1m") -> Target:
    return Target(key=f"prod/{name}", url=url, labels={"service": name}, window=window)


async def test_many_services_share_one_read() -> None:
    reader = CountingReader(delay=0.05)
    batcher = MetricsBatcher(reader)
    results = await asyncio.gather(*(batcher.get(target(f"s{i}"), 10) for i in range(50)))
    assert reader.reads == 1 and {r.request_rate.value for r in results} == {1}


async def test_a_cycle_never_judges_a_read_twice() -> None:
    """A service's next cycle waits for a read it has not been served, however fresh the one
    it has: two cycles counting one reading would confirm a breach on one observation."""
    reader = CountingReader(delay=0.05)
    batcher = MetricsBatcher(reader)
    assert (await batcher.get(target("a"), max_age=60)).request_rate.value == 1
    assert (await batcher.get(target("a"), max_age=60)).request_rate.value == 2
    assert reader.reads == 2


async def test_a_snapshot_near_its_age_limit_is_served_and_refreshed_behind() -> None:
    reader = CountingReader(delay=0.1)
    batcher = MetricsBatcher(reader)
    await asyncio.gather(batcher.get(target("a"), 1.0), batcher.get(target("b"), 1.0))
    await batcher.get(target("a"), max_age=1.0)  # a's next cycle: read 2, which took 0.1 s
    assert reader.reads == 2
    await asyncio.sleep(0.85)  # age 0.95: within 1.0, but a read (0.1 s) would end past it
    served = await batcher.get(target("b"), max_age=1.0)
    assert served.request_rate.value == 2, "served at once from the current snapshot"
    await asyncio.sleep(0)  # let the background task take its first step
    assert reader.reads == 3, "and a refresh started behind it"
    refresh = batcher._refreshes["http://p"].task
    assert refresh is not None
    await asyncio.wait_for(refresh, 1)  # that refresh, however long it takes
    assert (await batcher.get(target("a"), max_age=1.0)).request_rate.value == 3


async def test_a_stale_snapshot_is_never_served() -> None:
    reader = CountingReader(delay=0.01)
    batcher = MetricsBatcher(reader)
    await batcher.get(target("a"), max_age=0.05)
    stale = reader.reads  # under load the first get may also start a refresh behind it
    await asyncio.sleep(0.1)  # every read started so far is older than max_age now
    served = (await batcher.get(target("a"), max_age=0.05)).request_rate.value
    assert served is not None and served > stale, f"read {served} of {reader.reads} served"


async def test_a_prometheus_slower_than_the_age_asked_is_read_back_to_back_without_waits() -> None:
    """Reads of 0.5 s against a max age of 0.2: a snapshot is 0.5 s old when it lands, so
    the bound is twice a read (observe/batcher.py `oldest`), not a wait for a read that would
    be too old again once read."""
    reader = CountingReader(delay=0.5)
    batcher = MetricsBatcher(reader)
    first = await asyncio.gather(batcher.get(target("a"), 0.2), batcher.get(target("b"), 0.2))
    assert {r.request_rate.value for r in first} == {1}, "the read waited for, 0.5 s old"
    again = await batcher.get(target("a"), max_age=0.2)
    assert again.request_rate.value == 2, "a's next cycle: the read running behind, not 1"
    await asyncio.sleep(0.2)  # read 2 is about 0.7 s old: within twice a read
    served = await batcher.get(target("b"), max_age=0.2)
    assert served.request_rate.value == 2, "b's next cycle served read 2 at once"


async def test_a_spec_edit_is_read_afresh() -> None:
    reader = CountingReader(delay=0)
    batcher = MetricsBatcher(reader)
    assert (await batcher.get(target("a"), max_age=60)).request_rate.value == 1
    edited = await batcher.get(target("a", window="5m"), max_age=60)
    assert edited.request_rate.value == 2, "not the readings of the old rateWindow"
    assert batcher.snapshot["prod/a"][1] == target("a", window="5m")


class GatedReader(PrometheusReader):
    """Reads instantly, except that a read of a URL in `gated` waits for its gate; records
    what each read was asked for."""

    def __init__(self, *gated: str) -> None:
        super().__init__()
        self.gates = {url: asyncio.Event() for url in gated}
        self.entered = asyncio.Event()
        self.asked: list[list[str]] = []

    async def read(self, targets: Sequence[Target]) -> dict[str, MetricReadings]:
        self.asked.append([t.key for t in targets])
        self.entered.set()
        for t in targets:
            if t.url in self.gates:
                await self.gates[t.url].wait()
        return {t.key: MetricReadings(request_rate=Reading.of(1)) for t in targets}


async def test_a_service_forgotten_during_a_read_leaves_every_batch() -> None:
    reader = GatedReader("http://p")
    batcher = MetricsBatcher(reader)
    first = asyncio.create_task(batcher.get(target("a"), max_age=60))
    await reader.entered.wait()
    batcher.forget("prod/a")  # its loop ended (deleted) while the read was in flight
    reader.gates["http://p"].set()
    await first
    assert "prod/a" not in batcher.snapshot, "the read in flight did not put it back"
    await batcher.get(target("b"), max_age=60)
    assert reader.asked[-1] == ["prod/b"]


async def test_a_hung_url_delays_only_its_own_services() -> None:
    reader = GatedReader("http://slow")
    batcher = MetricsBatcher(reader, wait=0.3)
    slow = asyncio.create_task(batcher.get(target("s", "http://slow"), max_age=60))
    await reader.entered.wait()
    try:
        fast = await asyncio.wait_for(batcher.get(target("f", "http://fast"), max_age=60), 1)
        assert fast.request_rate.value == 1
        assert reader.asked[-1] == ["prod/f"], "a batch per URL"
        waited = await asyncio.wait_for(slow, 2)  # bounded by `wait`, not by the hung read
        assert waited.request_rate.unknown_reason == (
            "metrics not read within 0.3s: Prometheus is slow"
        )
    finally:
        reader.gates["http://slow"].set()


async def test_a_read_outlasting_its_wait_on_a_lagging_loop_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Prometheus answered `up` in 5 ms while starved replicas said it was slow: the wait ran
    out because their own loop ran late (record/loop_lag.py measured it)."""
    monkeypatch.setattr(loop_lag, "lag", lambda: 2.4)
    reader = GatedReader("http://p")
    batcher = MetricsBatcher(reader, wait=0.3)
    try:
        waited = await asyncio.wait_for(batcher.get(target("a"), max_age=60), 2)
        assert waited.request_rate.unknown_reason == (
            "metrics not read within 0.3s: this replica's event loop ran 2.4s late (short of CPU)"
        )
    finally:
        reader.gates["http://p"].set()


async def test_a_service_registered_during_a_refresh_gets_its_readings() -> None:
    """The refresh in flight predates the newcomer; the next one includes it, and its
    readings are served (they were dropped as "metrics not read")."""
    reader = CountingReader(delay=0.05)
    batcher = MetricsBatcher(reader)
    first = asyncio.create_task(batcher.get(target("a"), max_age=10))
    await asyncio.sleep(0.01)  # a's refresh is in flight
    late = await batcher.get(target("b"), max_age=10)
    assert late.request_rate.value is not None, late.request_rate.unknown_reason
    assert (await first).request_rate.value is not None


async def test_a_service_expected_before_its_first_cycle_finds_its_read_done() -> None:
    """A loop starting (a takeover's) registers its target: a read begins for it (and the
    others expected with it) at once, and its first cycle is served that read, no other."""
    reader = CountingReader(delay=0.05)
    batcher = MetricsBatcher(reader)
    batcher.expect(target("a"))
    batcher.expect(target("b"))
    batcher.expect(target("a"))  # already expected: no second read
    refresh = batcher._refreshes["http://p"].task
    assert refresh is not None
    await asyncio.wait_for(refresh, 1)
    served = await asyncio.gather(batcher.get(target("a"), 10), batcher.get(target("b"), 10))
    assert [r.request_rate.value for r in served] == [1, 1] and reader.reads == 1


@pytest.mark.parametrize(
    ("flag", "expected"), [(None, 7.5), (2.5, 2.5), (15.0, 15.0), (60.0, 15.0)]
)
def test_the_metrics_max_age_is_half_the_interval_unless_set_and_never_over_it(
    flag: float | None, expected: float
) -> None:
    assert metrics_max_age(15.0, flag) == expected
