"""The post-mortem's graphs as PNG files, with matplotlib (the `report` extra).

matplotlib is imported only here, only when a graph is drawn: the operator's image does
not carry it, and `venue-operator report` without it still writes the Markdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from venue_operator.incident.figures import GraphSpec, Marker

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 3.0, 100  # 800 x 300 pixels
WARNING, CRITICAL = "goldenrod", "firebrick"
# kind -> colour, line style, width, label height (axes fraction): markers at the same second
# (confirmed and the action it triggered) stay apart, the wider one drawn under the other, and
# each label has its own height (a short incident puts them side by side).
STYLES = {"breach": (CRITICAL, ":", 1.8, 0.97),
          "confirmed": ("darkviolet", "-", 4.0, 0.89),
          "action": ("tab:blue", "--", 1.6, 0.81),
          "recovery": ("tab:green", "-", 1.6, 0.73)}  # fmt: skip
LEGEND = {"breach": "breach observed", "confirmed": "breach confirmed", "action": "action taken",
          "recovery": "recovered"}  # fmt: skip
HEADROOM = 1.6  # the markers' labels sit above the highest point


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
    start: datetime, end: datetime, path: Path, title: str | None = None,
) -> None:  # fmt: skip
    """One PNG: the metric, its warning and critical limits, the incident shaded from the
    first breach to recovery, and its markers, each labelled."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    try:
        _plot(ax, graph, points, marks, start, end)
        ax.set_xlim(start, end)
        highest = max([graph.threshold.critical, *(p[1] for p in points)])
        ax.set_ylim(bottom=0, top=highest * HEADROOM)
        ax.set_title(title or graph.title, fontsize=8.5)
        ax.set_ylabel(graph.unit or "count", fontsize=8)
        ax.set_xlabel("UTC", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.autofmt_xdate()
        fig.subplots_adjust(left=0.08, right=0.77, top=0.84, bottom=0.2)
        # not bbox="tight": every PNG is the same size; the title in the file's text too
        fig.savefig(path, dpi=DPI, metadata={"Title": title or graph.title})
    finally:
        plt.close(fig)


def _plot(
    ax: Any, graph: GraphSpec, points: Sequence[tuple[datetime, float]], marks: Sequence[Marker],
    start: datetime, end: datetime,
) -> None:  # fmt: skip
    t, unit = graph.threshold, graph.unit
    began = next((m.at for m in marks if m.kind in ("breach", "confirmed")), None)
    recovered = next((m.at for m in marks if m.kind == "recovery"), end)
    if began is not None:
        ax.axvspan(began, recovered, color=CRITICAL, alpha=0.08, linewidth=0, label="incident")
    ax.plot([p[0] for p in points], [p[1] for p in points], color="black", linewidth=1.3,
            label=graph.title, zorder=3)  # fmt: skip
    ax.axhline(t.warning, color=WARNING, linestyle="--", linewidth=1,
               label=f"warning {t.warning:g}{unit}")  # fmt: skip
    ax.axhline(t.critical, color=CRITICAL, linestyle="--", linewidth=1,
               label=f"critical {t.critical:g}{unit}")  # fmt: skip
    labelled: set[str] = set()
    for m in (m for m in marks if start <= m.at <= end):
        colour, style, width, height = STYLES.get(m.kind, ("grey", "-", 1.0, 0.6))
        under = m.kind == "confirmed"  # wide and pale, the action's dashes show over it
        label = LEGEND.get(m.kind, m.kind) if m.kind not in labelled else None
        ax.axvline(m.at, color=colour, linestyle=style, linewidth=width,
                   alpha=0.45 if under else 0.95, zorder=2 if under else 2.5,
                   label=label)  # fmt: skip
        labelled.add(m.kind)
        # near the right edge a label goes to the left of its line, inside the plot
        left = (m.at - start) > (end - start) * 0.8
        ax.annotate(m.label, (m.at, height), xycoords=("data", "axes fraction"),
                    xytext=(-3 if left else 3, 0), textcoords="offset points",
                    ha="right" if left else "left", va="top", fontsize=6.5, color=colour,
                    bbox={"facecolor": "white", "alpha": 0.8, "pad": 0.6,
                          "linewidth": 0})  # fmt: skip
