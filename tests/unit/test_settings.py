"""`venue-operator run ...` -> the one Settings object the handlers read."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from venue_operator.cli.flags import settings_from
from venue_operator.cli.main import build_parser
from venue_operator.cli.settings import Settings
from venue_operator.decide.storm import StormRule
from venue_operator.observe.bounded_session import PrometheusAuth
from venue_operator.observe.endpoints import Limits
from venue_operator.tenancy.policy import Caps, Tenancy


def settings(*argv: str) -> Settings:
    return settings_from(build_parser().parse_args(["run", *argv]))


def test_defaults() -> None:
    found = settings()
    assert 1 <= found.priority <= 1_000_000  # random: one replica of many acts
    assert found == Settings(priority=found.priority)
    assert found.clusterwide
    assert found.liveness_endpoint == "http://127.0.0.1:8080/healthz"


def test_every_flag() -> None:
    found = settings(
        "-n", "prod-*", "--namespace=stage", "--prometheus-url=http://prom:9090",
        "--metrics-max-age=2.5", "--liveness-port=0", "--metrics-port=9191",
        "--bind-address=0.0.0.0", "--peering=venue-operator", "--priority=7",
        "--peering-lifetime=20", "--verbose",
    )  # fmt: skip
    assert found == Settings(
        namespaces=("prod-*", "stage"),
        prometheus_url="http://prom:9090",
        metrics_max_age=2.5,
        liveness_port=0,
        metrics_port=9191,
        bind_address="0.0.0.0",  # noqa: S104 - the flag as a pod passes it
        peering="venue-operator",
        priority=7,
        peering_lifetime=20,
        verbose=True,
    )
    assert not found.clusterwide and found.liveness_endpoint is None


def test_zero_max_age_and_empty_url_mean_unset() -> None:
    found = settings("--metrics-max-age=0", "--prometheus-url=")
    assert found.metrics_max_age is None and found.prometheus_url is None


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings().prometheus_url = "http://elsewhere"  # type: ignore[misc]


def test_tenant_boundaries_default_to_the_safe_side() -> None:
    tenancy = settings().tenancy
    assert tenancy.prometheus_urls == () and tenancy.service_cidrs == ()
    assert tenancy.service_hosts == () and tenancy.act_namespaces == ()
    assert tenancy.caps == Caps(
        max_replicas=50, min_cooldown=timedelta(seconds=30), max_actions_per_hour=20,
        min_probe_interval=timedelta(seconds=5), fleet_actions_per_minute=10,
    )  # fmt: skip


def test_tenant_boundary_flags() -> None:
    found = settings(
        "--allow-prometheus-url=http://tenant-prom:9090", "--allow-service-host=*.example.com",
        "--allow-service-cidr=127.0.0.1/8", "--act-namespace=prod-*", "--act-namespace=stage",
        "--operator-namespace=venue-operator", "--max-replicas=5", "--min-cooldown=0",
        "--max-actions-per-hour=100", "--min-probe-interval=0.5",
        "--max-fleet-actions-per-minute=3",
    )  # fmt: skip
    assert found.tenancy == Tenancy(
        caps=Caps(max_replicas=5, min_cooldown=timedelta(0), max_actions_per_hour=100,
                  min_probe_interval=timedelta(seconds=0.5), fleet_actions_per_minute=3),
        prometheus_urls=("http://tenant-prom:9090",), service_hosts=("*.example.com",),
        service_cidrs=("127.0.0.0/8",), act_namespaces=("prod-*", "stage"),
        operator_namespace="venue-operator",
    )  # fmt: skip


def test_a_bad_cidr_is_refused_at_startup() -> None:
    with pytest.raises(SystemExit):
        settings("--allow-service-cidr=not-a-network")


def test_prometheus_credentials_are_files() -> None:
    assert settings().prometheus_auth is None
    found = settings("--prometheus-bearer-token-file=/var/run/prometheus/token",
                     "--prometheus-ca-file=/var/run/prometheus/ca.crt")  # fmt: skip
    assert found.prometheus_auth == PrometheusAuth(
        bearer_token_file="/var/run/prometheus/token", ca_file="/var/run/prometheus/ca.crt"
    )


def test_prometheus_limits_are_flags() -> None:
    """#12: the body cap (and deadline, concurrency) are the cluster admin's to set."""
    assert settings().prometheus_limits == Limits()
    found = settings("--prometheus-timeout=5", "--prometheus-concurrency=2",
                     "--prometheus-max-body-bytes=1048576")  # fmt: skip
    limits = found.prometheus_limits
    assert (limits.timeout, limits.concurrency, limits.max_bytes) == (5.0, 2, 1048576)


def test_alertmanager_flags() -> None:
    found = settings("--alertmanager-url=http://am:9093", "--alertmanager-resend-interval=30",
                     "--allow-alertmanager-url=http://team-am.shop.svc:9093")  # fmt: skip
    assert found.alertmanager_url == "http://am:9093"
    assert found.alertmanager_resend == timedelta(seconds=30)
    assert found.tenancy.alertmanager_urls == ("http://team-am.shop.svc:9093",)
    assert settings("--alertmanager-url=").alertmanager_url is None


@pytest.mark.parametrize("given", ["0", "-30", "inf", "nan", "thirty"])
def test_a_non_positive_or_non_finite_resend_interval_is_refused_at_startup(
    given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """0 or less would post alerts that end as they are sent; inf and nan broke timedelta."""
    with pytest.raises(SystemExit) as exited:
        settings(f"--alertmanager-resend-interval={given}")
    assert exited.value.code == 2  # argparse's usage error, not a traceback
    assert f"argument --alertmanager-resend-interval: '{given}' is not a" in capsys.readouterr().err


def test_storm_flags() -> None:
    assert settings().storm == StormRule()
    found = settings("--storm-min-services=8", "--storm-min-fraction=0.5",
                     "--storm-min-namespaces=2", "--storm-window=90")  # fmt: skip
    assert found.storm == StormRule(8, 0.5, 2, timedelta(seconds=90))
    assert not settings("--storm-min-services=0").storm.enabled


@pytest.mark.parametrize("flag", ["--storm-min-fraction=1.5", "--storm-min-fraction=x",
                                  "--storm-window=0", "--storm-window=nan"])  # fmt: skip
def test_a_storm_flag_out_of_range_is_refused_at_startup(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        settings(flag)
    assert flag.split("=")[0] in capsys.readouterr().err
