"""The marts: the KPI catalogue, the monthly service volumes and every KPI value, rebuilt together.

The figures are SQL a reader can follow: ``sql/marts/service_volume_monthly.sql`` (with
``sql/marts/case_counts_by_batch.sql``, cases counted per month, department, district and
batch, which it shares with the online rate and the cumulative volume, and
``sql/marts/review_counts_by_case.sql``, reviews counted by their case's department, which it
shares with the cumulative review KPI; both kept between builds and updated from the rows that
changed, see ``warehouse/shared_counts.py``) and one file
per KPI (or small family of KPIs sharing a shape) in ``sql/kpis/``. Each KPI file opens with a
header naming the codes it computes (``-- kpi_codes: a, b`` or ``-- kpi_source: indicators`` for
every catalogue KPI reported through the indicators dataset) and returns the figure columns
(``FIGURE_COLUMNS``); name, unit, run and time are stamped here from the catalogue, so that the
catalogue stays the one place a KPI's name and unit are written. Adding a KPI is adding a
catalogue entry and one SQL file; a code without SQL, or SQL without a catalogue entry, is an
error before anything is written.

Every KPI is computed for every month the data supports (``period_grain = 'month'``): flows per
month, cumulative figures as of each month-end, and register (snapshot) figures as of each
month-end from the latest register snapshot dated on or before it. The month grid and one
temporary view per register, ``<register>_at_month_end``, are built here before the KPI SQL
runs, so each KPI file reads "the register as of month M" without repeating how it is found.
``kpi_values.as_of`` says which date a figure is true for (a snapshot's own date may be earlier
than the month-end it is carried to). Indicators reported for a year, quarter or day also keep
a row at that grain.

The tables are replaced in one transaction: readers see the old marts or the new ones, never a
mix, and a failing KPI leaves the previous marts in place.
"""

from __future__ import annotations

import contextlib
import copy
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import duckdb
import yaml

from expectations.contract import all_contracts
from expectations.sql import quote
from warehouse import shared_counts
from warehouse.ddl import Columns, replace_table
from warehouse.workdays import build_calendar, check_coverage

MART_TABLES = ("kpi_catalogue", "workday_calendar", "service_volume_monthly", "kpi_values")
CATALOGUE_PATH = Path(__file__).parent / "kpi_catalogue.yaml"
SQL_DIR = Path(__file__).parent / "sql"
KPI_SQL_DIR = SQL_DIR / "kpis"
SERVICE_VOLUME_SQL = SQL_DIR / "marts" / "service_volume_monthly.sql"
PERIOD_GRAINS = ("month", "quarter", "year", "day")

KPI_CATALOGUE: tuple[str, Columns] = (
    "指标目录：每个指标一行，含中文名称、单位、口径和来源；口径即 kpi_values 中数值的定义",
    [
        ("kpi_code", "VARCHAR", "指标编码"),
        ("name_zh", "VARCHAR", "指标名称"),
        ("unit", "VARCHAR", "计量单位（比率为 %）"),
        ("definition", "VARCHAR", "口径：分子、分母、筛选条件和统计期的定义"),
        ("sources", "VARCHAR[]", "来源数据集（core 中的表名）"),
        ("reference", "DOUBLE", "参考值：大数据局已公开发布的数字（无则为空）"),
    ],
)

