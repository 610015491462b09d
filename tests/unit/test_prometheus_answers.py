"""Prometheus answers, checked: every shape a hostile or broken endpoint can send."""

from __future__ import annotations

import json
from typing import Any

import pytest

from venue_operator.model.observations import Reading
from venue_operator.observe.answers import Answer, Sample, instant, parse
from venue_operator.observe.prometheus import override_reading

A = {"namespace": "prod", "service": "a"}


def doc(kind: str, result: Any, status: str = "success") -> bytes:
    return json.dumps({"status": status, "data": {"resultType": kind, "result": result}}).encode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (doc("vector", [{"metric": A, "value": [0, "0.5"]}]),
         Answer("vector", (Sample(A, Reading.of(0.5)),))),
        (doc("vector", []), Answer("vector", ())),
        (doc("scalar", [0, "2"]), Answer("scalar", (Sample({}, Reading.of(2.0)),))),
        (doc("matrix", [{"metric": A, "values": [[0, "1"]]}]), Answer("matrix")),
        (doc("string", [0, "hello"]), Answer("string")),
        # a malformed sample costs its own series
        (doc("vector", [{"metric": A}]),
         Answer("vector", (Sample(A, Reading.unknown("sample has no value")),))),
        (doc("vector", [{"metric": A, "value": [0, "secret-text"]}]),
         Answer("vector", (Sample(A, Reading.unknown("sample value is not a number")),))),
        (doc("vector", [{"metric": A, "value": [0, 1]}]),
         Answer("vector", (Sample(A, Reading.unknown("sample has no value")),))),
        (doc("vector", [{"metric": A, "value": [0, "NaN"]}]),
         Answer("vector", (Sample(A, Reading.unknown("query returned NaN")),))),
        (doc("vector", [{"metric": A, "value": [0, "+Inf"]}]),
         Answer("vector", (Sample(A, Reading.unknown("query returned Inf")),))),
        # the whole answer is unusable
        (doc("vector", ["x"]), "answer has a sample without labels"),
        (doc("vector", [{"metric": "x", "value": [0, "1"]}]), "answer has a sample without labels"),
        (doc("vector", {"not": "a list"}), "answer has no known resultType"),
        (doc("histogram", []), "answer has no known resultType"),
        (doc("vector", [], status="error"), "answer status is not success"),
        (b"<html>secret-text</html>", "answer is not JSON"),
        (b"\xff\xfe", "answer is not JSON"),
        (b"[1, 2]", "answer is not a Prometheus query result"),
        (b'{"status": "success", "data": []}', "answer is not a Prometheus query result"),
    ],
)  # fmt: skip
def test_parse(body: bytes, expected: Answer | str) -> None:
    assert parse(body) == expected


@pytest.mark.parametrize(
    ("kind", "scalar_ok", "expected"),
    [
        ("vector", False, ()),
        ("scalar", True, ()),
        ("scalar", False, "override errorRate returned a scalar; use an instant vector"),
        ("matrix", True,
         "override errorRate returned a range vector (matrix); use an instant vector"),
        ("string", True, "override errorRate returned a string; use an instant vector"),
    ],
)  # fmt: skip
def test_instant_names_what_came_back(kind: str, scalar_ok: bool, expected: Any) -> None:
    assert instant(Answer(kind), "override errorRate", scalar_ok) == expected


def one(value: float) -> tuple[Sample, ...]:
    return (Sample({}, Reading.of(value)),)


RATIO_REQUIRED = "it must be a ratio from 0 to 1, shown as a percent (0.05 is 5 %)"


@pytest.mark.parametrize(
    ("metric", "answer", "expected"),
    [
        # #23: an override answers in its metric's unit (the CRD says which); a share is a
        # ratio, shown x100: absent() (1) is 100 %, as documented, and 5 is not 500 %
        ("error_rate", one(0.05), Reading.of(0.05)),
        ("error_rate", one(1.0), Reading.of(1.0)),
        ("error_rate", one(5.0),
         Reading.unknown(f"override errorRate returned 5; {RATIO_REQUIRED}")),
        ("rate_limited", one(-0.5),
         Reading.unknown(f"override rateLimited returned -0.5; {RATIO_REQUIRED}")),
        ("pool_utilisation", one(70.0),
         Reading.unknown(f"override poolUtilisation returned 70; {RATIO_REQUIRED}")),
        # not shares: memory may pass its limit, the others are not ratios
        ("memory_utilisation", one(1.2), Reading.of(1.2)),
        ("p99_latency", one(2.5), Reading.of(2.5)),
        ("pool_pending", one(7.0), Reading.of(7.0)),
        ("request_rate", one(1500.0), Reading.of(1500.0)),
        # one series or why not
        ("error_rate", (),
         Reading.unknown("override errorRate returned 0 series; it must return one")),
        ("error_rate", "prometheus query failed: HTTP 500",
         Reading.unknown("prometheus query failed: HTTP 500")),
    ],
)  # fmt: skip
def test_an_override_reads_in_its_metrics_unit(metric: str, answer: Any, expected: Reading) -> None:
    assert override_reading(metric, answer) == expected
