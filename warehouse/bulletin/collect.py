"""The figures of one month's bulletin, read from the warehouse (``SELECT`` only).

A bulletin is *for a month* (the Dagster partition, or the latest month with a city-wide
monthly KPI). Everything it states must be true for that month: a KPI's figure is its latest
city-wide value whose period *ends* by the month's last day (a quarter that ends later is not
used, a register snapshot dated after the month is not used), so re-running a month after
later data arrived states the same figures. The data-quality part (internal edition) covers
the batches whose data starts by the month's end, plus registers and unreadable files, which
carry no period.

Only ``SELECT`` statements run: the bulletin is written from the analysts' read-only snapshot.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb

from expectations.contract import all_contracts
from warehouse.bulletin.quality import quality
from warehouse.bulletin.volume import Change, changes, channels, exists, volume_series
from warehouse.formatting import format_kpi

QUARTER_ZH = "一二三四"
STATUS_ZH = {
    "loaded": "已载入",
    "partially_loaded": "部分载入",
    "failed": "失败",
    "superseded": "已被取代",
    "duplicate": "重复报送",
}
STATUS_ORDER = ["loaded", "partially_loaded", "superseded", "duplicate", "failed"]
# Who delivers each dataset, in the words of the public source note.
PROVIDER_ZH = {
    "service_cases": "一体化政务服务平台",
    "service_reviews": "一体化政务服务平台",
    "service_items": "一体化政务服务平台",
    "case_volume_monthly": "各实施部门",
    "org_units": "市大数据管理局",
    "extranet_nodes": "市大数据管理局",
    "cloud_systems": "市大数据管理局",
}

# The last day a figure's period covers, in SQL (a figure is usable when this is by month end).
PERIOD_END_SQL = """CASE period_grain
    WHEN 'month' THEN period_start + INTERVAL 1 MONTH - INTERVAL 1 DAY
    WHEN 'quarter' THEN period_start + INTERVAL 3 MONTH - INTERVAL 1 DAY
    WHEN 'year' THEN period_start + INTERVAL 1 YEAR - INTERVAL 1 DAY
    ELSE period_start END"""
GRAIN_ORDER_SQL = """CASE period_grain WHEN 'day' THEN 0 WHEN 'snapshot' THEN 1 WHEN 'month' THEN 2
    WHEN 'quarter' THEN 3 WHEN 'year' THEN 4 ELSE 5 END"""


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
    sources: list[int] = field(default_factory=list)  # numbers in the internal source list
    datasets: list[int] = field(default_factory=list)  # numbers in the public source note

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
    """A batch behind a figure (internal edition)."""

    number: int
    batch_id: str
    dataset: str | None
    source_path: str | None
    status: str | None
    received_at: datetime | None


@dataclass
class PublicSource:
    """A dataset behind a figure, in plain language (public edition): who sent it, for when."""

    number: int
    dataset: str
    title_zh: str
    provider: str
    period: str


@dataclass
class BulletinData:
    period: date | None  # first day of the bulletin month
    figures: dict[str, Figure]
    order: list[str]  # catalogue order
    missing: list[tuple[str, str]]  # (code, name_zh) of catalogue KPIs without a city figure
    sources: list[Source]
    public_sources: list[PublicSource]
    volume: list[tuple[date, dict[str, dict[str, int | None]]]]  # month -> source -> measures
    changes: list[Change]
    channels: list[tuple[str, int]]
    quality: dict
    run_id: str
    marts_run_ids: list[str] = field(default_factory=list)

    @property
    def period_label(self) -> str:
        return period_label("month", self.period) if self.period else "暂无数据"


def period_label(grain: str, start: date | None) -> str:
    """``('month', 2023-03-01)`` -> ``'2023年3月'``; quarter ``'2023年第一季度'``;
    year ``'2023年'``; day and snapshot ``'2023年3月31日'``."""
    if start is None:
        return ""
    if grain == "month":
        return f"{start.year}年{start.month}月"
    if grain == "quarter":
        return f"{start.year}年第{QUARTER_ZH[(start.month - 1) // 3]}季度"
    if grain == "year":
        return f"{start.year}年"
    return f"{start.year}年{start.month}月{start.day}日"


def month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def in_month(grain: str, start: date, month: date | None) -> bool:
    """Whether a figure's period is the bulletin month (needs no period note)."""
    if month is None:
        return False
    if grain == "month":
        return start == month
    if grain in ("day", "snapshot"):
        return month <= start <= month_end(month)
    return False