SERVICE_VOLUME_MONTHLY: tuple[str, Columns] = (
    "政务服务月度办件与评价量：月份×实施部门×区县；有明细的月份取明细，其余月份取办件量月报，"
    "同一月份同一类数字只来自一个来源，按月求和即全市口径",
    [
        ("month", "DATE", "统计月份（月首日；办件按申请时间、评价按评价时间归月）"),
        ("dept_code", "VARCHAR", "实施部门编码（评价取所评办件的部门；所评办件未入库时为空）"),
        ("region_code", "VARCHAR", "区县代码（行政区划代码前6位；月报、市本级或未知时为空）"),
        ("source", "VARCHAR", "来源：records 办件/评价明细，monthly_report 办件量月报"),
        ("cases", "BIGINT", "办件量（件）；该月办件取自另一来源时为空"),
        ("online_cases", "BIGINT", "网上办件量（件）：申办渠道为网上办理或移动端"),
        ("full_online_cases", "BIGINT", "全程网办件量（件）；月报无此项，为空"),
        ("reviews", "BIGINT", "有效评价数（条）：评价等级1-5；该月评价取自另一来源时为空"),
        ("good_reviews", "BIGINT", "好评数（条）：评价等级4、5"),
        ("bad_reviews", "BIGINT", "差评数（条）：评价等级1、2"),
        (
            "auto_reviews",
            "BIGINT",
            "默认评价数（条）：系统在7日未评价后自动给出的好评；月报无此项，为空",
        ),
        ("batch_ids", "VARCHAR[]", "批次编号：该行数字所依据的当前数据行的载入批次（去重、排序）"),
    ],
)

KPI_VALUES: tuple[str, Columns] = (
    "指标值：每个指标、统计期粒度、统计期、范围一行；各指标口径见 marts.kpi_catalogue.definition，"
    "计算SQL见 warehouse/sql/kpis/；输入数据缺失的统计期不出数（不记为0）",
    [
        ("kpi_code", "VARCHAR", "指标编码（见 marts.kpi_catalogue）"),
        ("name_zh", "VARCHAR", "指标名称"),
        (
            "period_grain",
            "VARCHAR",
            "统计期粒度：month 月（流量指标为当月，累计和登记表指标为截至月末）, quarter 季, year 年, "
            "day 日（后三者只用于按季、年、日报送的指标）",
        ),
        ("period_start", "DATE", "统计期起始日（月、季、年的首日；day 为当日）"),
        (
            "as_of",
            "DATE",
            "数据所述日期：流量和累计指标为统计期末日；登记表指标为所用快照的统计日期（截至日期），"
            "报送指标为所用报送期的末日；可早于统计期末（沿用最近一期）",
        ),
        ("scope", "VARCHAR", "范围：city 全市，或6位区县代码，或部门编码"),
        ("value", "DOUBLE", "指标值（比率为百分数0-100，未四舍五入；报告中再取舍）"),
        ("unit", "VARCHAR", "计量单位"),
        ("numerator", "DOUBLE", "分子（比率指标；其他指标为空）"),
        ("denominator", "DOUBLE", "分母（比率指标；其他指标为空）"),
        ("batch_ids", "VARCHAR[]", "批次编号：该数字所依据的当前数据行的载入批次（去重、排序）"),
        ("run_id", "VARCHAR", "计算该数字的运行编号（Dagster run id；手工运行时为空）"),
        ("computed_at", "TIMESTAMP", "计算时间"),
    ],
)

# What every KPI SQL file returns; kpi_values adds name_zh, unit (catalogue), run_id, computed_at.
FIGURE_COLUMNS: Columns = [
    c for c in KPI_VALUES[1] if c[0] not in ("name_zh", "unit", "run_id", "computed_at")
]
# A KPI file may leave as_of out: it is then the end of the figure's period.
OPTIONAL_FIGURE_COLUMNS = ("as_of",)

# The months KPIs are computed for: from the first to the last month of any dataset's period
# column that is a date (cases by applied_at, reviews by reviewed_at, monthly reports by month,
# registers by as_of). Indicator periods are text and extend nothing: a figure reported for a
# period is carried to the month-ends the rest of the data reaches.
DATED_PERIOD_TYPES = ("timestamp", "date", "month", "as_of")
# Each dataset gives its first and last month only (a min and a max: no DISTINCT over 120
# million record rows, 1 s at full volume).
KPI_MONTHS_SQL = """
CREATE OR REPLACE TEMP TABLE kpi_months AS
WITH data_months AS (
    {data_months}
),
bounds AS (SELECT min(first) AS first, max(last) AS last FROM data_months)
SELECT range::DATE AS month, last_day(range::DATE) AS month_end
FROM bounds, range(bounds.first, bounds.last + INTERVAL 1 MONTH, INTERVAL 1 MONTH)
"""

