"""Fault sets: what can go wrong with a simulated service, validated, and derived from images."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FaultValue = float | bool | str | None
FaultOverrides = dict[str, FaultValue]

MAX_ADDED_LATENCY_MS = 60_000.0
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class FaultError(ValueError):
    """Fault input that is rejected as a whole (unknown field, wrong type, out of range)."""


@dataclass(frozen=True)
class Faults:
    """One service's faults; the defaults are a healthy service."""

    error_ratio: float = 0.0
    added_latency_ms: float = 0.0
    database_down: bool = False
    redis_down: bool = False
    pool_saturation: bool = False
    memory_pressure: bool = False
    rate_limit_tenant: str | None = None
    not_starting: bool = False
    migrations_pending: bool = False
    slow_health: bool = False
    malformed_health: bool = False
    junk_health: bool = False  # 10 MB of non-JSON on both health endpoints
    # "tenant-a=5,tenant-b=2": each tenant's share of the traffic (unnamed tenants: none);
    # None: the five default tenants alike.
    tenant_traffic: str | None = None
    # "tenant-b=4": the tenant's error ratio is this many times the service's (at most 1).
    tenant_error_weight: str | None = None
    error_bursts: bool = False  # 1 s of every 10 s at 6% 5xx (phase per service)
    warm_up_slow_s: float = 0.0  # the first seconds after start are 2.5 s slower

    def to_json(self) -> dict[str, FaultValue]:
        return dataclasses.asdict(self)

    def active(self) -> FaultOverrides:
        """Only the fields that differ from a healthy service."""
        healthy = HEALTHY.to_json()
        return {key: value for key, value in self.to_json().items() if value != healthy[key]}

    def with_overrides(self, overrides: Mapping[str, FaultValue]) -> Faults:
        fields: dict[str, Any] = {**self.to_json(), **overrides}
        return Faults(**fields)


HEALTHY = Faults()
FAULT_FIELDS = tuple(field.name for field in dataclasses.fields(Faults))


def _ratio(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise FaultError(f"must be a number in [0, 1], got {value!r}")
    return float(value)


def _milliseconds(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_ADDED_LATENCY_MS
    ):
        raise FaultError(f"must be a number in [0, {MAX_ADDED_LATENCY_MS:.0f}], got {value!r}")
    return float(value)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise FaultError(f"must be true or false, got {value!r}")
    return value


def _tenant(value: object) -> str | None:
    # Tenants become Prometheus label values rendered by hand, so keep them escape-free.
    if value is None or (isinstance(value, str) and _TENANT.fullmatch(value)):
        return value
    raise FaultError(f"must be null or a tenant name like 'tenant-a', got {value!r}")


def tenant_weights(text: str | None) -> dict[str, float]:
    """`tenant-a=5,tenant-b=2` -> {tenant-a: 5.0, tenant-b: 2.0} ({} for None)."""
    weights: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, number = part.strip().partition("=")
        if not sep or not _TENANT.fullmatch(name):
            raise FaultError(f"must be tenant=weight pairs like 'tenant-a=2', got {part!r}")
        try:
            weight = float(number)
        except ValueError:
            raise FaultError(f"weight of {name} is not a number: {number!r}") from None
        if not math.isfinite(weight) or not 0 <= weight <= 1000:
            raise FaultError(f"weight of {name} must be in [0, 1000], got {number!r}")
        weights[name] = weight
    return weights


def _weights(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not tenant_weights(value):
        raise FaultError(f"must be null or tenant=weight pairs, got {value!r}")
    return value


def _warm_up_seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 600:
        raise FaultError(f"must be a number of seconds in [0, 600], got {value!r}")
    return float(value)


_PARSERS = {
    "tenant_traffic": _weights,
    "tenant_error_weight": _weights,
    "error_ratio": _ratio,
    "warm_up_slow_s": _warm_up_seconds,
    "added_latency_ms": _milliseconds,
    "rate_limit_tenant": _tenant,
}


def parse_overrides(body: object) -> FaultOverrides:
    """Validate a JSON object of fault fields; raise FaultError naming every problem."""
    if not isinstance(body, Mapping):
        raise FaultError(f"faults must be a JSON object, got {type(body).__name__}")
    unknown = sorted(str(key) for key in body if key not in FAULT_FIELDS)
    if unknown:
        raise FaultError(
            f"unknown fault field(s): {', '.join(unknown)} (known: {', '.join(FAULT_FIELDS)})"
        )
    parsed: FaultOverrides = {}
    problems = []
    for key, value in body.items():
        try:
            parsed[key] = _PARSERS.get(key, _flag)(value)
        except FaultError as exc:
            problems.append(f"{key} {exc}")
    if problems:
        raise FaultError("; ".join(problems))
    return parsed


# Release tags that stand for a known-bad build, so a real rollout (and its undo) changes
# the simulated service. A pending migration also makes the service report not ready.
IMAGE_TAG_FAULTS: dict[str, Faults] = {
    "-bad": Faults(error_ratio=0.12),
    "-slow": Faults(added_latency_ms=2500.0),
    "-crash": Faults(not_starting=True),
    "-migrate": Faults(migrations_pending=True),
    "-leak": Faults(memory_pressure=True),
    # The rollout guard's false-positive runs: noisy but healthy, and slow only while warming up.
    "-noisy": Faults(error_ratio=0.0022, added_latency_ms=300.0, error_bursts=True),
    "-warmup": Faults(warm_up_slow_s=5.0),
    # One tenant failing (30% 5xx, 300 times the baseline 0.1%), the others fine: with
    # tenant-e a tenth of the traffic (`tenant_traffic`), 3% overall, under the 5% limit.
    "-tenant-e": Faults(tenant_error_weight="tenant-e=300"),
}


def image_tag(image: str) -> str:
    """The tag of an image reference ('' when untagged); registry ports are not tags."""
    without_digest = image.split("@", 1)[0]
    last_segment = without_digest.rsplit("/", 1)[-1]
    return last_segment.rsplit(":", 1)[1] if ":" in last_segment else ""


def faults_for_image(image: str) -> Faults:
    """The faults a release image stands for: by tag suffix, else healthy."""
    tag = image_tag(image)
    for suffix, faults in IMAGE_TAG_FAULTS.items():
        if tag.endswith(suffix):
            return faults
    return HEALTHY
