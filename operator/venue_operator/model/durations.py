"""Go-style duration strings ("30s", "5m", "1h30m") as used in Kubernetes APIs.

The CRD stores durations as strings so `kubectl` users write what they write
everywhere else; the API server checks them with CEL `duration()`, and the
operator parses them here with the same grammar (a subset: h, m, s, ms).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|h|m|s))+$"


def parse_duration(text: str) -> timedelta:
    """Parse "1h30m", "250ms", "15s" into a timedelta; raise ValueError otherwise."""
    if not isinstance(text, str) or not re.fullmatch(PATTERN, text):
        raise ValueError(f"invalid duration {text!r}: use a number and unit, e.g. 30s, 5m, 1h")
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render a timedelta the way Kubernetes users write it: 90s -> "1m30s"."""
    millis = round(value.total_seconds() * 1000)
    if millis % 1000:
        return f"{millis}ms"
    seconds = millis // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


def _coerce(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


def _schema(rule: str, message: str) -> WithJsonSchema:
    """The CRD's view: a duration string the API server checks with CEL `duration()`."""
    return WithJsonSchema(
        {
            "type": "string",
            "pattern": PATTERN,
            "x-kubernetes-validations": [{"rule": rule, "message": message}],
        }
    )


# Module-level Annotated aliases (not a function returning one): mypy sees them as types.
Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
    _schema("duration(self) > duration('0s')", "must be a positive duration such as 30s, 5m or 1h"),
]

# A duration where 0 means "never" (e.g. remediation.scale.restoreAfter).
DurationOrZero = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
    _schema("duration(self) >= duration('0s')", "must be a duration such as 0s, 30s, 5m or 1h"),
]