# The register as of each month-end: the current rows of the latest snapshot dated on or
# before it. A month before the first snapshot has no rows.
REGISTER_AT_MONTH_END_SQL = """
CREATE OR REPLACE TEMP VIEW {view} AS
WITH picked AS (
    SELECT m.month, max(s.as_of) AS as_of
    FROM kpi_months AS m
    JOIN (SELECT DISTINCT {as_of} AS as_of FROM {table}) AS s ON s.as_of <= m.month_end
    GROUP BY m.month
)
SELECT p.month, r.* EXCLUDE ({as_of}), r.{as_of} AS as_of
FROM picked AS p
JOIN {table} AS r ON r.{as_of} = p.as_of
"""


# ---------------------------------------------------------------------------------------------
# The catalogue


@cache
def _catalogue() -> tuple[dict, ...]:
    raw = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    entries, problems, seen = [], [], set()
    for i, e in enumerate(raw.get("kpis") or []):
        missing = [k for k in ("code", "name_zh", "unit", "definition", "source") if not e.get(k)]
        if missing:
            problems.append(f"entry {i} ({e.get('code', '?')}) lacks {', '.join(missing)}")
            continue
        if e["code"] in seen:
            problems.append(f"code {e['code']} is listed twice")
        seen.add(e["code"])
        source = e["source"] if isinstance(e["source"], list) else [e["source"]]
        entries.append(
            {
                "code": str(e["code"]),
                "name_zh": str(e["name_zh"]),
                "unit": str(e["unit"]),
                "definition": str(e["definition"]),
                "source": [str(s) for s in source],
                "reference": None if e.get("reference") is None else float(e["reference"]),
                "indicator_names": [str(n) for n in e.get("indicator_names") or []],
                "value_type": str(e.get("value_type") or "number"),
            }
        )
    if problems:
        raise ValueError(f"{CATALOGUE_PATH.name}: " + "; ".join(problems))
    return tuple(entries)


def load_catalogue() -> list[dict]:
    """The KPI catalogue, in file order (parsed once; callers get their own copy).

    Each entry: code, name_zh, unit, definition (口径), source (list of datasets),
    reference (float or None), indicator_names (list), value_type ('number' by default).
    """
    return copy.deepcopy(list(_catalogue()))


# ---------------------------------------------------------------------------------------------
# The KPI SQL files

_DIRECTIVE = re.compile(r"^--\s*(kpi_codes|kpi_source)\s*:\s*(.+?)\s*$")


@dataclass(frozen=True)
class KpiSql:
    """One file of ``sql/kpis/`` and the catalogue codes it computes."""

    path: Path
    codes: tuple[str, ...]
    sql: str


def _header_codes(path: Path, text: str, catalogue: list[dict]) -> tuple[str, ...]:
    codes: list[str] = []
    found = False
    for line in text.splitlines():
        if not line.startswith("--"):
            if line.strip():
                break
            continue
        m = _DIRECTIVE.match(line)
        if not m:
            continue
        found = True
        if m.group(1) == "kpi_codes":
            codes += [c.strip() for c in m.group(2).split(",") if c.strip()]
        else:  # every catalogue KPI whose only source is this dataset
            codes += [e["code"] for e in catalogue if e["source"] == [m.group(2)]]
    if not found:
        raise ValueError(
            f"{path}: no '-- kpi_codes: <code>, ...' (or '-- kpi_source: <dataset>') header line"
        )
    return tuple(codes)


