"""How values and limits are written in reasons, conditions and Events. Pure."""

from __future__ import annotations


def fmt(value: float | None, unit: str | None, digits: int = 3) -> str:
    """`12%`, `2.35e+03ms` never: three significant digits below 1,000, integers above."""
    if value is None:
        return "n/a"
    text = f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"
    return f"{text}{'' if unit in (None, 'pods') else unit}"


def above(value: float, limit: float, unit: str | None) -> tuple[str, str]:
    """Value and limit with enough digits that the two never read the same (5.004 vs 5)."""
    digits = 3
    while fmt(value, unit, digits) == fmt(limit, unit, digits) and digits < 9:
        digits += 1
    return fmt(value, unit, digits), fmt(limit, unit, digits)


def severity_word(severity: object) -> str:
    """A severity as people say it: P1-P4 and Unknown as they are, no severity (`None`,
    status.severity of a healthy service) as `healthy`."""
    return "healthy" if severity is None or str(severity) == "None" else str(severity)