def dataset_zh(name: str | None) -> str:
    contract = all_contracts().get(name or "")
    return contract.title_zh if contract else (name or "")


def latest_month(con: duckdb.DuckDBPyConnection) -> date | None:
    """The month the latest bulletin is for: the latest month with a city-wide monthly KPI (else
    the latest month of the service volumes, else of any KPI)."""
    row = con.execute(
        "SELECT max(period_start) FROM marts.kpi_values WHERE scope = 'city' "
        "AND period_grain = 'month'"
    ).fetchone()
    if row[0] is None and exists(con, "marts", "service_volume_monthly"):
        row = con.execute("SELECT max(month) FROM marts.service_volume_monthly").fetchone()
    if row[0] is None:
        row = con.execute(
            "SELECT max(period_start) FROM marts.kpi_values WHERE scope = 'city'"
        ).fetchone()
    return row[0].replace(day=1) if row[0] is not None else None


def _figures(
    con: duckdb.DuckDBPyConnection, month: date | None
) -> tuple[dict[str, Figure], list[str], list[tuple[str, str]]]:
    catalogue: dict[str, tuple] = {}
    if exists(con, "marts", "kpi_catalogue"):
        for code, name, unit, definition, reference in con.execute(
            "SELECT kpi_code, name_zh, unit, definition, reference FROM marts.kpi_catalogue"
        ).fetchall():
            catalogue[code] = (name, unit, definition, reference)
    bound = month_end(month) if month else date.max
    rows = con.execute(
        f"""
        SELECT kpi_code, name_zh, unit, value, period_grain, period_start, numerator, denominator,
               batch_ids, as_of
        FROM marts.kpi_values
        WHERE scope = 'city' AND value IS NOT NULL AND NOT isnan(value) AND {PERIOD_END_SQL} <= ?
        QUALIFY row_number() OVER (PARTITION BY kpi_code
                                   ORDER BY period_start DESC, {GRAIN_ORDER_SQL}) = 1""",
        [bound],
    ).fetchall()
    figures: dict[str, Figure] = {}
    for code, name, unit, value, grain, start, num, den, batches, as_of in rows:
        name_c, unit_c, definition, reference = catalogue.get(code, (None, None, "", None))
        if grain == "month" and as_of is not None and as_of < month_end(start):
            # a register's figure carried to this month: true for the date its file describes
            grain, start = "day", as_of
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
    if figures:  # the previous different value of each, for 由…提升至…
        previous = con.execute(
            """
            SELECT v.kpi_code, v.value FROM marts.kpi_values v
            JOIN (SELECT unnest(?::VARCHAR[]) AS kpi_code, unnest(?::DATE[]) AS start,
                         unnest(?::DOUBLE[]) AS value) f USING (kpi_code)
            WHERE v.scope = 'city' AND v.period_start < f.start AND v.value IS NOT NULL
              AND v.value <> f.value
            QUALIFY row_number() OVER (PARTITION BY v.kpi_code ORDER BY v.period_start DESC) = 1""",
            [
                list(figures),
                [f.period_start for f in figures.values()],
                [f.value for f in figures.values()],
            ],
        ).fetchall()
        for code, value in previous:
            figures[code].previous = value
    order = list(catalogue) + sorted(c for c in figures if c not in catalogue)
    missing = [(c, catalogue[c][0]) for c in catalogue if c not in figures]
    return figures, order, missing


