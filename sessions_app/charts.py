"""A session's charging periods, readable: one row per period (start, duration, every dimension with its unit) and a
small server-rendered SVG of power and energy over the session (no JavaScript; the style of dashboard/charts.py).

Power per period is the reported POWER / MAX_POWER (kW) when there is one, else the period's ENERGY over its charging
time (its TIME volume, else its length); energy is drawn cumulative, at the end of each period.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from dashboard.charts import PALETTE
from ocpi_core.envelope import parse_datetime

UNITS = {
    "ENERGY": "kWh",
    "ENERGY_EXPORT": "kWh",
    "ENERGY_IMPORT": "kWh",
    "TIME": "h",
    "PARKING_TIME": "h",
    "RESERVATION_TIME": "h",
    "POWER": "kW",
    "MAX_POWER": "kW",
    "MIN_POWER": "kW",
    "CURRENT": "A",
    "MAX_CURRENT": "A",
    "MIN_CURRENT": "A",
    "STATE_OF_CHARGE": "%",
}
ORDER = tuple(UNITS)
WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 48, 14, 26
POWER_COLOUR, ENERGY_COLOUR = PALETTE[0], PALETTE[1]


@dataclass(frozen=True)
class Period:
    """One charging period as read: start, end (the next period's start, the session's end, or None), dimensions."""

    index: int
    start: datetime
    end: datetime | None
    dimensions: dict[str, Decimal]
    tariff_id: str

    @property
    def duration(self) -> timedelta | None:
        return None if self.end is None else max(self.end - self.start, timedelta(0))

    def power_kw(self) -> Decimal | None:
        for name in ("POWER", "MAX_POWER"):
            if name in self.dimensions:
                return self.dimensions[name]
        energy = self.dimensions.get("ENERGY")
        hours = self.dimensions.get("TIME")
        if hours is None and self.duration is not None:
            hours = Decimal(int(self.duration.total_seconds())) / 3600
        if energy is None or not hours:
            return None
        return energy / hours


def read_periods(periods: Any, end: datetime | None) -> list[Period]:
    """The session's charging periods in order; unreadable entries are left out (the JSON is shown beside)."""
    rows: list[tuple[datetime, dict[str, Decimal], str]] = []
    for item in periods or []:
        if not isinstance(item, dict):
            continue
        try:
            start = parse_datetime(str(item.get("start_date_time")))
        except (TypeError, ValueError):
            continue
        dimensions: dict[str, Decimal] = {}
        for dimension in item.get("dimensions") or []:
            if isinstance(dimension, dict) and dimension.get("type") and dimension.get("volume") is not None:
                dimensions[str(dimension["type"])] = Decimal(str(dimension["volume"]))
        rows.append((start, dimensions, str(item.get("tariff_id") or "")))
    rows.sort(key=lambda row: row[0])
    return [
        Period(i, start, rows[i + 1][0] if i + 1 < len(rows) else end, dimensions, tariff_id)
        for i, (start, dimensions, tariff_id) in enumerate(rows)
    ]


def _number(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text if "." not in text or len(text.split(".")[1]) <= 4 else f"{value:.4f}"


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "running"
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"


def periods_table(periods: list[Period]) -> SafeString | str:
    """Start (UTC), duration, one column per dimension reported (with its unit), the tariff."""
    if not periods:
        return "—"
    present = [name for name in ORDER if any(name in p.dimensions for p in periods)]
    present += sorted({name for p in periods for name in p.dimensions} - set(present))
    labels = [f"{name} ({UNITS[name]})" if name in UNITS else name for name in present]
    head = format_html_join("", "<th>{}</th>", ((label,) for label in labels))
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td>{}<td>{}</td></tr>",
        (
            (
                p.index + 1,
                p.start.strftime("%Y-%m-%d %H:%M:%S UTC"),
                _duration(p.duration),
                format_html_join(
                    "",
                    '<td style="text-align:right">{}</td>',
                    ((_number(p.dimensions[name]) if name in p.dimensions else "—",) for name in present),
                ),
                p.tariff_id or "—",
            )
            for p in periods
        ),
    )
    return format_html(
        '<table class="charging-periods"><thead><tr><th>#</th><th>start</th><th>duration</th>{}<th>tariff</th></tr>'
        "</thead><tbody>{}</tbody></table>",
        head,
        body,
    )


