"""Prometheus adapter, pure parts: selectors, escaping, and splitting batch answers."""

from __future__ import annotations

from venue_operator.observe.answers import Sample, Samples, reading
from venue_operator.observe.prometheus import (
    BY_CLASS,
    CODE,
    CODES_TEMPLATE,
    MAX_MATCHER_CHARS,
    TEMPLATES,
    Target,
    batch_selector,
    by_class,
    selector,
    split,
)


def target(service: str, namespace: str = "prod") -> Target:
    return Target(
        key=f"{namespace}/{service}",
        url="http://p",
        labels={"namespace": namespace, "service": service},
    )


def test_selector_escapes_quotes_and_backslashes() -> None:
    assert selector({"service": 'a"b\\c'}) == 'service="a\\"b\\\\c"'


def test_batch_selector_is_one_regex_per_key() -> None:
    sel = batch_selector([target("a.b"), target("c"), target("c", "dev")], ["namespace", "service"])
    assert sel == 'namespace=~"dev|prod",service=~"a\\\\.b|c"'


def test_every_template_groups_by_the_batch_keys() -> None:
    for name, template in TEMPLATES.items():
        query = template.format(sel='service=~"a|b"', by="namespace,service", w="1m")
        assert "by (namespace,service" in query, name
        assert "{{" not in query and "}}" not in query, name


def sample(namespace: str, service: str, value: str, **extra: str) -> Sample:
    return Sample({"namespace": namespace, "service": service, **extra}, reading([0, value]))


def test_split_picks_each_services_series() -> None:
    answer = (sample("prod", "a", "0.5"), sample("prod", "b", "0.25"), sample("dev", "b", "0.75"))
    by_metric: dict[str, Samples | str] = dict.fromkeys(TEMPLATES, answer)
    targets = [target("a"), target("b"), target("b", "dev")]
    readings = split(targets, ["namespace", "service"], by_metric, ())
    assert {key: r.p99_latency.value for key, r in readings.items()} == {
        "prod/a": 0.5, "prod/b": 0.25, "dev/b": 0.75,
    }  # fmt: skip


def test_split_missing_nan_and_errors_are_unknown() -> None:
    by_metric: dict[str, Samples | str] = {name: () for name in TEMPLATES}
    by_metric["p99_latency"] = (sample("prod", "a", "NaN"),)
    by_metric["error_rate"] = "prometheus query failed: ConnectionError"
    readings = split([target("a")], ["namespace", "service"], by_metric, "boom")["prod/a"]
    assert readings.p99_latency.value is None and "NaN" in (
        readings.p99_latency.unknown_reason or ""
    )
    assert readings.error_rate.unknown_reason == "prometheus query failed: ConnectionError"
    assert (
        readings.memory_utilisation.unknown_reason == 'no series for {namespace="prod",service="a"}'
    )


def test_shares_are_divided_by_the_request_rate() -> None:
    by_metric: dict[str, Samples | str] = {name: () for name in TEMPLATES}
    by_metric["request_rate"] = (sample("prod", "a", "20"), sample("prod", "b", "0"),
                                 sample("prod", "c", "10"))  # fmt: skip
    by_metric["error_rate"] = (sample("prod", "a", "1"), sample("prod", "b", "0"))
    by_metric["rate_limited"] = "prometheus query failed: timeout"
    targets = [target("a"), target("b"), target("c"), target("d")]
    readings = split(targets, ["namespace", "service"], by_metric, ())
    assert readings["prod/a"].error_rate.value == 0.05
    assert readings["prod/b"].error_rate.unknown_reason == "no requests in the rate window"
    assert readings["prod/c"].error_rate.value == 0.0, "no 5xx series while serving: none"
    assert "no series" in (readings["prod/d"].error_rate.unknown_reason or "")
    assert readings["prod/a"].rate_limited.unknown_reason == "prometheus query failed: timeout"


def test_split_ranks_tenants() -> None:
    tenants = (
        sample("prod", "a", "0.5", tenant="t1"),
        sample("prod", "a", "7", tenant="t2"),
        sample("prod", "b", "9", tenant="t3"),
    )
    by_metric: dict[str, Samples | str] = {name: () for name in TEMPLATES}
    readings = split([target("a")], ["namespace", "service"], by_metric, tenants)["prod/a"]
    assert readings.top_limited_tenants == (("t2", 7.0), ("t1", 0.5))


def test_batch_selector_names_a_shards_services_and_is_bounded_past_that() -> None:
    """A replica's batch names each of its services (Prometheus reads only their series); a
    list past the cap becomes every series of the label, split per service client-side."""
    many = [target(f"venue-{i:04d}") for i in range(1000)]
    sel = batch_selector(many, ["namespace", "service"])
    assert sel.startswith('namespace=~"prod",service=~"venue-0000|venue-0001|')
    assert sel.endswith('|venue-0999"')
    too_many = [target(f"venue-{i:06d}") for i in range(MAX_MATCHER_CHARS // 7 + 1)]
    assert batch_selector(too_many, ["namespace", "service"]) == 'namespace=~"prod",service!=""'


def test_the_three_request_rates_come_from_one_answer_by_status_code() -> None:
    """One pass over http_requests_total: 5xx and 429s apart, everything in the rate; read
    as the three queries were (a service with no 5xx has no error series)."""
    query = CODES_TEMPLATE.format(sel='service=~"a|b"', by="namespace,service", w="1m")
    assert query == (
        'sum by (namespace,service, status_code) (rate(http_requests_total{service=~"a|b"}[1m]))'
    )
    answer = (
        sample("prod", "a", "17", **{CODE: "200"}),
        sample("prod", "a", "1", **{CODE: "404"}),
        sample("prod", "a", "1", **{CODE: "500"}),
        sample("prod", "a", "0.5", **{CODE: "503"}),
        sample("prod", "a", "0.5", **{CODE: "429"}),
        sample("prod", "b", "9"),  # no status code at all: neither 5xx nor 429
        sample("prod", "b", "1", **{CODE: "5000"}),  # not 5.. (anchored)
        sample("prod", "c", "4", **{CODE: "200"}),
        sample("prod", "c", "NaN", **{CODE: "502"}),
    )
    by_metric: dict[str, Samples | str] = {name: () for name in TEMPLATES}
    by_metric |= by_class(answer, ["namespace", "service"])
    targets = [target("a"), target("b"), target("c")]
    readings = split(targets, ["namespace", "service"], by_metric, ())
    a, b, c = readings["prod/a"], readings["prod/b"], readings["prod/c"]
    assert (a.request_rate.value, a.error_rate.value, a.rate_limited.value) == (20, 0.075, 0.025)
    assert (b.request_rate.value, b.error_rate.value, b.rate_limited.value) == (10, 0.0, 0.0)
    assert c.request_rate.value is None and c.error_rate.value is None, "NaN in any part"
    failed = by_class("prometheus query failed: timeout", ["namespace", "service"])
    assert failed == dict.fromkeys(BY_CLASS, "prometheus query failed: timeout")
