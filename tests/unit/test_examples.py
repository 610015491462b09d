"""The shipped example VenueService (manifests/examples/) under the shipped operator's defaults
(the args of manifests/deployment.yaml, which the chart's defaults render too): the tenant
policy the operator applies to a spec refuses, clamps and withholds nothing. Once it named
`http://venue-service:3002`, "not a Service of namespace shop": a newcomer's first object
showed Unknown (#23)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from venue_operator.cli.flags import settings_from
from venue_operator.cli.main import build_parser
from venue_operator.cli.settings import Settings
from venue_operator.loop.evaluation import default_service_url, service_url
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.observe.metrics_source import metrics_target
from venue_operator.tenancy.policy import clamp, may_act, service_url_refusal

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
NAMESPACE = "shop"  # wherever a newcomer applies it


def the_one(path: Path, kind: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [d for d in yaml.safe_load_all(path.read_text())
                                   if d and d["kind"] == kind]  # fmt: skip
    (only,) = found
    return only


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """`venue-operator run` as manifests/deployment.yaml starts it, in its namespace."""
    deployment = the_one(MANIFESTS / "deployment.yaml", "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    monkeypatch.setenv("POD_NAMESPACE", deployment["metadata"]["namespace"])
    return settings_from(build_parser().parse_args(container["args"]))


def example() -> tuple[str, VenueServiceSpec]:
    """The example's name and its spec with the defaults the API server fills in."""
    venue = the_one(MANIFESTS / "examples" / "venueservice.yaml", "VenueService")
    return venue["metadata"]["name"], VenueServiceSpec.model_validate(venue["spec"])


def service_refusal(spec: VenueServiceSpec, settings: Settings) -> str | None:
    return service_url_refusal(service_url(spec, NAMESPACE),
                               NAMESPACE, default_service_url(spec, NAMESPACE),
                               settings.tenancy)  # fmt: skip


def test_the_example_is_admitted_as_it_is(shipped: Settings) -> None:
    name, spec = example()
    assert service_refusal(spec, shipped) is None
    admitted = metrics_target(spec, NAMESPACE, name, shipped.prometheus_url, shipped.tenancy)
    assert admitted.refused is None and not admitted.overrides_refused
    assert admitted.target.url == shipped.prometheus_url
    assert clamp(spec, shipped.tenancy.caps) == (spec, ())
    assert may_act(NAMESPACE, shipped.tenancy)
    assert spec.notification is None  # else: alertmanager_url_refusal, --alertmanager-url


def test_the_example_deployment_has_the_service_the_default_url_names() -> None:
    _, spec = example()
    service = the_one(MANIFESTS / "examples" / "deployment.yaml", "Service")
    deployment = the_one(MANIFESTS / "examples" / "deployment.yaml", "Deployment")
    (port,) = service["spec"]["ports"]
    assert default_service_url(spec, NAMESPACE) == (
        f"http://{service['metadata']['name']}.{NAMESPACE}.svc:{port['port']}"
    )
    assert deployment["metadata"]["name"] == spec.deployment.name
    selected = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= selected.items()


def test_the_old_example_is_refused(shipped: Settings) -> None:
    """Not vacuous: the URL the example named before is refused by the same check."""
    _, spec = example()
    old = spec.model_copy(update={"service": spec.service.model_copy(
        update={"url": "http://venue-service:3002"})})  # fmt: skip
    assert "not a Service of namespace shop" in (service_refusal(old, shipped) or "")
