"""What the evaluation sends and fetches for a tenant's spec (#12): overrides and matchLabels
confined to the VenueService's namespace, refused URLs never fetched."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.names import static_resolver
from venue_operator.loop.evaluation import Context, evaluate
from venue_operator.model.observations import MetricReadings, ProbeFailure, WorkloadState
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.model.status import VenueServiceStatus
from venue_operator.observe.batcher import MetricsBatcher
from venue_operator.observe.http import Dialer
from venue_operator.observe.metrics_source import metrics_target
from venue_operator.observe.prometheus import PrometheusReader, Target
from venue_operator.observe.targets import ProbeTargets
from venue_operator.tenancy.policy import Tenancy
from venue_operator.tenancy.promql_scope import EXPORTED

OWN_PROMETHEUS = "http://prometheus.monitoring.svc:9090"


def spec(**prometheus: Any) -> VenueServiceSpec:
    return VenueServiceSpec.model_validate({"deployment": {"name": "venue"},
                                            "prometheus": prometheus})  # fmt: skip


def test_an_override_written_for_another_namespace_is_sent_for_its_own() -> None:
    query = 'sum(rate(http_requests_total{namespace="victim",service="venue"}[1m]))'
    admitted = metrics_target(spec(queries={"errorRate": query}), "mine", "vs", OWN_PROMETHEUS)
    sent = admitted.target.overrides["error_rate"]
    assert 'namespace="mine"' in sent and "victim" not in sent
    assert admitted.refused is None and not admitted.overrides_refused


def test_selector_placeholder_and_defaults_carry_the_own_namespace() -> None:
    admitted = metrics_target(spec(matchLabels={"service": "venue"},
                                   queries={"p99Latency": "max(latency{$selector})"}),
                              "mine", "vs", OWN_PROMETHEUS)  # fmt: skip
    assert admitted.target.labels == {"service": "venue", "namespace": "mine"}
    pins = ",".join(f'{label}=~"|mine"' for label in EXPORTED)
    assert admitted.target.overrides["p99_latency"] == (
        f'max(latency{{service="venue",namespace="mine",{pins}}})'
    )


def test_an_override_reading_what_an_exporter_labelled_with_another_namespace_is_refused() -> None:
    query = 'max(shared_info{exported_namespace="victim"})'
    admitted = metrics_target(spec(queries={"errorRate": query}), "mine", "vs", OWN_PROMETHEUS)
    assert "error_rate" not in admitted.target.overrides
    assert admitted.overrides_refused["error_rate"].startswith(
        'override errorRate refused: exported_namespace="victim" refused: it selects series'
    )


@pytest.mark.parametrize(
    ("prometheus", "refused"),
    [
        ({"matchLabels": {"namespace": "victim"}}, "matchLabels.namespace refused"),
        (
            {"matchLabels": {"exported_namespace": "victim"}},
            'matchLabels.exported_namespace="victim" refused',
        ),
        ({"url": "http://169.254.169.254:80"}, "spec.prometheus.url refused"),
    ],
)
def test_a_refused_source_reads_nothing(prometheus: dict[str, Any], refused: str) -> None:
    admitted = metrics_target(spec(**prometheus), "mine", "vs", OWN_PROMETHEUS)
    assert admitted.refused is not None and refused in admitted.refused


def test_an_unparsable_override_is_refused_for_that_metric_only() -> None:
    admitted = metrics_target(spec(queries={"errorRate": "sum("}), "mine", "vs", OWN_PROMETHEUS)
    assert "error_rate" not in admitted.target.overrides
    assert "override errorRate refused" in admitted.overrides_refused["error_rate"]


class NoMetrics(MetricsBatcher):
    async def get(self, target: Target, max_age: float) -> MetricReadings:
        raise AssertionError("a refused Prometheus URL was queried")


async def test_refused_urls_fetch_nothing_and_say_why() -> None:
    dialled: list[str] = []

    def judge(host: str, ip: object, port: int) -> str:  # asked before every connection
        dialled.append(f"{host}:{port}")
        return "not in this test"

    hostile = VenueServiceSpec.model_validate({
        "deployment": {"name": "venue"},
        "service": {"url": "http://169.254.169.254/latest/meta-data"},
        "prometheus": {"url": "http://attacker.example:9090"},
    })  # fmt: skip
    ctx = Context(Dialer(judge), NoMetrics(PrometheusReader()), OWN_PROMETHEUS, tenancy=Tenancy())
    outcome = await evaluate(ctx, "mine", "vs", hostile, VenueServiceStatus(),
                             WorkloadState(found=False), 1)  # fmt: skip
    assert dialled == []
    assert outcome.observations.health.failure is ProbeFailure.NOT_ALLOWED
    assert any("link-local" in r for r in outcome.refused)
    assert any("spec.prometheus.url refused" in r for r in outcome.refused)
    health = outcome.assessment.check("health")
    assert str(health.level) == "unknown", "not probed is unknown, never down"


async def test_a_name_resolving_where_the_text_would_be_refused_fetches_nothing() -> None:
    """#23: the text passes (a Service of the own namespace), its address does not: the
    connector's refusal is the same NotAllowed reading and TargetRefused as the text's."""
    names = {"venue.mine.svc": ["169.254.169.254"]}
    targets = ProbeTargets(Tenancy(), static_resolver(names))
    ctx = Context(targets.dialer, NoMetrics(PrometheusReader()), OWN_PROMETHEUS)
    hostile = VenueServiceSpec.model_validate({
        "deployment": {"name": "venue"}, "service": {"url": "http://venue.mine.svc:3002"},
        "prometheus": {"url": "http://attacker.example:9090"},
    })  # fmt: skip
    outcome = await evaluate(ctx, "mine", "vs", hostile, VenueServiceStatus(),
                             WorkloadState(found=False), 1)  # fmt: skip
    assert outcome.observations.health.failure is ProbeFailure.NOT_ALLOWED
    assert any("venue.mine.svc resolves to a link-local address" in r for r in outcome.refused)
    assert str(outcome.assessment.check("health").level) == "unknown"
