"""Prometheus answers, checked: where a document from outside becomes samples (or, for the
post-mortem's graphs, the points of a range answer).

Pure (but for the collector paused while a document is read): the bytes of one
`/api/v1/query` answer in, samples or a one-line reason out.
Nothing from the body is quoted in a reason (it may come from a hostile endpoint).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from venue_operator.model.observations import Reading
from venue_operator.record.pauses import collector_paused

RESULT_TYPES = {
    "vector": "an instant vector",
    "matrix": "a range vector (matrix)",
    "scalar": "a scalar",
    "string": "a string",
}


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector (or a scalar, with no labels)."""

    labels: Mapping[str, str]
    reading: Reading


@dataclass(frozen=True)
class Answer:
    result_type: str  # a key of RESULT_TYPES
    samples: tuple[Sample, ...] = ()  # matrix and string answers are never used: left empty


Samples = tuple[Sample, ...]


def parse(body: bytes) -> Answer | str:
    """The answer in `body`, or why it is not a usable Prometheus answer."""
    with collector_paused():  # a shard's batch: 1,250 services' series (record/pauses.py)
        return _parsed(body)


def _parsed(body: bytes) -> Answer | str:
    try:
        doc: Any = json.loads(body)
    except ValueError:  # also UnicodeDecodeError
        return "answer is not JSON"
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        return "answer is not a Prometheus query result"
    if doc.get("status") != "success":
        return "answer status is not success"
    kind, result = doc["data"].get("resultType"), doc["data"].get("result")
    if kind == "vector" and isinstance(result, list):
        return _vector(result)
    if kind == "scalar":
        return Answer("scalar", (Sample({}, reading(result)),))
    if kind in ("matrix", "string"):
        return Answer(kind)
    return "answer has no known resultType"


def _vector(result: list[Any]) -> Answer | str:
    samples = []
    for item in result:
        labels = item.get("metric") if isinstance(item, dict) else None
        if not isinstance(labels, dict):
            return "answer has a sample without labels"
        value = item.get("value")
        labels = {str(k): str(v) for k, v in labels.items()}
        samples.append(Sample(labels, reading(value)))
    return Answer("vector", tuple(samples))


def reading(value: object) -> Reading:
    """A sample's `[timestamp, "number"]` as a reading; anything else is unknown."""
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], str):
        return Reading.unknown("sample has no value")
    try:
        number = float(value[1])
    except ValueError:
        return Reading.unknown("sample value is not a number")
    if math.isnan(number) or math.isinf(number):
        return Reading.unknown("query returned NaN" if math.isnan(number) else "query returned Inf")
    return Reading.of(number)


def instant(answer: Answer, what: str, scalar_ok: bool = False) -> Samples | str:
    """The samples of an instant vector (or of a scalar, if `scalar_ok`), or a reason
    naming `what` asked and what came back instead."""
    if answer.result_type == "vector" or (scalar_ok and answer.result_type == "scalar"):
        return answer.samples
    return f"{what} returned {RESULT_TYPES[answer.result_type]}; use an instant vector"


Points = list[tuple[datetime, float]]


def matrix(body: bytes) -> Points | str:
    """The first series of a range answer (the graphs' queries sum to one), NaN dropped."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return "answer is not JSON"
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict) or doc.get("status") != "success":
        return "answer is not a successful Prometheus query result"
    if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        return "answer is not a range vector (matrix)"
    if not data["result"]:
        return []
    points: Points = []
    for pair in data["result"][0].get("values") or []:
        try:
            at, value = datetime.fromtimestamp(float(pair[0]), UTC), float(pair[1])
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(value):
            points.append((at, value))
    return points
