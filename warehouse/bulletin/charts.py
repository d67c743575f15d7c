"""The bulletin's charts, as inline SVG drawn here (no library, no script, nothing fetched).

Charts must not mislead. The monthly reports count millions of cases a month; record-level
months of a small delivery count thousands; bad reviews are a fraction of a percent of all
reviews. On one axis the small series reads as a collapse to zero. So the series of a chart are
grouped by scale: a series whose peak is under 1/``SCALE_RATIO`` of the largest series of its
group, or that is all zero, gets its own panel with its own axis, stacked under the others on
the same months, and the chart returns a note saying so (the caption prints it).

Every string that reaches the SVG goes through ``html.escape``; the SVG is then inserted into
the HTML template as markup.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import date

from warehouse.bulletin.collect import BulletinData
from warehouse.bulletin.volume import SOURCE_ZH
from warehouse.formatting import format_magnitude, format_percent

PALETTE = {"records": "#1f5fa8", "monthly_report": "#d9822b", "bad": "#b3261e", "good": "#1e7b34"}
SCALE_RATIO = 20  # series further apart than this get separate panels
WIDTH, LEFT, RIGHT = 1000, 70, 20
PANEL_H, PANEL_TOP, PANEL_BOTTOM = 170, 34, 26


@dataclass
class Series:
    label: str
    colour: str
    kind: str  # bar | line | dash
    values: list[int | None]

    @property
    def peak(self) -> float:
        return max([v for v in self.values if v is not None] or [0])


def by_scale(series: list[Series]) -> list[list[Series]]:
    """Series grouped into panels: each group's series are within ``SCALE_RATIO`` of its largest."""
    groups: list[list[Series]] = []
    for s in sorted(series, key=lambda s: -s.peak):
        if groups and s.peak > 0 and s.peak * SCALE_RATIO >= groups[-1][0].peak:
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


def _scale_note(groups: list[list[Series]]) -> str:
    if len(groups) < 2:
        return ""
    top = groups[0][0].peak
    zero = [s.label for g in groups[1:] for s in g if s.peak == 0]
    apart = [g for g in groups[1:] if g[0].peak > 0]
    parts = [
        f"{'、'.join(s.label for s in g)}最大值约为{groups[0][0].label}的{_ratio_text(g[0].peak / top)}" for g in apart
    ]
    note = "；".join(parts) + ("。量级相差悬殊，分图绘制，各图刻度不同，不能按高度直接比较。" if parts else "")
    if zero:
        note += f"{'、'.join(zero)}各月均为0，单独绘制，以免与横轴重合。"
    return note


def _ratio_text(share: float) -> str:
    return f"1/{round(1 / share):,}".replace(",", "") if share < 0.01 else format_percent(100 * share)


def _nice_max(value: float) -> tuple[float, float]:
    """(axis maximum, tick step) with 4-6 ticks of 1, 2, 2.5 or 5 x 10^k."""
    if value <= 0 or not math.isfinite(value):
        return 1.0, 0.25
    raw = value / 5
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        step = m * power
        if step >= raw:
            break
    return step * math.ceil(value / step - 1e-9), step


def month_tick(m: date, first: bool) -> str:
    return f"{m.year}年{m.month}月" if first or m.month == 1 else f"{m.month}月"


def _text(x: float, y: float, text: str, size: int = 11, anchor: str = "start", fill: str = "#5f6b7a") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}">'
        f"{html.escape(text)}</text>"
    )


def _svg(height: int, label: str, body: list[str]) -> str:
    e = html.escape(label)
    return "\n".join(
        [
            f'<svg viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
            f'aria-label="{e}">',
            f"<title>{e}</title>",
            f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
            *body,
            "</svg>",
        ]
    )


def _legend(items: list[Series], x: float, y: float) -> list[str]:
    out = []
    for s in items:
        if s.kind == "bar":
            out.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="14" height="10" fill="{s.colour}"/>')
        else:
            dash = ' stroke-dasharray="5 3"' if s.kind == "dash" else ""
            out.append(
                f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 16:.1f}" y2="{y - 4:.1f}" '
                f'stroke="{s.colour}" stroke-width="2.5"{dash}/>'
            )
        out.append(_text(x + 20, y, s.label, 12, fill="#1d2733"))
        x += 34 + 13 * len(s.label)
    return out


