"""What a shard publishes for the others in an annotation of its own Lease (fleet/exchange.py):
its services' recent breaches (for the storm rule) and the fleet-rate slots it spent.

Bounded when written: at most `MAX_REPORTS` services and `MAX_BYTES` (the most recent breaches
first; a Lease's annotations may hold 256 KiB in all, and each replica lists every Lease a few
times per term). Parsed defensively when read: another member's annotation is input, and a
malformed one is refused whole (`ValueError`), never half-read. A service is named without
its dependencies: the reader takes those from its own watch of the VenueService, so what
another member publishes can add breaches to services the reader knows, never new scopes."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ANNOTATION = "ops.tickettoken.io/venue-operator-fleet"
VERSION = 1
MAX_REPORTS = 200
MAX_BYTES = 32 * 1024
MAX_CHECKS = 16  # per service: more than the runbook's service checks
MAX_SLOTS = 1000


@dataclass(frozen=True)
class Breaches:
    """One service's confirmed-critical checks and when, as its owner last saw them."""

    namespace: str
    name: str
    at: datetime  # the owner's last cycle of it
    breached: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    reports: tuple[Breaches, ...] = ()
    spent: tuple[int, ...] = ()  # fleet-rate slots (fleet/rate.py)
    per_minute: int = 0  # the rate those slots are of; 0: no fleet rate


def _seconds(at: datetime) -> float:
    return round(at.timestamp(), 1)


def encode(reports: Iterable[Breaches], spent: Iterable[int], per_minute: int) -> tuple[str, int]:
    """The annotation's value, and how many reports the bounds left out (`reports` most
    recent first: the ones left out are the oldest)."""
    out: list[list[Any]] = []
    size, left_out = 0, 0
    for report in reports:
        breached = {check: _seconds(at) for check, at in sorted(report.breached.items())}
        entry = [report.namespace, report.name, _seconds(report.at), breached]
        cost = len(json.dumps(entry, separators=(",", ":"))) + 1
        if len(out) >= MAX_REPORTS or size + cost > MAX_BYTES:
            left_out += 1
            continue
        out.append(entry)
        size += cost
    body = {"v": VERSION, "perMinute": per_minute, "spent": sorted(spent)[-MAX_SLOTS:],
            "reports": out}  # fmt: skip
    return json.dumps(body, separators=(",", ":")), left_out


def parse(text: str) -> Summary:
    """Another member's annotation; `ValueError` saying why when it is not one we wrote."""
    if len(text) > 4 * MAX_BYTES:
        raise ValueError(f"{len(text)} bytes: over the bound")
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("v") != VERSION:
        raise ValueError("not a version 1 summary")
    per_minute, spent, reports = body.get("perMinute"), body.get("spent"), body.get("reports")
    if not isinstance(per_minute, int) or isinstance(per_minute, bool) or per_minute < 0:
        raise ValueError("perMinute is not a count")
    if not isinstance(spent, list) or len(spent) > MAX_SLOTS or not all(map(_int, spent)):
        raise ValueError("spent is not a list of slots")
    if not isinstance(reports, list) or len(reports) > MAX_REPORTS:
        raise ValueError("reports is not a bounded list")
    return Summary(tuple(_report(entry) for entry in reports), tuple(spent), per_minute)


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _name(value: object, longest: int) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= longest:
        raise ValueError("a name is not a short string")
    return value


def _time(value: object) -> datetime:
    # 0 < t < 1e11: the years 1970 to 5138; anything else is not a time we wrote
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0 < value < 1e11:  # fmt: skip
        raise ValueError("a time is not seconds since the epoch")
    return datetime.fromtimestamp(value, UTC)


def _report(entry: object) -> Breaches:
    if not isinstance(entry, list) or len(entry) != 4:
        raise ValueError("a report is not [namespace, name, at, breached]")
    namespace, name, at, breached = entry
    if not isinstance(breached, dict) or len(breached) > MAX_CHECKS:
        raise ValueError("a report's breaches are not a bounded map")
    checks = {_name(check, 64): _time(when) for check, when in breached.items()}
    return Breaches(_name(namespace, 63), _name(name, 253), _time(at), checks)
