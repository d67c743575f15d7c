"""The bureau's bulletin: ``bulletin.html`` (self-contained) and ``bulletin.md``, latest period.

The bulletin period is the latest month with a city-wide monthly KPI (else the latest month of
``marts.service_volume_monthly``). For every KPI, the figure stated is its latest city-wide value
(largest ``period_start``; on a tie the finer grain); a figure whose period is not the bulletin
month says which period it is for (a register snapshot date, an indicator's reporting date).

What it holds:

* the KPIs in the bureau's own sentences (``一体化政务服务平台累计办件量7085.4万件，...``),
  figures formatted by :mod:`warehouse.formatting`; where the catalogue has a published
  reference figure that the computed figure does not match at the precision shown, the
  published figure is given next to it with a mark;
* a table of every KPI with its period, numerator / denominator, the published figure and
  whether they agree;
* charts (inline SVG, drawn here; no scripts, fonts or anything fetched): monthly case volume
  and monthly reviews (``marts.service_volume_monthly``, both sources), and the channel mix of
  the cases of the bulletin month (``latest.service_cases``);
* the data-quality summary: batches behind the bulletin (data up to the end of the bulletin
  month, plus registers and unreadable files, which carry no period) by status, rows read /
  loaded / quarantined / skipped, quarantined rows by rule with the clerk's message, files
  that failed or were partly loaded, and the expectations currently failing;
* the numbered list of source files (``quality.load_batches``) that every figure cites.

Every string from the data is escaped (``html.escape`` for HTML, code spans and escapes for
Markdown). Only ``SELECT`` statements run: the bulletin can be written from the analysts'
read-only snapshot.
"""

from __future__ import annotations

import calendar
import html
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from string import Template

import duckdb

from expectations.contract import all_contracts
from warehouse.formatting import format_kpi, format_magnitude, format_percent

TEMPLATE = Path(__file__).parent / "templates" / "bulletin.html"
ORGANISATION = "沈阳市大数据管理局"
CITY = "沈阳市"

GRAIN_RANK = {"day": 0, "snapshot": 1, "month": 2, "quarter": 3, "year": 4}
STATUS_ZH = {
    "loaded": "已载入",
    "partially_loaded": "部分载入",
    "failed": "失败",
    "superseded": "已被取代",
    "duplicate": "重复报送",
}
STATUS_ORDER = ["loaded", "partially_loaded", "superseded", "duplicate", "failed"]
SOURCE_ZH = {"records": "明细", "monthly_report": "月报"}
SEVERITY_ZH = {"error": "阻断", "warn": "提示"}
MISSING_NOTE = "以下指标本期无数据（缺少输入数据的统计期不出数，不记为0）"
CHART_MONTHS = 36  # the charts show at most the last three years
QUARTER_ZH = "一二三四"
DIGIT_ZH = "〇一二三四五六七八九十"

# ---------------------------------------------------------------------------------------------
# The bureau's sentences. A sentence is (prefix, clauses, suffix); a clause is a list of
# alternatives, the first whose figures are all present is used, a clause with none is left out,
# and a sentence without any clause is left out. ``{code}`` is the figure as formatted,
# ``{code@prev}`` the previous different value of that KPI, ``{code|text}`` the figure written
# as ``text``. An alternative may carry a condition on the figures.

Alternative = tuple[str, object] | str


def _levels_full(figs: dict) -> bool:
    f = figs.get("extranet_levels_covered")
    return f is not None and f.value == 4


def _bandwidth_raised(figs: dict) -> bool:
    f = figs.get("egress_bandwidth_gbps")
    return f is not None and f.previous is not None and f.previous < f.value


SECTIONS: list[tuple[str, list[tuple[str, list[list[Alternative]], str]]]] = [
    (
        "一、政务服务“一网通办”",
        [
            (
                "截至{period}，",
                [
                    ["一体化政务服务平台累计办件量{case_volume_cumulative}"],
                    ["归集有效“好差评”数据{review_valid_cumulative}"],
                ],
                "。",
            ),
            (
                "全市依申请政务服务事项",
                [
                    ["可网办率达{item_online_rate}"],
                    ["全程网办事项占比达{item_full_online_share}"],
                    ["即办事项占比达{item_instant_share}"],
                    ["网上实办率达{case_online_rate}"],
                ],
                "。",
            ),
            (
                "",
                [
                    ["一体化政务服务平台汇聚市、区两级{departments_onboarded}部门网上办事能力"],
                    [
                        "全市已有{street_portals}街道（乡镇）、{community_portals}社区（村）建设线上服务主页",
                        "全市已有{street_portals}街道（乡镇）建设线上服务主页",
                        "全市已有{community_portals}社区（村）建设线上服务主页",
                    ],
                ],
                "。",
            ),
        ],
    ),
    (
        "二、数字底座",
        [
            (
                "",
                [
                    ["全市政务外网接入点位已达{extranet_nodes}"],
                    [
                        ("实现{extranet_levels_covered|四级}全覆盖", _levels_full),
                        "覆盖{extranet_levels_covered}",
                    ],
                    [
                        (
                            "互联网出口带宽由{egress_bandwidth_gbps@prev}提升至{egress_bandwidth_gbps}",
                            _bandwidth_raised,
                        ),
                        "互联网出口带宽达{egress_bandwidth_gbps}",
                    ],
                    ["IPv4/IPv6双栈运行的接入点占比达{ipv6_dual_stack_share}"],
                ],
                "。",
            ),
            (
                "",
                [
                    ["政务云现已承载业务系统{cloud_systems_hosted}"],
                    ["非涉密业务系统上云率达{cloud_rate_nonclassified}"],
                    ["累计关停部门自有机房{machine_rooms_closed}"],
                ],
                "。",
            ),
        ],
    ),
    (
        "三、政务数据资源",
        [
            (
                "",
                [
                    ["建成{base_libraries}基础库"],
                    ["形成{theme_libraries}主题库"],
                    [
                        "通过政务数据共享交换平台发布可共享的政务数据资源目录{shared_catalog_entries}"
                    ],
                    ["累计归集数据信息{records_aggregated}"],
                ],
                "。",
            ),
        ],
    ),
    (
        "四、数字社会",
        [
            (
                "",
                [
                    ["完成{internet_hospitals}互联网医院建设"],
                    [
                        "在{grassroots_medical_on_system}基层医疗卫生机构部署上线疫情防控信息化管理系统"
                    ],
                ],
                "。",
            ),
            (
                "",
                [
                    ["“便捷停车”应用场景已接入{parking_lots_connected}备案公共经营性停车场"],
                    ["{mobile_services}高频便民服务事项实现“掌上办”"],
                    ["{one_thing_items}“一件事”上线运行"],
                ],
                "。",
            ),
        ],
    ),
    (
        "五、企业上云",
        [
            (
                "",
                [
                    ["全市累计政策支持上云企业{enterprises_to_cloud}"],
                    ["市区两级累计拨付上云补贴资金{cloud_subsidy_yuan}"],
                ],
                "。",
            ),
        ],
    ),
    (
        "六、服务质量（内部监测指标）",
        [
            (
                "",
                [
                    ["政务服务好评率为{satisfaction_rate}"],
                    ["差评整改率为{bad_review_rectification_rate}"],
                    ["其中系统默认好评占有效评价的{auto_review_share}"],
                ],
                "。",
            ),
            (
                "",
                [
                    ["办件按时办结率为{on_time_completion_rate}"],
                    ["办理时长中位数为{median_handling_days}"],
                ],
                "。",
            ),
        ],
    ),
]

