"""The post-mortem's graphs as PNG files, with matplotlib (the `report` extra).

matplotlib is imported only here, only when a graph is drawn: the operator's image does
not carry it, and `venue-operator report` without it still writes the Markdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from venue_operator.incident.postmortem import GraphSpec, Marker

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 3.0, 100  # 800 x 300 pixels
COLOURS = {"breach": "tab:orange", "confirmed": "tab:red", "action": "tab:blue",
           "recovery": "tab:green"}  # fmt: skip


class GraphsUnavailable(Exception):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise GraphsUnavailable(
            "graphs need matplotlib, which is not installed: pip install 'venue-operator[report]'"
        ) from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def draw(
    graph: GraphSpec, points: Sequence[tuple[datetime, float]], marks: Sequence[Marker],
    start: datetime, end: datetime, path: Path,
) -> None:  # fmt: skip
    """One PNG: the metric, its warning and critical limits, and the incident's markers."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    try:
        ax.plot([p[0] for p in points], [p[1] for p in points], color="black", linewidth=1.2)
        t = graph.threshold
        ax.axhline(t.warning, color="goldenrod", linestyle="--", linewidth=1,
                   label=f"warning {t.warning:g}{graph.unit}")  # fmt: skip
        ax.axhline(t.critical, color="firebrick", linestyle="--", linewidth=1,
                   label=f"critical {t.critical:g}{graph.unit}")  # fmt: skip
        labelled: set[str] = set()
        for m in marks:
            label = m.kind if m.kind not in labelled else None
            labelled.add(m.kind)
            ax.axvline(m.at, color=COLOURS.get(m.kind, "grey"), linewidth=1, alpha=0.8,
                       label=label)  # fmt: skip
        ax.set_xlim(start, end)
        ax.set_ylim(bottom=0)
        ax.set_title(graph.title, fontsize=10)
        ax.set_ylabel(graph.unit)
        ax.set_xlabel("UTC", fontsize=7)
        ax.legend(fontsize=7, loc="best")
        ax.tick_params(labelsize=7)
        fig.autofmt_xdate()
        fig.savefig(path, dpi=DPI)  # not bbox="tight": every PNG is the same size
    finally:
        plt.close(fig)
