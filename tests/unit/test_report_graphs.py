"""`venue-operator report`'s graphs without a cluster: the PromQL each graph asks is the
assessment's own (the spec's override when it has one), scoped to the namespace and in
the check's unit; the PNG gets the titled heading and the Markdown says the query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.unit.test_postmortem import INCIDENT, T0
from venue_operator.cli import report
from venue_operator.incident import figures
from venue_operator.incident.graphs import DPI, HEIGHT_IN, WIDTH_IN
from venue_operator.model.spec import VenueServiceSpec

OVERRIDE = (
    'sum(rate(http_requests_total{$selector,code=~"5.."}[2m]))'
    " / sum(rate(http_requests_total{$selector}[2m]))"
)


def spec(**prometheus: Any) -> VenueServiceSpec:
    return VenueServiceSpec.model_validate(
        {"deployment": {"name": "venue-service"}, "prometheus": prometheus}
    )


async def graphs_of(
    venue: VenueServiceSpec, out: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[report.Graph], list[str], list[str]]:
    """The graphs written, the PromQL asked and the PNGs' titles."""
    asked: list[str] = []
    titles: list[str] = []
    real_draw = report.draw

    async def query_range(
        endpoints: object, url: str, promql: str, start: datetime, end: datetime, step: int
    ) -> list[tuple[datetime, float]]:
        asked.append(promql)
        return [(T0 + timedelta(seconds=s), 19.0 if 0 <= s < 20 else 0.2) for s in range(-40, 80)]

    def draw(*args: Any) -> None:
        titles.append(args[-1])
        real_draw(*args)

    monkeypatch.setattr(report, "query_range", query_range)
    monkeypatch.setattr(report, "draw", draw)
    source = report.Source(prometheus_url="http://prometheus.monitoring:9090")
    start, end = figures.window(INCIDENT, T0 + timedelta(hours=1))
    written, note = await report._graphs("ns", "venue-service", venue, INCIDENT, source, out,
                                         start, end)  # fmt: skip
    assert note is None
    return written, asked, titles


async def test_the_graph_asks_the_spec_override_scoped_to_the_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue = spec(queries={"errorRate": OVERRIDE})
    written, asked, titles = await graphs_of(venue, tmp_path, monkeypatch)
    (promql,) = asked
    assert promql.startswith("100 * (") and 'code=~"5.."' in promql and "[2m]" in promql
    assert 'namespace="ns"' in promql and "status_code" not in promql  # not the built-in
    assert [(g.file, g.query) for g in written] == [("error_rate.png", promql)]
    assert titles == [figures.heading(figures.graphs(INCIDENT, venue)[0], "ns", "venue-service",
                                      INCIDENT)]  # fmt: skip
    with Image.open(tmp_path / "error_rate.png") as image:
        assert image.size == (WIDTH_IN * DPI, HEIGHT_IN * DPI)
        assert image.info["Title"] == titles[0]
    for said in ("ns/venue-service", INCIDENT.id, "2026-11-27"):
        assert said in titles[0]


async def test_without_an_override_the_graph_asks_the_built_in_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, asked, _ = await graphs_of(spec(rateWindow="30s"), tmp_path, monkeypatch)
    (promql,) = asked
    failing = (
        'sum by (namespace,service) (rate(http_requests_total{namespace="ns",'
        'service="venue-service",status_code=~"5.."}[30s]))'
    )
    requests = (
        'sum by (namespace,service) (rate(http_requests_total{namespace="ns",'
        'service="venue-service"}[30s]))'
    )
    # a share as the assessment divides it: 0 when no request failed, not a gap
    assert promql == f"100 * (({failing} or 0 * {requests}) / {requests})"


def test_a_graph_per_breached_check_each_asked_in_its_unit() -> None:
    p99 = figures.GraphSpec("p99_latency", "P99", "ms", "p99_latency", 1000,
                            spec().thresholds.p99_latency_ms)  # fmt: skip
    pending = figures.GraphSpec("pool_pending", "Waiting", "", "pool_pending", 1,
                                spec().thresholds.pool_pending)  # fmt: skip
    graphs: Sequence[figures.GraphSpec] = (p99, pending)
    assert [figures.promql(g, "q") for g in graphs] == ["1000 * (q)", "q"]
