"""How values and limits are written in reasons, conditions and Events. Pure."""

from __future__ import annotations

from collections.abc import Sequence


def rounded(value: float, digits: int = 3) -> float:
    """For people: `digits` significant digits below 1,000 (19.934 -> 19.9), whole numbers
    above (12345.6 -> 12346), as `fmt` shows them."""
    return float(f"{value:.{digits}g}") if abs(value) < 1000 else float(round(value))


def fmt(value: float | None, unit: str | None, digits: int = 3) -> str:
    """`12%`, `2.35e+03ms` never: three significant digits below 1,000, integers above."""
    if value is None:
        return "n/a"
    text = f"{rounded(value, digits):g}" if abs(value) < 1000 else f"{value:.0f}"
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


def clipped(text: str, limit: int) -> str:
    """`text`, or as many whole words as fit in `limit` characters, then "…"."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]  # room for the "…"
    whole = text[len(head)] == " " or " " not in head  # the cut falls between two words
    cut = head if whole else head.rsplit(" ", 1)[0]
    return cut.rstrip(" ;,:(") + "…"


def fitted(parts: Sequence[str], limit: int, separator: str = "; ") -> str:
    """`parts` joined, as many whole ones as fit in `limit` characters, then "and N more"
    (the first one clipped at a word if even it does not fit)."""
    text = separator.join(parts)
    if len(text) <= limit:
        return text
    for kept in range(len(parts) - 1, 0, -1):
        text = separator.join(parts[:kept]) + f"{separator}and {len(parts) - kept} more"
        if len(text) <= limit:
            return text
    more = f"{separator}and {len(parts) - 1} more" if len(parts) > 1 else ""
    return clipped(parts[0], limit - len(more)) + more


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A Markdown table's lines; each cell on one line, its `|` escaped."""

    def cell(value: object) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
