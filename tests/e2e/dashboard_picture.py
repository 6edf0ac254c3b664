"""The dashboard as a picture (docs/images/dashboard.svg): each panel's series, as a real Prometheus
answered its range queries, drawn in the dashboard's grid. ``tests/e2e/test_monitoring.py`` writes it
when ``DASHBOARD_PICTURE`` names a file."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

COLORS = ("#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0")
PANEL_W, PANEL_H, GAP = 590, 230, 10
LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class Series:
    legend: str
    points: Sequence[tuple[float, float]]  # (unix seconds, value)


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    series: Sequence[Series]


def legend_of(template: str, labels: dict[str, str]) -> str:
    return LEGEND.sub(lambda m: labels.get(m.group(1), ""), template).strip() or "value"


def _number(value: float, unit: str) -> str:
    if unit == "percentunit":
        return f"{value * 100:.0f}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"
    if value >= 1e6:
        return f"{value / 1e6:.0f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"


def _panel(panel: Panel, x: int, y: int) -> list[str]:
    parts = [
        f'<rect x="{x}" y="{y}" width="{PANEL_W}" height="{PANEL_H}" rx="4" fill="#181b1f" stroke="#2c3235"/>',
        f'<text x="{x + 12}" y="{y + 22}" fill="#d8d9da" font-size="14" font-weight="600">{escape(panel.title)}</text>',
    ]
    plot_x, plot_y, plot_w, plot_h = x + 52, y + 36, PANEL_W - 64, PANEL_H - 100
    points = [p for s in panel.series for p in s.points if math.isfinite(p[1])]
    if not points:
        parts.append(f'<text x="{plot_x}" y="{plot_y + 40}" fill="#8e8e8e" font-size="12">No data</text>')
        return parts
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    top = max(p[1] for p in points) or 1.0
    span = (t1 - t0) or 1.0
    for fraction in (0.0, 0.5, 1.0):
        line_y = plot_y + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{plot_x}" y1="{line_y:.1f}" x2="{plot_x + plot_w}" y2="{line_y:.1f}" stroke="#2c3235"/>'
        )
        parts.append(f'<text x="{plot_x - 6}" y="{line_y + 4:.1f}" fill="#8e8e8e" font-size="10" '
                     f'text-anchor="end">{escape(_number(top * fraction, panel.unit))}</text>')  # fmt: skip
    for index, series in enumerate(panel.series[: len(COLORS)]):
        coords = " ".join(
            f"{plot_x + plot_w * (t - t0) / span:.1f},{plot_y + plot_h * (1 - v / top):.1f}"
            for t, v in series.points
            if math.isfinite(v)
        )
        color = COLORS[index]
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        legend_y = y + PANEL_H - 52 + 14 * (index // 2)
        legend_x = x + 14 + (index % 2) * (PANEL_W // 2)
        if index < 6:
            parts.append(f'<rect x="{legend_x}" y="{legend_y - 8}" width="10" height="3" fill="{color}"/>')
            parts.append(f'<text x="{legend_x + 14}" y="{legend_y - 3}" fill="#c7d0d9" font-size="11">'
                         f"{escape(series.legend[:44])}</text>")  # fmt: skip
    return parts


def render(title: str, panels: Sequence[Panel]) -> str:
    columns = 2
    rows = math.ceil(len(panels) / columns)
    width = columns * PANEL_W + (columns + 1) * GAP
    height = 44 + rows * (PANEL_H + GAP) + GAP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Inter, Helvetica, Arial, sans-serif">',
        f'<rect width="{width}" height="{height}" fill="#111217"/>',
        f'<text x="{GAP + 4}" y="30" fill="#d8d9da" font-size="18" font-weight="600">{escape(title)}</text>',
    ]
    for index, panel in enumerate(panels):
        x = GAP + (index % columns) * (PANEL_W + GAP)
        y = 44 + (index // columns) * (PANEL_H + GAP)
        parts.extend(_panel(panel, x, y))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