_PLACEHOLDER = re.compile(r"\{([a-z0-9_]+)(?:@(prev)|\|([^}]*))?\}")


# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class Figure:
    code: str
    name_zh: str
    unit: str
    value: float
    grain: str
    period_start: date
    numerator: float | None
    denominator: float | None
    batch_ids: list[str]
    reference: float | None = None
    definition: str = ""
    previous: float | None = None  # the previous different value (for 由…提升至…)
    sources: list[int] = field(default_factory=list)  # numbers in the source list

    @property
    def text(self) -> str:
        return format_kpi(self.value, self.unit)

    @property
    def reference_text(self) -> str | None:
        return None if self.reference is None else format_kpi(self.reference, self.unit)

    @property
    def differs(self) -> bool:
        """The computed figure, as shown, is not the published one."""
        return self.reference is not None and self.reference_text != self.text

    @property
    def period_label(self) -> str:
        return period_label(self.grain, self.period_start)


@dataclass
class Source:
    number: int
    batch_id: str
    dataset: str | None
    source_path: str | None
    status: str | None
    received_at: datetime | None


@dataclass
class BulletinData:
    period: date | None  # first day of the bulletin month
    figures: dict[str, Figure]
    order: list[str]  # catalogue order
    missing: list[tuple[str, str]]  # (code, name_zh) of catalogue KPIs without a city figure
    sources: list[Source]
    volume: list[tuple[date, dict[str, dict[str, int | None]]]]  # month -> source -> measures
    channels: list[tuple[str, int]]
    quality: dict
    run_id: str

    @property
    def period_label(self) -> str:
        return period_label("month", self.period) if self.period else "暂无数据"


def period_label(grain: str, start: date | None) -> str:
    """``('month', 2023-03-01)`` -> ``'2023年3月'``; quarter ``'2023年第一季度'``;
    year ``'2023年'``;
    day and snapshot ``'2023年3月31日'``."""
    if start is None:
        return ""
    if grain == "month":
        return f"{start.year}年{start.month}月"
    if grain == "quarter":
        return f"{start.year}年第{QUARTER_ZH[(start.month - 1) // 3]}季度"
    if grain == "year":
        return f"{start.year}年"
    return f"{start.year}年{start.month}月{start.day}日"


def _month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def _in_month(grain: str, start: date, month: date | None) -> bool:
    """Whether a figure's period is the bulletin month (needs no period note)."""
    if month is None:
        return False
    if grain == "month":
        return start == month
    if grain in ("day", "snapshot"):
        return month <= start <= _month_end(month)
    return False


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM (SELECT table_name AS t FROM duckdb_tables() "
            "WHERE schema_name = ? AND table_name = ? AND database_name = current_database() "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE schema_name = ? "
            "AND view_name = ? AND database_name = current_database())",
            [schema, table, schema, table],
        ).fetchone()[0]
    )


def _bulletin_month(con: duckdb.DuckDBPyConnection) -> date | None:
    row = con.execute(
        "SELECT max(period_start) FROM marts.kpi_values WHERE scope = 'city' "
        "AND period_grain = 'month'"
    ).fetchone()
    if row[0] is None and _exists(con, "marts", "service_volume_monthly"):
        row = con.execute("SELECT max(month) FROM marts.service_volume_monthly").fetchone()
    if row[0] is None:
        row = con.execute(
            "SELECT max(period_start) FROM marts.kpi_values WHERE scope = 'city'"
        ).fetchone()
    return row[0].replace(day=1) if row[0] is not None else None


def _figures(
    con: duckdb.DuckDBPyConnection,
) -> tuple[dict[str, Figure], list[str], list[tuple[str, str]]]:
    catalogue: dict[str, tuple] = {}
    if _exists(con, "marts", "kpi_catalogue"):
        for code, name, unit, definition, reference in con.execute(
            "SELECT kpi_code, name_zh, unit, definition, reference FROM marts.kpi_catalogue"
        ).fetchall():
            catalogue[code] = (name, unit, definition, reference)
    rows = con.execute("""
        SELECT kpi_code, name_zh, unit, value, period_grain, period_start, numerator, denominator,
               batch_ids
        FROM marts.kpi_values
        WHERE scope = 'city' AND value IS NOT NULL AND NOT isnan(value)
        QUALIFY row_number() OVER (
            PARTITION BY kpi_code
            ORDER BY period_start DESC,
                     CASE period_grain WHEN 'day' THEN 0 WHEN 'snapshot' THEN 1 WHEN 'month' THEN 2
                                       WHEN 'quarter' THEN 3 WHEN 'year' THEN 4 ELSE 5 END) = 1
    """).fetchall()
    figures: dict[str, Figure] = {}
    for code, name, unit, value, grain, start, num, den, batches in rows:
        name_c, unit_c, definition, reference = catalogue.get(code, (None, None, "", None))
        figures[code] = Figure(
            code=code,
            name_zh=name or name_c or code,
            unit=unit if unit is not None else (unit_c or ""),
            value=float(value),
            grain=grain,
            period_start=start,
            numerator=num,
            denominator=den,
            batch_ids=list(batches or []),
            reference=reference,
            definition=definition or "",
        )
    for fig in figures.values():  # the previous different value, for 由…提升至…
        prev = con.execute(
            """
            SELECT value FROM marts.kpi_values
            WHERE kpi_code = ? AND scope = 'city' AND period_start < ? AND value IS NOT NULL
              AND value <> ?
            ORDER BY period_start DESC LIMIT 1""",
            [fig.code, fig.period_start, fig.value],
        ).fetchone()
        fig.previous = prev[0] if prev else None
    order = list(catalogue) + sorted(c for c in figures if c not in catalogue)
    missing = [(c, catalogue[c][0]) for c in catalogue if c not in figures]
    return figures, order, missing