def _nice(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    return float((int(value / magnitude) + 1) * magnitude)


def power_energy_chart(periods: list[Period], title: str = "Power and energy") -> SafeString | str:
    """Average power per period as bars (kW, left axis, as wide as the period) and the energy charged so far as a
    line (kWh, right axis), over the session's time (minutes from its start)."""
    timed = [p for p in periods if p.end is not None]
    if not timed:
        return ""
    start, end = timed[0].start, max(p.end for p in timed if p.end is not None)
    span = max((end - start).total_seconds(), 1.0)
    powers = [float(p.power_kw() or 0) for p in timed]
    totals, running = [], 0.0
    for p in timed:
        running += float(p.dimensions.get("ENERGY", 0))
        totals.append(running)
    p_max, e_max = _nice(max(powers, default=0)), _nice(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return LEFT + plot_w * (at - start).total_seconds() / span

    def y(value: float, top: float) -> float:
        return TOP + plot_h - plot_h * value / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="session-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i in range(5):
        level = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{level:.1f}" y2="{level:.1f}" stroke="#e2e8f0"/>')
        parts.append(
            f'<text x="{LEFT - 4}" y="{level + 4:.1f}" font-size="10" text-anchor="end" fill="{POWER_COLOUR}">'
            f"{p_max * i / 4:g}</text>"
            f'<text x="{WIDTH - RIGHT + 4}" y="{level + 4:.1f}" font-size="10" fill="{ENERGY_COLOUR}">'
            f"{e_max * i / 4:g}</text>"
        )
    parts.append(f'<text x="4" y="{TOP - 2}" font-size="10" fill="{POWER_COLOUR}">kW</text>')
    parts.append(f'<text x="{WIDTH - 30}" y="{TOP - 2}" font-size="10" fill="{ENERGY_COLOUR}">kWh</text>')
    for minutes in (0, span / 120, span / 60):
        parts.append(
            f'<text x="{LEFT + plot_w * minutes * 60 / span:.1f}" y="{HEIGHT - 8}" font-size="10" '
            f'text-anchor="middle" fill="#4a5568">{minutes:.0f} min</text>'
        )
    for p, power in zip(timed, powers, strict=True):
        left, right = x(p.start), x(p.end or end)
        top = y(power, p_max)
        parts.append(
            f'<rect class="bar" x="{left + 0.5:.1f}" y="{top:.1f}" width="{max(right - left - 1, 1):.1f}" '
            f'height="{TOP + plot_h - top:.1f}" fill="{POWER_COLOUR}" fill-opacity="0.7"><title>period {p.index + 1}: '
            f"{power:.2f} kW</title></rect>"
        )
    points = [(x(start), y(0, e_max), 0.0)] + [
        (x(p.end), y(total, e_max), total) for p, total in zip(timed, totals, strict=True) if p.end is not None
    ]
    path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{ENERGY_COLOUR}" stroke-width="2"/>')
    for px, py, total in points[1:]:
        parts.append(
            f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{ENERGY_COLOUR}">'
            f"<title>{total:.3f} kWh so far</title></circle>"
        )
    parts.append("</svg>")
    legend = (
        f'<div style="font-size:11px"><span style="color:{POWER_COLOUR}">■ average power (kW)</span> &nbsp; '
        f'<span style="color:{ENERGY_COLOUR}">● energy charged (kWh)</span></div>'
    )
    return mark_safe("".join(parts) + legend)  # noqa: S308  # numbers only, and the title escaped