def kpi_sql_files() -> list[KpiSql]:
    """Every KPI SQL file with its codes, checked against the catalogue both ways."""
    catalogue = load_catalogue()
    known = {e["code"] for e in catalogue}
    files, owner, problems = [], {}, []
    for path in sorted(KPI_SQL_DIR.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        codes = _header_codes(path, text, catalogue)
        if not codes:
            problems.append(f"{path.name} declares no catalogue KPI")
        for code in codes:
            if code not in known:
                problems.append(
                    f"{path.name} computes {code}, which is not in {CATALOGUE_PATH.name}"
                )
            elif code in owner:
                problems.append(f"{code} is computed by both {owner[code]} and {path.name}")
            owner.setdefault(code, path.name)
        files.append(KpiSql(path, codes, text.strip().rstrip(";")))
    for e in catalogue:
        if e["code"] not in owner:
            problems.append(
                f"catalogue KPI {e['code']} has no SQL: add {KPI_SQL_DIR.name}/{e['code']}.sql "
                f"starting with '-- kpi_codes: {e['code']}'"
            )
    if problems:
        raise ValueError("KPI catalogue and SQL do not match: " + "; ".join(problems))
    return files


def kpi_sql_path(code: str) -> Path:
    """The SQL file that computes a KPI (for docs and the bulletin's traceability notes)."""
    for f in kpi_sql_files():
        if code in f.codes:
            return f.path
    raise KeyError(f"no SQL computes {code}")


# ---------------------------------------------------------------------------------------------
# Building


def _create_table(con: duckdb.DuckDBPyConnection, table: str, spec: tuple[str, Columns]) -> str:
    name = f"marts.{quote(table)}"
    replace_table(con, name, *spec)
    return name


def _check_shape(
    con: duckdb.DuckDBPyConnection, label: str, sql: str, columns: Columns, optional=()
) -> None:
    got = [r[0] for r in con.execute(f"DESCRIBE ({sql})").fetchall()]
    want = [c for c, _, _ in columns]
    if sorted(got) != sorted(want) and sorted(got) != sorted(w for w in want if w not in optional):
        raise ValueError(f"{label} returns columns {got}; expected {want}")


def _build_catalogue(con: duckdb.DuckDBPyConnection) -> None:
    table = _create_table(con, "kpi_catalogue", KPI_CATALOGUE)
    con.executemany(
        f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?)",
        [
            [e["code"], e["name_zh"], e["unit"], e["definition"], e["source"], e["reference"]]
            for e in load_catalogue()
        ],
    )


def _build_service_volume(con: duckdb.DuckDBPyConnection) -> None:
    sql = SERVICE_VOLUME_SQL.read_text(encoding="utf-8").strip().rstrip(";")
    _check_shape(con, SERVICE_VOLUME_SQL.name, sql, SERVICE_VOLUME_MONTHLY[1])
    table = _create_table(con, "service_volume_monthly", SERVICE_VOLUME_MONTHLY)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM ({sql})")