def _sources(con: duckdb.DuckDBPyConnection, figures: dict[str, Figure]) -> list[Source]:
    wanted = sorted({b for f in figures.values() for b in f.batch_ids})
    known = {}
    if wanted:
        for batch_id, dataset, path, status, received in con.execute(
            "SELECT batch_id, dataset, source_path, status, received_at FROM quality.load_batches "
            "WHERE list_contains(?::VARCHAR[], batch_id)",
            [wanted],
        ).fetchall():
            known[batch_id] = (dataset, path, status, received)
    rank = {name: i for i, name in enumerate(all_contracts())}

    def key(b: str) -> tuple:
        dataset, path, _, received = known.get(b, (None, None, None, None))
        return (
            dataset is None,
            rank.get(dataset, len(rank)),
            received or datetime.max,
            path or "",
            b,
        )

    sources = [
        Source(i + 1, b, *known.get(b, (None, None, None, None)))
        for i, b in enumerate(sorted(wanted, key=key))
    ]
    number = {s.batch_id: s.number for s in sources}
    for f in figures.values():
        f.sources = sorted({number[b] for b in f.batch_ids})
    return sources


def _volume(con: duckdb.DuckDBPyConnection, month: date | None) -> list[tuple[date, dict]]:
    if not _exists(con, "marts", "service_volume_monthly") or month is None:
        return []
    rows = con.execute(
        """
        SELECT month, source, sum(cases), sum(online_cases), sum(reviews), sum(good_reviews),
               sum(bad_reviews),
               count(cases), count(reviews)
        FROM marts.service_volume_monthly
        WHERE month <= ?
        GROUP BY ALL ORDER BY month, source""",
        [month],
    ).fetchall()
    series: dict[date, dict] = {}
    for m, source, cases, online, reviews, good, bad, n_cases, n_reviews in rows:
        series.setdefault(m, {})[source] = {
            "cases": int(cases) if n_cases else None,
            "online_cases": int(online) if online is not None else None,
            "reviews": int(reviews) if n_reviews else None,
            "good_reviews": int(good) if good is not None else None,
            "bad_reviews": int(bad) if bad is not None else None,
        }
    months = sorted(series)[-CHART_MONTHS:]
    return [(m, series[m]) for m in months]


def _channels(con: duckdb.DuckDBPyConnection, month: date | None) -> list[tuple[str, int]]:
    if month is None or not _exists(con, "latest", "service_cases"):
        return []
    return [
        (c, int(n))
        for c, n in con.execute(
            "SELECT coalesce(channel, '（未填）'), count(*) AS n FROM latest.service_cases "
            "WHERE applied_at >= ? AND applied_at < ? + INTERVAL 1 MONTH "
            "GROUP BY ALL ORDER BY n DESC, 1",
            [month, month],
        ).fetchall()
    ]


def _period_key(text: str | None, last: bool) -> str | None:
    """A batch's period bound as ``YYYY-MM`` (``'2023'`` -> ``2023-01`` / ``2023-12``,
    ``'2023-Q1'`` ->
    ``2023-01`` / ``2023-03``, ``'2023-03-01 08:00:00'`` -> ``2023-03``)."""
    if not text:
        return None
    text = str(text).strip()
    if m := re.match(r"^(\d{4})-(\d{2})", text):
        return f"{m[1]}-{m[2]}"
    if m := re.match(r"^(\d{4})-?Q([1-4])", text, re.I):
        q = int(m[2])
        return f"{m[1]}-{3 * q if last else 3 * q - 2:02d}"
    if m := re.match(r"^(\d{4})$", text):
        return f"{m[1]}-{'12' if last else '01'}"
    return None


def _quality(con: duckdb.DuckDBPyConnection, month: date | None) -> dict:
    batches = con.execute(
        "SELECT batch_id, dataset, source_path, status, reason, rows_read, rows_loaded, "
        "rows_quarantined, rows_skipped, period_min, period_max, received_at "
        "FROM quality.load_batches ORDER BY received_at, batch_id"
    ).fetchall()
    bound = f"{month:%Y-%m}" if month else None
    selected = []
    for b in batches:
        start = _period_key(b[9], last=False)
        if bound is None or start is None or start <= bound:
            selected.append(b)
    ids = [b[0] for b in selected]
    by_status = {}
    for b in selected:
        by_status[b[3]] = by_status.get(b[3], 0) + 1
    totals = {
        k: sum(b[i] or 0 for b in selected)
        for k, i in (
            ("rows_read", 5),
            ("rows_loaded", 6),
            ("rows_quarantined", 7),
            ("rows_skipped", 8),
        )
    }
    problems = [
        {
            "dataset": b[1],
            "source_path": b[2],
            "status": b[3],
            "reason": b[4] or "",
            "rows_read": b[5],
            "rows_quarantined": b[7],
        }
        for b in selected
        if b[3] in ("failed", "partially_loaded")
    ]
    rules = []
    if ids:
        rules = [
            {"dataset": d, "rule": r, "message": msg, "rows": n, "files": f}
            for d, r, msg, n, f in con.execute(
                """
            SELECT dataset, rule, mode(message) AS message, count(*) AS n,
                   count(DISTINCT batch_id) AS files
            FROM quality.quarantine WHERE list_contains(?::VARCHAR[], batch_id)
            GROUP BY dataset, rule ORDER BY n DESC, dataset, rule""",
                [ids],
            ).fetchall()
        ]
    checks = con.execute("""
        SELECT dataset, suite, expectation, severity, success, CAST(observed_value AS VARCHAR),
               unexpected_count
        FROM quality.check_results
        QUALIFY row_number() OVER (PARTITION BY dataset, suite, expectation
                                   ORDER BY checked_at DESC) = 1
        ORDER BY dataset, suite, expectation""").fetchall()
    failed = [
        {
            "dataset": d,
            "suite": s,
            "expectation": e,
            "severity": sev,
            "observed": obs,
            "unexpected": n,
        }
        for d, s, e, sev, ok, obs, n in checks
        if not ok
    ]
    return {
        "batches": len(selected),
        "by_status": by_status,
        "totals": totals,
        "problems": problems,
        "rules": rules,
        "checks_run": len(checks),
        "checks_failed": failed,
    }


