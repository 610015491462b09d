"""`venue-operator report`'s graphs without a cluster: the PromQL each graph asks is the
assessment's own (the spec's override when it has one), scoped to the namespace and in
the check's unit; the PNG gets the titled heading and the Markdown says the query."""

from __future__ import annotations

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
) -> tuple[list[report.Graph], list[str]]:
    """The graphs written and the PromQL asked (Prometheus answers from a table)."""
    asked: list[str] = []

    async def query_range(
        endpoints: object, url: str, promql: str, start: datetime, end: datetime, step: int
    ) -> list[tuple[datetime, float]]:
        asked.append(promql)
        return [(T0 + timedelta(seconds=s), 19.0 if 0 <= s < 20 else 0.2) for s in range(-40, 80)]

    monkeypatch.setattr(report, "query_range", query_range)
    source = report.Source(prometheus_url="http://prometheus.monitoring:9090")
    start, end = figures.window(INCIDENT, T0 + timedelta(hours=1))
    written, note = await report._graphs("ns", "venue-service", venue, INCIDENT, source, out,
                                         start, end)  # fmt: skip
    assert note is None
    return written, asked


async def test_the_graph_asks_the_spec_override_scoped_to_the_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue = spec(queries={"errorRate": OVERRIDE})
    written, asked = await graphs_of(venue, tmp_path, monkeypatch)
    (promql,) = asked
    assert promql.startswith("100 * (") and 'code=~"5.."' in promql and "[2m]" in promql
    assert 'namespace="ns"' in promql and "status_code" not in promql  # not the built-in
    assert [(g.file, g.query) for g in written] == [("error_rate.png", promql)]
    with Image.open(tmp_path / "error_rate.png") as image:
        assert image.size == (WIDTH_IN * DPI, HEIGHT_IN * DPI)
        title = image.info["Title"]
    graph = figures.graphs(INCIDENT, venue)[0]
    assert title == figures.heading(graph, "ns", "venue-service", INCIDENT)
    for said in ("ns/venue-service", INCIDENT.id, "2026-11-27"):
        assert said in title


async def test_without_an_override_the_graph_asks_the_built_in_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, asked = await graphs_of(spec(rateWindow="30s"), tmp_path, monkeypatch)
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
