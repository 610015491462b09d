"""`venue-operator run ...` -> the one Settings object the handlers read."""

from __future__ import annotations

import dataclasses

import pytest

from venue_operator.cli import build_parser, settings_from
from venue_operator.settings import Settings


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
