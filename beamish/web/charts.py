"""Bar charts as SVG, drawn by the server (sans-I/O: numbers in, markup out).

A chart is an ``<svg role="img">`` whose ``<title>`` and ``<desc>`` say what it shows and
its totals in words, and whose every bar carries its own ``<title>`` (label and value), so a
screen reader has the numbers without the table beside it (which the page shows anyway).
Colours come from the stylesheet (``.chart-bar``, ``.chart-text``): the Content-Security-
Policy allows no inline style, and the classes follow the light and dark themes.

* :func:`column_chart` — one column per point, left to right (usage per day);
* :func:`bar_chart` — one labelled bar per row, top to bottom (usage per model, provider,
  task type); at most :data:`MAX_BARS` bars (the rest are summed into one "others" bar).

Every label is escaped; the chart's size is bounded by :data:`MAX_COLUMNS` and
:data:`MAX_BARS` whatever the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from markupsafe import Markup, escape

MAX_COLUMNS: Final = 400
MAX_BARS: Final = 20
WIDTH: Final = 640
COLUMN_HEIGHT: Final = 180
BAR_HEIGHT: Final = 22
LABEL_WIDTH: Final = 220
_PAD: Final = 24


def _head(chart_id: str, title: str, description: str, width: int, height: int) -> str:
    return (f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
            f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
            f'xmlns="http://www.w3.org/2000/svg">'
            f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
            f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>')


def _describe(points: Sequence[tuple[str, int]], unit: str) -> str:
    total = sum(value for _, value in points)
    if not points or total == 0:
        return f"No {unit} in this range."
    top_label, top_value = max(points, key=lambda point: point[1])
    return (f"{total} {unit} in all over {len(points)} entries; the most, {top_value}, "
            f"for {top_label}.")


def column_chart(chart_id: str, title: str, points: Sequence[tuple[str, int]],
                 unit: str) -> Markup:
    """Columns for ``points`` (label, value), in order; the first and last labels under
    the axis. Only the last :data:`MAX_COLUMNS` points are drawn."""
    shown = list(points)[-MAX_COLUMNS:]
    height = COLUMN_HEIGHT + _PAD
    parts = [_head(chart_id, title, _describe(shown, unit), WIDTH, height)]
    peak = max((value for _, value in shown), default=0)
    step = WIDTH / max(1, len(shown))
    parts.append(f'<line class="chart-axis" x1="0" y1="{COLUMN_HEIGHT}" x2="{WIDTH}" '
                 f'y2="{COLUMN_HEIGHT}"/>')
    for index, (label, value) in enumerate(shown):
        tall = 0.0 if peak == 0 else (COLUMN_HEIGHT - 4) * value / peak
        parts.append(
            f'<rect class="chart-bar" x="{index * step + step * 0.1:.1f}" '
            f'y="{COLUMN_HEIGHT - tall:.1f}" width="{max(1.0, step * 0.8):.1f}" '
            f'height="{tall:.1f}"><title>{escape(label)}: {value} {escape(unit)}</title></rect>')
    if shown:
        parts.append(f'<text class="chart-text" x="0" y="{height - 6}">'
                     f'{escape(shown[0][0])}</text>')
        parts.append(f'<text class="chart-text" x="{WIDTH}" y="{height - 6}" '
                     f'text-anchor="end">{escape(shown[-1][0])}</text>')
    parts.append(f'<text class="chart-text" x="4" y="14">max {peak}</text></svg>')
    return Markup("".join(parts))


def _capped(rows: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    ordered = sorted(rows, key=lambda row: (-row[1], row[0]))
    if len(ordered) <= MAX_BARS:
        return ordered
    kept, rest = ordered[:MAX_BARS - 1], ordered[MAX_BARS - 1:]
    return [*kept, (f"{len(rest)} others", sum(value for _, value in rest))]


def bar_chart(chart_id: str, title: str, rows: Sequence[tuple[str, int]],
              unit: str) -> Markup:
    """One horizontal bar per row (label, value), largest first."""
    shown = _capped(rows)
    height = max(1, len(shown)) * (BAR_HEIGHT + 6) + 6
    parts = [_head(chart_id, title, _describe(shown, unit), WIDTH, height)]
    peak = max((value for _, value in shown), default=0)
    room = WIDTH - LABEL_WIDTH - 70
    for index, (label, value) in enumerate(shown):
        y = 6 + index * (BAR_HEIGHT + 6)
        wide = 0.0 if peak == 0 else room * value / peak
        short = label if len(label) <= 30 else label[:29] + "…"
        parts.append(
            f'<text class="chart-text" x="{LABEL_WIDTH - 8}" y="{y + BAR_HEIGHT - 6}" '
            f'text-anchor="end">{escape(short)}</text>'
            f'<rect class="chart-bar" x="{LABEL_WIDTH}" y="{y}" width="{wide:.1f}" '
            f'height="{BAR_HEIGHT}"><title>{escape(label)}: {value} {escape(unit)}</title></rect>'
            f'<text class="chart-text" x="{LABEL_WIDTH + wide + 6:.1f}" '
            f'y="{y + BAR_HEIGHT - 6}">{value}</text>')
    if not shown:
        parts.append(f'<text class="chart-text" x="8" y="22">No {escape(unit)} in this '
                     'range.</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


__all__ = ["MAX_BARS", "MAX_COLUMNS", "bar_chart", "column_chart"]