def _sources(
    con: duckdb.DuckDBPyConnection, figures: dict[str, Figure]
) -> tuple[list[Source], list[PublicSource]]:
    """The batches every figure cites (internal), and the datasets behind them (public)."""
    wanted = sorted({b for f in figures.values() for b in f.batch_ids})
    known = {}
    if wanted:
        for batch_id, dataset, path, status, received, pmin, pmax in con.execute(
            "SELECT batch_id, dataset, source_path, status, received_at, period_min, period_max "
            "FROM quality.load_batches WHERE list_contains(?::VARCHAR[], batch_id)",
            [wanted],
        ).fetchall():
            known[batch_id] = (dataset, path, status, received, pmin, pmax)
    rank = {name: i for i, name in enumerate(all_contracts())}
    blank = (None,) * 6

    def key(b: str) -> tuple:
        dataset, path, _, received, *_ = known.get(b, blank)
        return (dataset is None, rank.get(dataset, len(rank)), received or datetime.max, path or "", b)

    sources = [
        Source(i + 1, b, *known.get(b, blank)[:4]) for i, b in enumerate(sorted(wanted, key=key))
    ]
    number = {s.batch_id: s.number for s in sources}
    datasets = sorted(
        {known[b][0] for b in wanted if b in known and known[b][0]},
        key=lambda d: rank.get(d, len(rank)),
    )
    public = []
    for i, dataset in enumerate(datasets):
        cited = [f for f in figures.values() if any(known.get(b, blank)[0] == dataset for b in f.batch_ids)]
        public.append(
            PublicSource(
                i + 1, dataset, dataset_zh(dataset), _provider(con, dataset, wanted),
                _covered(cited),
            )
        )
    by_dataset = {p.dataset: p.number for p in public}
    for f in figures.values():
        f.sources = sorted({number[b] for b in f.batch_ids})
        f.datasets = sorted({by_dataset[known[b][0]] for b in f.batch_ids if known.get(b, blank)[0] in by_dataset})
    return sources, public


def _provider(con: duckdb.DuckDBPyConnection, dataset: str, batches: list[str]) -> str:
    """Who sent a dataset: the reporters named in the indicator rows, else the dataset's usual sender."""
    if dataset == "indicators" and exists(con, "core", "indicators"):
        names = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT reporter FROM core.indicators WHERE reporter IS NOT NULL "
                "AND list_contains(?::VARCHAR[], batch_id) ORDER BY 1",
                [batches],
            ).fetchall()
        ]
        if names:
            return "、".join(names)
    return PROVIDER_ZH.get(dataset, "各部门")


def _covered(figures: list[Figure]) -> str:
    """The periods the figures drawn from a dataset are for: ``2022年4月28日`` or ``2021年至2023年3月``
    (a month that also has a dated figure is said by the date)."""
    dated = {(f.period_start.year, f.period_start.month) for f in figures if f.grain in ("day", "snapshot")}
    labels = sorted(
        {
            (f.period_start, f.period_label)
            for f in figures
            if not (f.grain == "month" and (f.period_start.year, f.period_start.month) in dated)
        }
    )
    if not labels:
        return ""
    first, last = labels[0][1], labels[-1][1]
    return first if first == last else f"{first}至{last}"


def _marts_runs(con: duckdb.DuckDBPyConnection, figures: dict[str, Figure]) -> list[str]:
    """The runs that computed the stated figures (internal edition)."""
    if not figures:
        return []
    return [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT run_id FROM marts.kpi_values WHERE scope = 'city' AND run_id IS NOT NULL "
            "AND list_contains(?::VARCHAR[], kpi_code) ORDER BY 1",
            [list(figures)],
        ).fetchall()
    ]


def collect(con: duckdb.DuckDBPyConnection, run_id: str, month: date | None = None) -> BulletinData:
    """Read everything the bulletin for ``month`` states (default: the latest month)."""
    month = month.replace(day=1) if month else latest_month(con)
    figures, order, missing = _figures(con, month)
    sources, public = _sources(con, figures)
    volume = volume_series(con, month)
    return BulletinData(
        period=month,
        figures=figures,
        order=order,
        missing=missing,
        sources=sources,
        public_sources=public,
        volume=volume,
        changes=changes(volume, month),
        channels=channels(con, month),
        quality=quality(con, month),
        run_id=run_id,
        marts_run_ids=_marts_runs(con, figures),
    )