def collect(con: duckdb.DuckDBPyConnection, run_id: str) -> BulletinData:
    """Read everything the bulletin states (SELECTs only)."""
    month = _bulletin_month(con)
    figures, order, missing = _figures(con)
    return BulletinData(
        period=month,
        figures=figures,
        order=order,
        missing=missing,
        sources=_sources(con, figures),
        volume=_volume(con, month),
        channels=_channels(con, month),
        quality=_quality(con, month),
        run_id=run_id,
    )


# ---------------------------------------------------------------------------------------------
# Sentences, as a list of pieces: str or ("fig", Figure, text, is_previous)


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``'1–3, 5'``."""
    out, i = [], 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(str(numbers[i]) if i == j else f"{numbers[i]}–{numbers[j]}")
        i = j + 1
    return ", ".join(out)


def _pieces(template: str, figs: dict[str, Figure], period: str) -> list | None:
    out: list = []
    pos = 0
    template = template.replace("{period}", period)
    for m in _PLACEHOLDER.finditer(template):
        code, prev, override = m[1], m[2], m[3]
        fig = figs.get(code)
        if fig is None or (prev and fig.previous is None):
            return None
        out.append(template[pos : m.start()])
        if prev:
            out.append(("fig", fig, format_kpi(fig.previous, fig.unit), True))
        else:
            out.append(("fig", fig, override if override is not None else fig.text, False))
        pos = m.end()
    out.append(template[pos:])
    return [p for p in out if p != ""]


def sentences(data: BulletinData) -> list[tuple[str, list[list]]]:
    """[(section title, [sentence pieces, ...])] in the bureau's wording; figures used once each."""
    figs = data.figures
    used: set[str] = set()
    result = []
    for title, paragraph in SECTIONS:
        stated = []
        for prefix, clauses, suffix in paragraph:
            parts = []
            for alternatives in clauses:
                for alt in alternatives:
                    text, cond = (alt, None) if isinstance(alt, str) else alt
                    if cond is not None and not cond(figs):
                        continue
                    pieces = _pieces(text, figs, data.period_label)
                    if pieces is not None:
                        parts.append(pieces)
                        used.update(p[1].code for p in pieces if isinstance(p, tuple))
                        break
            if parts:
                sentence = _pieces(prefix, figs, data.period_label) or []
                for i, part in enumerate(parts):
                    sentence += ([("，")] if i else []) + part
                stated.append(sentence + [suffix])
        if stated:
            result.append((title, stated))
    others = [figs[c] for c in data.order if c in figs and c not in used]
    if others:
        sentence: list = ["此外，"]
        for i, f in enumerate(others):
            sentence += (["，"] if i else []) + [f"{f.name_zh}为", ("fig", f, f.text, False)]
        result.append(("七、其他指标", [sentence + ["。"]]))
    return result


# ---------------------------------------------------------------------------------------------
# SVG charts (drawn here: no library, no script)

PALETTE = {"records": "#1f5fa8", "monthly_report": "#d9822b", "bad": "#b3261e", "good": "#1e7b34"}


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


def _month_tick(m: date, first: bool) -> str:
    return f"{m.year}年{m.month}月" if first or m.month == 1 else f"{m.month}月"


def _svg_open(width: int, height: int, label: str) -> list[str]:
    e = html.escape(label)
    return [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{e}">',
        f"<title>{e}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]


def _legend(items: list[tuple[str, str, str]], x: float, y: float) -> list[str]:
    """items: (label, colour, 'bar'|'line'|'dash')."""
    out = []
    for label, colour, kind in items:
        if kind == "bar":
            out.append(
                f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="14" height="10" fill="{colour}"/>'
            )
        else:
            dash = ' stroke-dasharray="5 3"' if kind == "dash" else ""
            out.append(
                f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 16:.1f}" y2="{y - 4:.1f}" '
                f'stroke="{colour}" stroke-width="2.5"{dash}/>'
            )
        out.append(
            f'<text x="{x + 20:.1f}" y="{y:.1f}" font-size="12" fill="#1d2733">'
            f"{html.escape(label)}</text>"
        )
        x += 34 + 13 * len(label)
    return out


def _axes(
    width: int,
    height: int,
    left: int,
    top: int,
    bottom: int,
    y_max: float,
    step: float,
    unit: str,
    months: list[date],
) -> tuple[list[str], float, float]:
    plot_w, plot_h = width - left - 20, height - top - bottom
    out = []
    tick = 0.0
    while tick <= y_max + step / 1000:
        y = top + plot_h - plot_h * tick / y_max
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" stroke="#e3e7ed" '
            f'stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5f6b7a">'
            f"{html.escape(format_magnitude(tick))}</text>"
        )
        tick += step
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 20}" y2="{top + plot_h}" '
        f'stroke="#8a94a3"/>'
    )
    out.append(
        f'<text x="{left - 6}" y="{top - 8}" font-size="11" text-anchor="end" fill="#5f6b7a">'
        f"{html.escape(unit)}</text>"
    )
    slot = plot_w / max(len(months), 1)
    every = max(1, math.ceil(len(months) / 14))
    for i, m in enumerate(months):
        if i % every and m.month != 1:
            continue
        x = left + slot * (i + 0.5)
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle" '
            f'fill="#5f6b7a">'
            f"{html.escape(_month_tick(m, i == 0))}</text>"
        )
    return out, plot_w, plot_h


