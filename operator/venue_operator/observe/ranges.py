"""Prometheus range queries (the post-mortem's graphs), bounded like every other query."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime
from typing import Any

from venue_operator.observe.bounded_session import QueryFailed
from venue_operator.observe.endpoints import Endpoints, transport_reason

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


async def query_range(
    endpoints: Endpoints, url: str, promql: str, start: datetime, end: datetime, step: int
) -> Points | str:
    """The points of `promql` from `start` to `end`, or a one-line reason there are none."""
    client = endpoints.get(url).client
    timeout = endpoints.limits.timeout

    def fetch() -> Points | str:
        try:
            body = client.custom_query_range(
                promql, start_time=start, end_time=end, step=f"{step}s",
                params={"timeout": f"{timeout:g}s"}, timeout=timeout,
            )  # fmt: skip
            return matrix(body)
        except QueryFailed as exc:
            return str(exc)
        except Exception as exc:
            return transport_reason(exc)

    try:
        async with asyncio.timeout(timeout + 1):
            return await asyncio.to_thread(fetch)
    except TimeoutError:
        return f"no answer within {timeout:g}s"