def _build_kpi_values(
    con: duckdb.DuckDBPyConnection, files: list[KpiSql], run_id: str | None, computed_at: datetime
) -> None:
    body = ", ".join(f"{quote(c)} {t}" for c, t, _ in FIGURE_COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE kpi_figures (sql_file VARCHAR, {body})")
    for f in files:
        try:
            _check_shape(con, f.path.name, f.sql, FIGURE_COLUMNS, OPTIONAL_FIGURE_COLUMNS)
            con.execute(
                f"INSERT INTO kpi_figures BY NAME SELECT ? AS sql_file, * FROM ({f.sql})",
                [f.path.name],
            )
        except duckdb.Error as exc:
            raise RuntimeError(f"KPI SQL {f.path} failed: {exc}") from exc

    declared = {f.path.name: set(f.codes) for f in files}
    strays = [
        f"{file} returned {code}"
        for file, code in con.execute(
            "SELECT DISTINCT sql_file, kpi_code FROM kpi_figures ORDER BY ALL"
        ).fetchall()
        if code not in declared[file]
    ]
    if strays:
        raise ValueError("KPI SQL returned codes its header does not declare: " + "; ".join(strays))
    bad = con.execute(
        """SELECT sql_file, kpi_code, period_grain, period_start, scope, value FROM kpi_figures
           WHERE period_grain IS NULL OR NOT list_contains(?::VARCHAR[], period_grain)
              OR period_start IS NULL OR scope IS NULL OR value IS NULL OR NOT isfinite(value)
           LIMIT 5""",
        [list(PERIOD_GRAINS)],
    ).fetchall()
    if bad:
        raise ValueError(
            f"KPI SQL returned rows without a valid period, scope or value, e.g. {bad}"
        )
    dupes = con.execute(
        """SELECT kpi_code, period_grain, period_start, scope, count(*) AS n FROM kpi_figures
           GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 5"""
    ).fetchall()
    if dupes:
        raise ValueError(
            "KPI SQL returned several rows for one (kpi_code, period_grain, period_start, scope),"
            f" e.g. {dupes}"
        )

    table = _create_table(con, "kpi_values", KPI_VALUES)
    con.execute(
        f"""INSERT INTO {table}
            SELECT f.kpi_code, c.name_zh, f.period_grain, f.period_start,
                   coalesce(f.as_of, CASE f.period_grain
                       WHEN 'month' THEN last_day(f.period_start)
                       WHEN 'quarter' THEN last_day(f.period_start + INTERVAL 2 MONTH)
                       WHEN 'year' THEN make_date(year(f.period_start), 12, 31)
                       ELSE f.period_start END) AS as_of,
                   f.scope, f.value, c.unit,
                   f.numerator, f.denominator, f.batch_ids, ? AS run_id, ? AS computed_at
            FROM kpi_figures AS f
            JOIN marts.kpi_catalogue AS c USING (kpi_code)
            ORDER BY f.kpi_code, f.period_grain, f.period_start, f.scope""",
        [run_id, computed_at],
    )
    con.execute("DROP TABLE kpi_figures")


def _build_month_grid(con: duckdb.DuckDBPyConnection) -> None:
    """``kpi_months`` and one ``<register>_at_month_end`` view per dated register (TEMP)."""
    contracts = all_contracts().values()
    dated = [c for c in contracts if c.period and c.column(c.period).type in DATED_PERIOD_TYPES]
    months = "\n    UNION ALL ".join(
        f"SELECT date_trunc('month', min({quote(c.period)}))::DATE AS first, "
        f"date_trunc('month', max({quote(c.period)}))::DATE AS last FROM latest.{quote(c.name)}"
        for c in dated
    )
    con.execute(KPI_MONTHS_SQL.format(data_months=months))
    registers = [c for c in contracts if c.as_of_column]
    for c in registers:
        con.execute(
            REGISTER_AT_MONTH_END_SQL.format(
                view=quote(f"{c.name}_at_month_end"),
                table=f"latest.{quote(c.name)}",
                as_of=quote(c.as_of_column),
            )
        )


def build_marts(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> dict[str, int]:
    """(Re)build the marts (``MART_TABLES``) atomically.

    Expects the core tables and latest views (``warehouse.ddl.create_all``) and a connection
    with no transaction open (it opens its own). On any error nothing is changed and the error
    is raised. Returns the row count of each table, keyed by table name (no schema).
    """
    files = kpi_sql_files()  # catalogue and SQL must match before anything is touched
    computed_at = datetime.now().replace(microsecond=0)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        _build_catalogue(con)
        build_calendar(con)
        check_coverage(con)
        shared_counts.refresh(con)
        _build_service_volume(con)
        _build_month_grid(con)
        _build_kpi_values(con, files, run_id, computed_at)
        shared_counts.drop_views(con)
        counts = {
            table: con.execute(f"SELECT count(*) FROM marts.{quote(table)}").fetchone()[0]
            for table in MART_TABLES
        }
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # keep the original error if rollback fails too
            con.execute("ROLLBACK")
        raise
    return counts
