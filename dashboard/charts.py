"""Server-rendered inline SVG charts (no JavaScript, no external assets): stacked bars per day, a line per day and a
horizontal share bar. Every text is escaped; every bar and point carries a <title> (the browser's tooltip)."""

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#718096", "#b7791f", "#e53e3e")
STATUS_COLOURS = {
    "AVAILABLE": "#38a169",
    "CHARGING": "#2b6cb0",
    "BLOCKED": "#b7791f",
    "RESERVED": "#805ad5",
    "INOPERATIVE": "#e53e3e",
    "OUTOFORDER": "#9b2c2c",
    "PLANNED": "#a0aec0",
    "UNKNOWN": "#718096",
}
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    return float(math.ceil(value / step) * step)  # 100 % stays 100 (not 200); 51.3 → 60


def _frame(title: str, y_max: float, unit: str, days: Sequence[str]) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dashboard-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i in range(5):
        value = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>')
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="#4a5568">'
            f"{escape(_fmt(value))}</text>"
        )
    parts.append(f'<text x="4" y="{TOP + 8}" font-size="10" fill="#4a5568">{escape(unit)}</text>')
    step = max(1, len(days) // 8)
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(days))
    for i, day in enumerate(days):
        if i % step == 0:
            x = LEFT + slot * (i + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 10}" font-size="10" text-anchor="middle" fill="#4a5568">'
                f"{escape(day[5:])}</text>"
            )
    return parts


def stacked_bars(
    title: str,
    days: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    unit: str,
    colours: dict[str, str] | None = None,
) -> SafeString:
    """One bar per day, the series stacked, and a legend below."""
    totals = [sum(values[i] for _, values in series) for i in range(len(days))]
    y_max = _nice_max(max(totals, default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(days))
    parts = _frame(title, y_max, unit, days)
    for index, (label, values) in enumerate(series):
        colour = (colours or {}).get(label, PALETTE[index % len(PALETTE)])
        for i, value in enumerate(values):
            if not value:
                continue
            below = sum(v[i] for _, v in series[:index])
            h = plot_h * value / y_max
            y = TOP + plot_h - plot_h * (below + value) / y_max
            parts.append(
                f'<rect class="bar" x="{LEFT + slot * i + slot * 0.1:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(days[i])} {escape(label)}: '
                f"{escape(_fmt(value))} {escape(unit)}</title></rect>"
            )
    parts.append("</svg>")
    legend = _legend(
        [(label, (colours or {}).get(label, PALETTE[i % len(PALETTE)])) for i, (label, _) in enumerate(series)]
    )
    return mark_safe("".join(parts) + legend)  # noqa: S308  # every text escaped above


def line(
    title: str, days: Sequence[str], values: Sequence[float | None], unit: str, colour: str = PALETTE[0]
) -> SafeString:
    """A line through the days that have a value, a dot on each."""
    y_max = _nice_max(max((v for v in values if v is not None), default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(days))
    parts = _frame(title, y_max, unit, days)
    points = [
        (LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * v / y_max, days[i], v)
        for i, v in enumerate(values)
        if v is not None
    ]
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for x, y, day, v in points:
        parts.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(day)}: '
            f"{escape(_fmt(v))} {escape(unit)}</title></circle>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  # every text escaped above


def share_bar(title: str, shares: Sequence[tuple[str, float]], colours: dict[str, str] | None = None) -> SafeString:
    """One horizontal bar split by shares (0..1), with a legend."""
    width, height = WIDTH, 36
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dashboard-chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    x = 0.0
    legend = []
    for index, (label, share) in enumerate(shares):
        colour = (colours or {}).get(label, PALETTE[index % len(PALETTE)])
        legend.append((f"{label} {share * 100:.1f} %", colour))
        if share <= 0:
            continue
        w = width * share
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="4" width="{w:.1f}" height="{height - 8}" fill="{colour}">'
            f"<title>{escape(label)}: {share * 100:.1f} %</title></rect>"
        )
        x += w
    parts.append("</svg>")
    return mark_safe("".join(parts) + _legend(legend))  # noqa: S308  # every text escaped above


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<ul class="dashboard-legend">'
        + "".join(f'<li><span style="background:{colour}"></span>{escape(label)}</li>' for label, colour in items)
        + "</ul>"
    )