def _panel(top: float, group: list[Series], months: list[date], unit: str) -> list[str]:
    """One panel: its own y axis (ticks, unit), month ticks, bars and lines of its series."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, PANEL_H - PANEL_TOP - PANEL_BOTTOM
    base = top + PANEL_TOP + plot_h
    y_max, step = _nice_max(max(s.peak for s in group))
    out = _legend(group, LEFT + 10, top + 18)
    tick = 0.0
    while tick <= y_max + step / 1000:
        y = base - plot_h * tick / y_max
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e3e7ed"/>')
        out.append(_text(LEFT - 6, y + 4, format_magnitude(tick), anchor="end"))
        tick += step
    out.append(f'<line x1="{LEFT}" y1="{base:.1f}" x2="{WIDTH - RIGHT}" y2="{base:.1f}" stroke="#8a94a3"/>')
    out.append(_text(LEFT - 6, top + PANEL_TOP - 8, unit, anchor="end"))
    slot = plot_w / max(len(months), 1)
    every = max(1, math.ceil(len(months) / 14))
    for i, m in enumerate(months):
        if i % every == 0 or m.month == 1:
            out.append(_text(LEFT + slot * (i + 0.5), base + 16, month_tick(m, i == 0), anchor="middle"))
    bars = [s for s in group if s.kind == "bar"]
    bar_w = slot * 0.8 / max(len(bars), 1)
    for j, s in enumerate(bars):
        for i, v in enumerate(s.values):
            if v is None:
                continue
            h = max(plot_h * v / y_max, 1.5 if v > 0 else 0)  # a small month stays visible
            x = LEFT + slot * i + slot * 0.1 + bar_w * j
            out.append(
                f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{max(bar_w - 0.5, 0.5):.1f}" height="{h:.1f}" '
                f'fill="{s.colour}"><title>{html.escape(month_tick(months[i], True))} '
                f"{html.escape(s.label)} {html.escape(format_magnitude(v, unit))}</title></rect>"
            )
    for s in group:
        if s.kind == "bar":
            continue
        dash = ' stroke-dasharray="5 3"' if s.kind == "dash" else ""
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append((LEFT + slot * (i + 0.5), base - plot_h * v / y_max))
        for run in runs:
            if len(run) > 1:
                pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                out.append(f'<polyline points="{pts}" fill="none" stroke="{s.colour}" stroke-width="2.2"{dash}/>')
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.4" fill="{s.colour}"/>' for x, y in run]
    return out


def panel_chart(label: str, unit: str, months: list[date], series: list[Series]) -> tuple[str, str]:
    """(SVG, note) of a monthly chart; series of very different scale in separate panels."""
    series = [s for s in series if any(v is not None for v in s.values)]
    groups = by_scale(series) or [[Series("", "#ffffff", "line", [])]]
    body: list[str] = []
    for k, group in enumerate(groups):
        body += ['<g class="panel">', *_panel(k * PANEL_H, group, months, unit), "</g>"]
    return _svg(PANEL_H * len(groups), label, body), _scale_note(groups)


def _measure(data: BulletinData, source: str | None, measure: str) -> list[int | None]:
    """A measure per month of the chart, from one source (or summed over sources when None)."""
    out = []
    for _, by in data.volume:
        values = [
            v.get(measure) for s, v in by.items() if (source is None or s == source) and v.get(measure) is not None
        ]
        out.append(sum(values) if values else None)
    return out


def chart_case_volume(data: BulletinData) -> tuple[str, str]:
    """Bars: cases per month, one series per source (明细, 月报)."""
    months = [m for m, _ in data.volume]
    series = [
        Series(f"办件量（{SOURCE_ZH[s]}）", PALETTE[s], "bar", _measure(data, s, "cases"))
        for s in ("monthly_report", "records")
    ]
    return panel_chart("月度办件量（件）", "件", months, series)


def chart_reviews(data: BulletinData) -> tuple[str, str]:
    """Lines: valid reviews per month by source, and bad reviews (both sources)."""
    months = [m for m, _ in data.volume]
    series = [
        Series(f"有效评价（{SOURCE_ZH[s]}）", PALETTE[s], "line", _measure(data, s, "reviews"))
        for s in ("monthly_report", "records")
    ]
    series.append(Series("差评（合计）", PALETTE["bad"], "dash", _measure(data, None, "bad_reviews")))
    return panel_chart("月度有效评价数（条）", "条", months, series)


def chart_channels(data: BulletinData) -> str:
    """Horizontal bars: cases of the bulletin month by channel, with count and share."""
    total = sum(n for _, n in data.channels)
    left, row_h = 110, 34
    peak = max([n for _, n in data.channels] or [1])
    bar_max = WIDTH - left - 220
    body = _legend(
        [
            Series("网上申办（网上办理、移动端）", PALETTE["records"], "bar", []),
            Series("线下申办", "#8a94a3", "bar", []),
        ],
        WIDTH - 420,
        16,
    )
    for i, (channel, n) in enumerate(data.channels):
        y = 24 + i * row_h
        w = bar_max * n / peak
        colour = PALETTE["records"] if channel in ("网上办理", "移动端") else "#8a94a3"
        share = format_percent(100 * n / total) if total else "—"
        body += [
            _text(left - 10, y + 17, channel, 13, "end", "#1d2733"),
            f'<rect x="{left}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row_h - 12}" fill="{colour}"/>',
            _text(left + w + 8, y + 17, f"{format_magnitude(n, '件')}（{share}）", 13, fill="#1d2733"),
        ]
    if not data.channels:
        body.append(_text(left, 40, "本月暂无办件明细", 13))
    return _svg(30 + row_h * max(len(data.channels), 1) + 10, f"{data.period_label}办件申办渠道构成", body)