def chart_case_volume(data: BulletinData) -> str:
    """Grouped bars: cases per month, one bar per source (明细, 月报)."""
    months = [m for m, _ in data.volume]
    label = "月度办件量（件）"
    width, height, left, top, bottom = 1000, 320, 64, 40, 42
    values = [(s, v.get("cases")) for _, by in data.volume for s, v in by.items()]
    peak = max([v for _, v in values if v is not None] or [0])
    y_max, step = _nice_max(peak)
    out = _svg_open(width, height, label)
    axes, plot_w, plot_h = _axes(width, height, left, top, bottom, y_max, step, "件", months)
    out += axes
    slot = plot_w / max(len(months), 1)
    sources = [s for s in ("monthly_report", "records") if any(s in by for _, by in data.volume)]
    bar_w = slot * 0.8 / max(len(sources), 1)
    for i, (m, by) in enumerate(data.volume):
        for j, s in enumerate(sources):
            v = (by.get(s) or {}).get("cases")
            if v is None:
                continue
            h = max(plot_h * v / y_max, 1.5 if v > 0 else 0)  # a small month stays visible
            x = left + slot * i + slot * 0.1 + bar_w * j
            out.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar_w - 0.5, 0.5):.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[s]}"><title>{html.escape(_month_tick(m, True))} '
                f"{SOURCE_ZH[s]} {html.escape(format_magnitude(v, '件'))}</title></rect>"
            )
    out += _legend(
        [(f"办件量（{SOURCE_ZH[s]}）", PALETTE[s], "bar") for s in sources], left + 10, 22
    )
    out.append("</svg>")
    return "\n".join(out)


def chart_reviews(data: BulletinData) -> str:
    """Lines: valid reviews per month by source, and bad reviews (both sources)."""
    months = [m for m, _ in data.volume]
    label = "月度有效评价数（条）"
    width, height, left, top, bottom = 1000, 300, 64, 40, 42
    series: list[tuple[str, str, str, list[int | None]]] = []
    for s in ("monthly_report", "records"):
        vals = [(by.get(s) or {}).get("reviews") for _, by in data.volume]
        if any(v is not None for v in vals):
            series.append((f"有效评价（{SOURCE_ZH[s]}）", PALETTE[s], "line", vals))
    bad = []
    for _, by in data.volume:
        vs = [v.get("bad_reviews") for v in by.values() if v.get("bad_reviews") is not None]
        bad.append(sum(vs) if vs else None)
    if any(v is not None for v in bad):
        series.append(("差评（合计）", PALETTE["bad"], "dash", bad))
    peak = max([v for *_, vals in series for v in vals if v is not None] or [0])
    y_max, step = _nice_max(peak)
    out = _svg_open(width, height, label)
    axes, plot_w, plot_h = _axes(width, height, left, top, bottom, y_max, step, "条", months)
    out += axes
    slot = plot_w / max(len(months), 1)
    for _, colour, kind, vals in series:
        dash = ' stroke-dasharray="5 3"' if kind == "dash" else ""
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(vals):
            if v is None:
                runs.append([])
                continue
            runs[-1].append((left + slot * (i + 0.5), top + plot_h - plot_h * v / y_max))
        for run in runs:
            if len(run) > 1:
                pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                out.append(
                    f'<polyline points="{pts}" fill="none" stroke="{colour}" '
                    f'stroke-width="2.2"{dash}/>'
                )
            for x, y in run:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.4" fill="{colour}"/>')
    out += _legend([(n, c, k) for n, c, k, _ in series], left + 10, 22)
    out.append("</svg>")
    return "\n".join(out)


def chart_channels(data: BulletinData) -> str:
    """Horizontal bars: cases of the bulletin month by channel, with count and share."""
    total = sum(n for _, n in data.channels)
    label = f"{data.period_label}办件申办渠道构成"
    width, row_h, left = 1000, 34, 110
    height = 30 + row_h * max(len(data.channels), 1) + 10
    out = _svg_open(width, height, label)
    peak = max([n for _, n in data.channels] or [1])
    bar_max = width - left - 220
    for i, (channel, n) in enumerate(data.channels):
        y = 24 + i * row_h
        w = bar_max * n / peak
        online = channel in ("网上办理", "移动端")
        colour = PALETTE["records"] if online else "#8a94a3"
        out.append(
            f'<text x="{left - 10}" y="{y + 17}" font-size="13" text-anchor="end" fill="#1d2733">'
            f"{html.escape(channel)}</text>"
        )
        out.append(
            f'<rect x="{left}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row_h - 12}" '
            f'fill="{colour}"/>'
        )
        share = format_percent(100 * n / total) if total else "—"
        out.append(
            f'<text x="{left + w + 8:.1f}" y="{y + 17}" font-size="13" fill="#1d2733">'
            f"{html.escape(format_magnitude(n, '件'))}（{html.escape(share)}）</text>"
        )
    if not data.channels:
        out.append(f'<text x="{left}" y="40" font-size="13" fill="#5f6b7a">本月暂无办件明细</text>')
    out += _legend(
        [
            ("网上申办（网上办理、移动端）", PALETTE["records"], "bar"),
            ("线下申办", "#8a94a3", "bar"),
        ],
        width - 420,
        16,
    )
    out.append("</svg>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# HTML


def _e(text: object) -> str:
    return html.escape("" if text is None else str(text))


def _sentence_shared(sentence: list, period: date | None) -> tuple[str | None, list[int] | None]:
    """(period note, sources) common to every figure of a sentence, said once for the sentence
    (``截至2022年4月28日，…`` and one source mark at its end) instead of after each figure."""
    figs = [p[1] for p in sentence if isinstance(p, tuple) and not p[3]]
    if len(figs) < 2:
        return None, None
    labels = {None if _in_month(f.grain, f.period_start, period) else f.period_label for f in figs}
    sources = {tuple(f.sources) for f in figs}
    label = labels.pop() if len(labels) == 1 else None
    shared_sources = list(sources.pop()) if len(sources) == 1 else None
    if label and isinstance(sentence[0], str) and sentence[0].startswith("截至"):
        label = None  # the sentence already says its period
    return label, shared_sources


def _html_fig(piece: tuple, period: date | None, *, note: bool = True, refs: bool = True) -> str:
    _, fig, text, is_prev = piece
    out = f'<strong class="fig" title="{_e(fig.name_zh)}">{_e(text)}</strong>'
    if is_prev:
        return out
    if note and not _in_month(fig.grain, fig.period_start, period):
        out += f'<span class="when">（{_e(fig.period_label)}）</span>'
    if fig.sources and refs:
        out += _html_refs(fig.sources)
    if fig.differs:
        out += (
            f'<span class="diff" title="与公开发布的数字不一致">'
            f"⚠公布数为{_e(fig.reference_text)}</span>"
        )
    return out


def _html_refs(numbers: list[int]) -> str:
    return (
        f'<sup class="src"><a href="#src-{numbers[0]}" title="数据来源批次">'
        f"[{_e(_ranges(numbers))}]</a></sup>"
    )


def _html_sentence(sentence: list, period: date | None) -> str:
    label, shared = _sentence_shared(sentence, period)
    body = "".join(
        _html_fig(p, period, note=label is None, refs=shared is None)
        if isinstance(p, tuple)
        else _e(p)
        for p in sentence[:-1]
    )
    if shared:
        body += _html_refs(shared)
    return (f"截至{_e(label)}，" if label else "") + body + _e(sentence[-1])


def _html_sentences(data: BulletinData) -> str:
    out = []
    for title, stated in sentences(data):
        out.append(f"<h2>{_e(title)}</h2>")
        for sentence in stated:
            out.append(f'<p class="lead">{_html_sentence(sentence, data.period)}</p>')
    if data.missing:
        names = "、".join(n for _, n in data.missing)
        out.append(f'<p class="note">{MISSING_NOTE}：{_e(names)}。</p>')
    return "\n".join(out)


def _ratio(fig: Figure) -> str:
    if fig.numerator is None or fig.denominator is None:
        return ""
    return f"{format_magnitude(fig.numerator)} / {format_magnitude(fig.denominator)}"


def _check_mark(fig: Figure) -> tuple[str, str]:
    if fig.reference is None:
        return "", ""
    return ("bad", "⚠ 不一致") if fig.differs else ("ok", "✓ 一致")


class Cell(str):
    """An HTML table cell already rendered (escaped), with an optional CSS class."""

    css: str = ""

    def __new__(cls, html_text: str, css: str = "") -> Cell:
        cell = super().__new__(cls, html_text)
        cell.css = css
        return cell


def _html_table(headers: list[str], rows: list[list[object]]) -> str:
    """A table; a cell is plain data (escaped here) or a :class:`Cell` (rendered already)."""

    def td(value: object) -> str:
        if isinstance(value, Cell):
            return f'<td class="{value.css}">{value}</td>' if value.css else f"<td>{value}</td>"
        return f"<td>{_e(value)}</td>"

    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(td(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def _num(value: object) -> Cell:
    return Cell(_e(value), "num")


def _code_cell(value: object) -> Cell:
    return Cell(f"<code>{_e(value)}</code>")


def _html_kpi_table(data: BulletinData) -> str:
    rows = []
    for code in data.order:
        fig = data.figures.get(code)
        if fig is None:
            continue
        cls, mark = _check_mark(fig)
        rows.append(
            [
                Cell(f"{_e(fig.name_zh)}<br><code>{_e(code)}</code>"),
                Cell(f"<strong>{_e(fig.text)}</strong>", "num"),
                fig.period_label,
                _num(_ratio(fig)),
                _num(fig.reference_text or ""),
                Cell(_e(mark), cls),
                _ranges(fig.sources),
            ]
        )
    return _html_table(["指标", "数值", "统计期", "分子 / 分母", "公布数", "核对", "来源"], rows)


def _card(label: str, value: str) -> str:
    return (
        f'<div class="card"><div class="k">{_e(label)}</div><div class="v">{_e(value)}</div></div>'
    )


def _dataset_zh(name: str | None) -> str:
    contract = all_contracts().get(name or "")
    return f"{contract.title_zh}" if contract else (name or "")


def _html_quality(data: BulletinData) -> str:
    q = data.quality
    t = q["totals"]
    out = [
        f'<p class="note">范围：数据统计期不晚于{_e(data.period_label)}的文件批次，'
        "以及登记表和无法读取的文件"
        f"（二者没有统计期），共{q['batches']}个。</p>"
    ]
    out.append(
        '<div class="cards">'
        + "".join(
            [
                _card("文件批次", f"{q['batches']}个"),
                *[
                    _card(STATUS_ZH.get(s, s), f"{q['by_status'][s]}个")
                    for s in STATUS_ORDER
                    if s in q["by_status"]
                ],
                *[
                    _card(STATUS_ZH.get(s, s), f"{n}个")
                    for s, n in q["by_status"].items()
                    if s not in STATUS_ORDER
                ],
            ]
        )
        + "</div>"
    )
    out.append(
        '<div class="cards">'
        + "".join(
            [
                _card("读取行数", format_magnitude(t["rows_read"], "行")),
                _card("载入行数", format_magnitude(t["rows_loaded"], "行")),
                _card("隔离行数", format_magnitude(t["rows_quarantined"], "行")),
                _card("跳过的合计行", format_magnitude(t["rows_skipped"], "行")),
            ]
        )
        + "</div>"
    )
    if q["rules"]:
        out.append("<h3>隔离行（按规则）</h3>")
        rows = [
            [
                _dataset_zh(r["dataset"]),
                _code_cell(r["rule"]),
                r["message"],
                _num(r["rows"]),
                _num(r["files"]),
            ]
            for r in q["rules"]
        ]
        out.append(_html_table(["数据集", "规则", "说明", "行数", "涉及文件"], rows))
    else:
        out.append('<p class="note">本期没有被隔离的行。</p>')
    if q["problems"]:
        out.append("<h3>未完全载入的文件</h3>")
        rows = [
            [
                _code_cell(p["source_path"]),
                _dataset_zh(p["dataset"]),
                Cell(
                    _e(STATUS_ZH.get(p["status"], p["status"])),
                    "bad" if p["status"] == "failed" else "warn",
                ),
                p["reason"],
            ]
            for p in q["problems"]
        ]
        out.append(_html_table(["文件", "数据集", "状态", "原因"], rows))
    failed = q["checks_failed"]
    blocking = sum(1 for c in failed if c["severity"] == "error")
    out.append("<h3>数据校验</h3>")
    out.append(
        f"<p>共{q['checks_run']}项校验，{len(failed)}项未通过"
        f"{f'（其中{blocking}项为阻断级）' if failed else ''}。</p>"
    )
    if failed:
        rows = [
            [
                _dataset_zh(c["dataset"]),
                _code_cell(c["expectation"]),
                Cell(
                    _e(SEVERITY_ZH.get(c["severity"], c["severity"])),
                    "bad" if c["severity"] == "error" else "warn",
                ),
                c["observed"],
                _num(c["unexpected"]),
            ]
            for c in failed
        ]
        out.append(_html_table(["数据集", "校验项", "级别", "观测值", "不符行数"], rows))
    return "\n".join(out)


def _source_text(s: Source) -> tuple[str, str]:
    """(file, description) of a source batch."""
    if s.source_path is None:
        return s.batch_id, "未在载入记录中找到该批次"
    when = f"{s.received_at:%Y-%m-%d %H:%M}接收，" if s.received_at else ""
    return (
        s.source_path,
        f"{_dataset_zh(s.dataset)}，批次 {s.batch_id}，{when}{STATUS_ZH.get(s.status, s.status)}",
    )


def _html_sources(data: BulletinData) -> str:
    if not data.sources:
        return '<p class="note">无。</p>'
    items = []
    for s in data.sources:
        path, desc = _source_text(s)
        items.append(
            f'<li id="src-{s.number}" value="{s.number}"><code>{_e(path)}</code>　{_e(desc)}</li>'
        )
    return '<ol class="sources">' + "\n".join(items) + "</ol>"


def render_html(data: BulletinData) -> str:
    title = f"{CITY}政务数据运行公报（截至{data.period_label}）"
    generated = datetime.now().strftime("%Y-%m-%d %H:%M")
    volume_range = (
        f"{period_label('month', data.volume[0][0])}至{period_label('month', data.volume[-1][0])}"
        if data.volume
        else ""
    )
    body = [_html_sentences(data)]
    body.append("<h2>月度走势</h2>")
    if data.volume:
        body.append(
            f"<figure>{chart_case_volume(data)}<figcaption>图1　月度办件量（{_e(volume_range)}）。"
            "办件明细接入前的月份来自各部门报送的办件量月报，之后来自办件明细；两者都有的月份并列显示，"
            "统计以明细为准。</figcaption></figure>"
        )
        body.append(
            f"<figure>{chart_reviews(data)}<figcaption>"
            f"图2　月度有效“好差评”数（{_e(volume_range)}），"
            "按来源分列；虚线为差评（评价等级1、2）。</figcaption></figure>"
        )
    else:
        body.append('<p class="note">暂无月度办件数据。</p>')
    body.append(
        f"<figure>{chart_channels(data)}<figcaption>图3　{_e(data.period_label)}办件申办渠道构成"
        "（按申请时间归月，来自办件明细）。</figcaption></figure>"
    )
    body.append("<h2>指标一览</h2>")
    body.append(
        '<p class="note">各指标为全市口径的最近一期数值；“公布数”为大数据局已公开发布的数字，'
        "按显示精度核对。“来源”为下文数据来源的编号。</p>"
    )
    body.append(_html_kpi_table(data))
    body.append("<h2>本期数据质量</h2>")
    body.append(_html_quality(data))
    body.append('<h2 id="sources">数据来源</h2>')
    body.append('<p class="note">每个数字所依据的部门报送文件（载入批次）。</p>')
    body.append(_html_sources(data))
    meta = f"数据截至{data.period_label}　·　生成时间 {generated}　·　运行编号 {data.run_id}"
    footer = (
        "本公报由 govmetrics 根据各部门报送数据自动生成。比率为百分数，保留一位小数；"
        "1万及以上的数量以“万”“亿”表示。指标口径见指标目录（marts.kpi_catalogue）。"
    )
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        title=_e(title),
        organisation=_e(ORGANISATION),
        meta=_e(meta),
        body="\n".join(body),
        footer=_e(footer),
        run_id=_e(data.run_id),
    )


# ---------------------------------------------------------------------------------------------
# Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _m(text: object) -> str:
    """Markdown-safe text: markdown syntax escaped, no raw HTML."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape("" if text is None else str(text), quote=False))


def _code(text: object) -> str:
    text = ("" if text is None else str(text)).replace(
        "|", "\\|"
    )  # a pipe would split a table cell
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _md_refs(numbers: list[int]) -> str:
    return f"<sup>\\[{_m(_ranges(numbers))}\\]</sup>"


def _md_fig(piece: tuple, period: date | None, *, note: bool = True, refs: bool = True) -> str:
    _, fig, text, is_prev = piece
    out = f"**{_m(text)}**"
    if is_prev:
        return out
    if note and not _in_month(fig.grain, fig.period_start, period):
        out += f"（{_m(fig.period_label)}）"
    if fig.sources and refs:
        out += _md_refs(fig.sources)
    if fig.differs:
        out += f" ⚠公布数为{_m(fig.reference_text)}"
    return out


def _md_sentence(sentence: list, period: date | None) -> str:
    label, shared = _sentence_shared(sentence, period)
    body = "".join(
        _md_fig(p, period, note=label is None, refs=shared is None)
        if isinstance(p, tuple)
        else _m(p)
        for p in sentence[:-1]
    )
    if shared:
        body += _md_refs(shared)
    return (f"截至{_m(label)}，" if label else "") + body + _m(sentence[-1])


def _md_table(headers: list[str], align: str, rows: list[list[str]]) -> list[str]:
    """Lines of a Markdown table; cells are Markdown already (escaped); ``align`` is one letter per
    column, ``l`` or ``r``."""
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    return ["| " + " | ".join(headers) + " |", rule, *("| " + " | ".join(r) + " |" for r in rows)]


def _md_volume(data: BulletinData) -> list[str]:
    def cell(by: dict, source: str, measure: str) -> str:
        v = (by.get(source) or {}).get(measure)
        return "" if v is None else format_magnitude(v)

    rows = []
    for m, by in data.volume[-12:]:
        bad = [v["bad_reviews"] for v in by.values() if v.get("bad_reviews") is not None]
        rows.append(
            [
                period_label("month", m),
                cell(by, "records", "cases"),
                cell(by, "monthly_report", "cases"),
                cell(by, "records", "reviews"),
                cell(by, "monthly_report", "reviews"),
                format_magnitude(sum(bad)) if bad else "",
            ]
        )
    headers = [
        "月份",
        "办件量（明细）",
        "办件量（月报）",
        "有效评价（明细）",
        "有效评价（月报）",
        "差评",
    ]
    return _md_table(headers, "lrrrrr", rows)


def _md_quality(data: BulletinData) -> list[str]:
    q, t = data.quality, data.quality["totals"]
    statuses = sorted(
        q["by_status"].items(),
        key=lambda kv: STATUS_ORDER.index(kv[0]) if kv[0] in STATUS_ORDER else 99,
    )
    lines = [
        "## 本期数据质量",
        "",
        f"范围：数据统计期不晚于{_m(data.period_label)}的文件批次，以及登记表和无法读取的文件，"
        f"共{q['batches']}个。",
        "",
    ]
    lines += _md_table(
        ["状态", "批次数"], "lr", [[_m(STATUS_ZH.get(s, s)), str(n)] for s, n in statuses]
    )
    lines += [
        "",
        f"读取{t['rows_read']}行，载入{t['rows_loaded']}行，隔离{t['rows_quarantined']}行，"
        f"跳过合计行{t['rows_skipped']}行。",
        "",
    ]
    if q["rules"]:
        lines += ["### 隔离行（按规则）", ""]
        lines += _md_table(
            ["数据集", "规则", "说明", "行数", "涉及文件"],
            "lllrr",
            [
                [
                    _m(_dataset_zh(r["dataset"])),
                    _code(r["rule"]),
                    _m(r["message"]),
                    str(r["rows"]),
                    str(r["files"]),
                ]
                for r in q["rules"]
            ],
        )
        lines.append("")
    if q["problems"]:
        lines += ["### 未完全载入的文件", ""]
        lines += _md_table(
            ["文件", "数据集", "状态", "原因"],
            "llll",
            [
                [
                    _code(p["source_path"]),
                    _m(_dataset_zh(p["dataset"])),
                    _m(STATUS_ZH.get(p["status"], p["status"])),
                    _m(p["reason"]),
                ]
                for p in q["problems"]
            ],
        )
        lines.append("")
    failed = q["checks_failed"]
    lines += ["### 数据校验", "", f"共{q['checks_run']}项校验，{len(failed)}项未通过。", ""]
    if failed:
        lines += _md_table(
            ["数据集", "校验项", "级别", "观测值", "不符行数"],
            "llllr",
            [
                [
                    _m(_dataset_zh(c["dataset"])),
                    _code(c["expectation"]),
                    _m(SEVERITY_ZH.get(c["severity"], c["severity"])),
                    _m(c["observed"]),
                    _m(c["unexpected"]),
                ]
                for c in failed
            ],
        )
        lines.append("")
    return lines


def render_markdown(data: BulletinData) -> str:
    period = _m(data.period_label)
    lines = [
        f"# {CITY}政务数据运行公报（截至{period}）",
        "",
        f"{ORGANISATION}　·　数据截至{period}　·　运行编号 {_code(data.run_id)}",
        "",
    ]
    for title, stated in sentences(data):
        lines += [f"## {_m(title)}", ""]
        for sentence in stated:
            lines += [_md_sentence(sentence, data.period), ""]
    if data.missing:
        lines += [f"{MISSING_NOTE}：{_m('、'.join(n for _, n in data.missing))}。", ""]

    lines += ["## 月度走势", ""]
    if data.volume:
        lines += [*_md_volume(data), "", "（最近12个月；HTML版有完整图表。）", ""]
    else:
        lines += ["暂无月度办件数据。", ""]
    lines += [f"### {period}办件申办渠道构成", ""]
    if data.channels:
        total = sum(n for _, n in data.channels)
        lines += _md_table(
            ["申办渠道", "办件量", "占比"],
            "lrr",
            [
                [_m(c), format_magnitude(n, "件"), format_percent(100 * n / total)]
                for c, n in data.channels
            ],
        )
    else:
        lines.append("本月暂无办件明细。")
    lines.append("")

    rows = []
    for code in data.order:
        fig = data.figures.get(code)
        if fig is not None:
            rows.append(
                [
                    f"{_m(fig.name_zh)} {_code(code)}",
                    _m(fig.text),
                    _m(fig.period_label),
                    _m(_ratio(fig)),
                    _m(fig.reference_text or ""),
                    _check_mark(fig)[1],
                    _m(_ranges(fig.sources)),
                ]
            )
    lines += ["## 指标一览", ""]
    lines += _md_table(
        ["指标", "数值", "统计期", "分子 / 分母", "公布数", "核对", "来源"], "lrlrrll", rows
    )
    lines.append("")
    lines += _md_quality(data)

    lines += ["## 数据来源", ""]
    for s in data.sources:
        path, desc = _source_text(s)
        lines.append(f"{s.number}. {_code(path)}　{_m(desc)}")
    if not data.sources:
        lines.append("无。")
    lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def write_bulletin(con: duckdb.DuckDBPyConnection, out_dir: Path, run_id: str) -> dict[str, Path]:
    """Write ``bulletin.html`` and ``bulletin.md`` for the latest period into ``out_dir``.

    Each file is written to a temporary name and renamed, so a reader never opens half a bulletin.
    Returns ``{"html": path, "md": path}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = collect(con, run_id)
    written = {}
    for kind, name, text in (
        ("html", "bulletin.html", render_html(data)),
        ("md", "bulletin.md", render_markdown(data)),
    ):
        path = out_dir / name
        tmp = out_dir / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written[kind] = path
    return written
