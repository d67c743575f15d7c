"""The counts several marts read, kept between builds and brought up to date from what changed.

Two scans the marts share (``sql/marts/``): ``case_counts_by_batch`` (cases per month,
department, district and batch) and ``review_counts_by_case`` (reviews per month, their case's
department and district, and review batch: the join of 46.5 million reviews to 70.9 million
cases). Rebuilt from every current row, they were most of a monthly run's marts step (about
20 of 31 s at full volume) for a delivery that changed 3 % of the cases. So they are tables of
their own (schema ``marts_state``, not published to report generators), and a build adds what
changed since the build that wrote them:

* a row version counts while it is current (``valid_to IS NULL``); loading only ever appends
  versions (``valid_from`` = the load's time) and closes them (``valid_to`` = the closing load's
  time), so the rows that changed since the last build are those with a ``valid_from`` or a
  ``valid_to`` after ``changes_through``, the newest such time that build saw;
* a case counts +1 from the version appended and -1 from the version closed;
* a review counts under its case's department: it is counted again, -1 as it was (with the case
  version current then) and +1 as it is, when it changed or when its case did.

The SQL files take the rows to count (``{cases}``, ``{reviews}``, each with a ``sign``), so a
full rebuild and an update are the same query on different rows. An update is made only when
every row version appended or closed since the last build is dated after it (each dataset's
versions and closed versions grew by exactly the numbers dated after ``changes_through``), and
kept only when it adds up: each table's counts sum to its dataset's current rows and no count is
negative. Otherwise (no counts kept yet, another :func:`digest`, rows deleted since, a load dated
before the last build by a clock set back, no records at the last build) they are rebuilt in
full. ``marts_state.watermark`` records which it was, and why.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from expectations.sql import literal, quote
from warehouse.ddl import Columns, replace_table

log = logging.getLogger(__name__)

SCHEMA = "marts_state"
SQL_DIR = Path(__file__).parent / "sql" / "marts"
CASES_SQL = SQL_DIR / "case_counts_by_batch.sql"
REVIEWS_SQL = SQL_DIR / "review_counts_by_case.sql"
# Bumped when how the counts are updated changes (see digest: what they are computed with is in it).
STATE_VERSION = "1"

_KEYS: Columns = [
    ("month", "DATE", "统计月份（月首日）"),
    ("dept_code", "VARCHAR", "实施部门编码"),
    ("region_code", "VARCHAR", "区县代码（行政区划代码前6位；市本级或未知时为空）"),
    ("batch_id", "VARCHAR", "该组数据行的载入批次"),
]
TABLES: dict[str, tuple[str, Columns]] = {
    "case_counts_by_batch": (
        "办件按申请月份、部门、区县与批次计数：marts 的中间表，每次构建按上次以来变化的办件行增减"
        "（内部表，不导出；见 warehouse/sql/marts/case_counts_by_batch.sql）",
        [*_KEYS,
         ("cases", "BIGINT", "办件量（件）"),
         ("online_cases", "BIGINT", "网上办件量（件）：申办渠道为网上办理或移动端"),
         ("full_online_cases", "BIGINT", "全程网办件量（件）")],
    ),
    "review_counts_by_case": (
        "好差评按评价月份、所评办件的部门与区县、评价批次计数：marts 的中间表，每次构建按上次以来变化的评价"
        "和办件增减（内部表，不导出；见 warehouse/sql/marts/review_counts_by_case.sql）",
        [*_KEYS,
         ("rows", "BIGINT", "评价行数（含评价等级无效的）"),
         ("reviews", "BIGINT", "有效评价数（条）：评价等级1-5"),
         ("good_reviews", "BIGINT", "好评数（条）：评价等级4、5"),
         ("bad_reviews", "BIGINT", "差评数（条）：评价等级1、2"),
         ("auto_reviews", "BIGINT", "默认评价数（条）")],
    ),
    "watermark": (
        "上两张计数表所含的数据：截至哪次载入、当时的当前行数，以及最近一次构建是增量还是全量（内部表，一行）",
        [("digest", "VARCHAR", "计数SQL与更新方法的摘要：变了则全量重建"),
         ("changes_through", "TIMESTAMP", "已计入的最新一次变化（valid_from 或 valid_to 的最大值）"),
         ("cases", "BIGINT", "当时 core.service_cases 的当前行数"),
         ("case_versions", "BIGINT", "当时 core.service_cases 的全部行数（含已关闭的版本）"),
         ("reviews", "BIGINT", "当时 core.service_reviews 的当前行数"),
         ("review_versions", "BIGINT", "当时 core.service_reviews 的全部行数（含已关闭的版本）"),
         ("mode", "VARCHAR", "最近一次构建：delta 增量，full 全量重建"),
         ("changed_rows", "BIGINT", "最近一次构建读入的变化行数（全量重建时为全部当前行数）"),
         ("reason", "VARCHAR", "全量重建的原因（增量时为空）"),
         ("built_at", "TIMESTAMP", "最近一次构建的时间")],
    ),
}
COUNTS = ("case_counts_by_batch", "review_counts_by_case")
# Per counts table: the column whose zero drops a group (a group with no rows left), and what
# the marts read (the TEMP view of the same name): every column but the bookkeeping ``rows``.
_ROWS = {"case_counts_by_batch": "cases", "review_counts_by_case": "rows"}
VIEWS = {t: ", ".join(c for c, _, _ in TABLES[t][1] if c != "rows") for t in COUNTS}

CASE_COLUMNS = "case_no, applied_at, dept_code, region_code, channel, full_online, batch_id"
REVIEW_COLUMNS = "case_no, reviewed_at, batch_id, rating, auto_review"


@dataclass(frozen=True)
class Stand:
    """Where one record dataset stands: its current rows, all its row versions, and (relative to
    the last build's ``changes_through``) the versions appended and closed since."""

    current: int
    versions: int
    newest: datetime | None
    appended: int = 0
    closed: int = 0


@dataclass(frozen=True)
class Outcome:
    """What a build did with the counts: ``delta`` or ``full``, and how many rows it read."""

    mode: str
    changed_rows: int
    reason: str | None = None  # why a full rebuild


RECORDS = ("service_cases", "service_reviews")


def digest() -> str:
    """What the kept counts were computed with: the SQL files, the columns they are given, the
    tables' shape and ``STATE_VERSION``. A build under another digest rebuilds them in full."""
    text = "\n".join([STATE_VERSION, CASES_SQL.read_text(encoding="utf-8"), REVIEWS_SQL.read_text(encoding="utf-8"),
                      CASE_COLUMNS, REVIEW_COLUMNS, repr(TABLES)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sql(path: Path, **relations: str) -> str:
    return path.read_text(encoding="utf-8").strip().rstrip(";").format(**relations)


def _timestamp(value: datetime) -> str:
    return f"{literal(value.isoformat(sep=' '))}::TIMESTAMP"


def _stand(con: duckdb.DuckDBPyConnection, dataset: str, through: datetime | None) -> Stand:
    since = _timestamp(through) if through else "NULL::TIMESTAMP"
    return Stand(*con.execute(
        f"""SELECT count(*) FILTER (WHERE valid_to IS NULL), count(*), greatest(max(valid_from), max(valid_to)),
                   count(*) FILTER (WHERE valid_from > {since}), count(*) FILTER (WHERE valid_to > {since})
            FROM core.{quote(dataset)}""").fetchone())


def _create(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for table, (comment, columns) in TABLES.items():
        replace_table(con, f"{SCHEMA}.{quote(table)}", comment, columns)


@dataclass(frozen=True)
class Mark:
    """What the kept counts hold (``marts_state.watermark``)."""

    digest: str
    changes_through: datetime | None
    stands: dict[str, tuple[int, int]]  # dataset: (current rows, row versions) then


def _watermark(con: duckdb.DuckDBPyConnection) -> Mark | None:
    present = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                          "AND schema_name = ? AND table_name = 'watermark'", [SCHEMA]).fetchone()[0]
    rows = con.execute(f"SELECT digest, changes_through, cases, case_versions, reviews, review_versions "
                       f"FROM {SCHEMA}.watermark").fetchall() if present else []
    if len(rows) != 1:
        return None
    sha, through, cases, case_versions, reviews, review_versions = rows[0]
    return Mark(sha, through, {"service_cases": (cases, case_versions), "service_reviews": (reviews, review_versions)})


def _why_rebuild(mark: Mark | None, stands: dict[str, Stand], sha: str) -> str | None:
    """Why the kept counts cannot be updated from the rows changed since, or None if they can:
    every row version appended or closed since the last build must be dated after it."""
    if mark is None:
        return "no counts kept yet"
    if mark.digest != sha:
        return "the counting SQL changed"
    if mark.changes_through is None:
        return "no records at the last build"
    for dataset, now in stands.items():
        current, versions = mark.stands[dataset]
        if now.versions - versions != now.appended or (now.versions - now.current) - (versions - current) != now.closed:
            return f"{dataset}: rows deleted, or changed with a time before the last build"
    return None


def refresh(con: duckdb.DuckDBPyConnection) -> Outcome:
    """Bring the counts up to date with the current rows and create the TEMP views the marts SQL
    reads (``case_counts_by_batch``, ``review_counts_by_case``). Runs inside the marts build's
    transaction: a build that fails leaves the counts as they were."""
    mark, sha = _watermark(con), digest()
    through = mark.changes_through if mark else None
    stands = {dataset: _stand(con, dataset, through) for dataset in RECORDS}
    reason = _why_rebuild(mark, stands, sha)
    outcome = _update(con, through, stands) if reason is None else None
    if outcome is None:
        reason = reason or "the updated counts did not add up to the current rows"
        log.info("shared counts rebuilt in full: %s", reason)
        outcome = _rebuild(con, stands, reason)
    else:
        log.info("shared counts updated from %s changed rows", f"{outcome.changed_rows:,}")
    newest = max((s.newest for s in stands.values() if s.newest is not None), default=None)
    cases, reviews = stands["service_cases"], stands["service_reviews"]
    con.execute(f"INSERT INTO {SCHEMA}.watermark VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                [sha, newest, cases.current, cases.versions, reviews.current, reviews.versions,
                 outcome.mode, outcome.changed_rows, outcome.reason])
    for view, columns in VIEWS.items():
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(view)} AS SELECT {columns} FROM {SCHEMA}.{quote(view)}")
    return outcome


def drop_views(con: duckdb.DuckDBPyConnection) -> None:
    for view in VIEWS:
        con.execute(f"DROP VIEW {quote(view)}")


def _rebuild(con: duckdb.DuckDBPyConnection, stands: dict[str, Stand], reason: str) -> Outcome:
    _create(con)
    cases = f"(SELECT {CASE_COLUMNS}, 1 AS sign FROM latest.service_cases)"
    reviews = f"(SELECT {REVIEW_COLUMNS}, 1 AS sign FROM latest.service_reviews)"
    con.execute(f"INSERT INTO {SCHEMA}.case_counts_by_batch BY NAME {_sql(CASES_SQL, cases=cases)}")
    con.execute(f"INSERT INTO {SCHEMA}.review_counts_by_case BY NAME "
                f"{_sql(REVIEWS_SQL, reviews=reviews, cases='latest.service_cases')}")
    return Outcome("full", sum(s.current for s in stands.values()), reason)


def _update(con: duckdb.DuckDBPyConnection, through: datetime, stands: dict[str, Stand]) -> Outcome | None:
    """Add the changes since ``through`` to the kept counts; None (nothing written) if the
    result would not add up."""
    t = _timestamp(through)
    # Each scan filters on one conjunction of the two times, which DuckDB pushes into the scan and
    # answers from the row groups' min/max (a month's rows are a few row groups of 74 million):
    # with an OR of two it read every row group of every column selected (1.2 s instead of 0.01).
    appended, closed = f"valid_from > {t}", f"valid_from <= {t} AND valid_to > {t}"
    # cases: +1 for a version appended and still current, -1 for one current then and closed since
    con.execute(f"""CREATE OR REPLACE TEMP TABLE marts_changed_cases AS
        SELECT {CASE_COLUMNS}, 1 AS sign FROM core.service_cases WHERE {appended} AND valid_to IS NULL
        UNION ALL
        SELECT {CASE_COLUMNS}, -1 AS sign FROM core.service_cases WHERE {closed}""")
    # reviews counted again: those that changed, and those whose case did (any version of it
    # appended or closed since), each -1 as it was counted and +1 as it is now
    changed_cases = (f"SELECT case_no FROM core.service_cases WHERE {appended} "
                     f"UNION ALL SELECT case_no FROM core.service_cases WHERE {closed}")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE marts_touched_reviews AS
        SELECT {REVIEW_COLUMNS}, false AS was_current, valid_to IS NULL AS is_current
        FROM core.service_reviews WHERE {appended}
        UNION ALL
        SELECT {REVIEW_COLUMNS}, true, false FROM core.service_reviews WHERE {closed}
        UNION ALL
        SELECT {REVIEW_COLUMNS}, true, true FROM core.service_reviews
        WHERE valid_from <= {t} AND valid_to IS NULL AND case_no IN ({changed_cases})""")
    current_then = f"(valid_from <= {t} AND (valid_to IS NULL OR valid_to > {t}))"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE marts_touched_cases AS
        SELECT case_no, dept_code, region_code, {current_then} AS was_current, valid_to IS NULL AS is_current
        FROM core.service_cases
        WHERE ({current_then} OR valid_to IS NULL)
          AND case_no IN (SELECT case_no FROM marts_touched_reviews)""")
    # -1 as counted then (with the case version current then), +1 as it is now
    recount = [_sql(REVIEWS_SQL, reviews=f"(SELECT {REVIEW_COLUMNS}, {sign} AS sign FROM marts_touched_reviews "
                                         f"WHERE {side})",
                    cases=f"(SELECT * FROM marts_touched_cases WHERE {side})")
               for sign, side in ((-1, "was_current"), (1, "is_current"))]
    deltas = {"case_counts_by_batch": _sql(CASES_SQL, cases="marts_changed_cases"),
              "review_counts_by_case": " UNION ALL ".join(f"SELECT * FROM ({sql})" for sql in recount)}
    changed = con.execute("SELECT (SELECT count(*) FROM marts_changed_cases) + "
                          "(SELECT count(*) FROM marts_touched_reviews)").fetchone()[0]
    expected = {"case_counts_by_batch": stands["service_cases"].current,
                "review_counts_by_case": stands["service_reviews"].current}
    for table, delta in deltas.items():
        rows, summed = _ROWS[table], [c for c, _, _ in TABLES[table][1][len(_KEYS):]]
        keys = ", ".join(c for c, _, _ in _KEYS)
        sums = ", ".join(f"sum({c})::BIGINT AS {c}" for c in summed)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE marts_updated_{table} AS
            SELECT {keys}, {sums}
            FROM (SELECT {keys}, {', '.join(summed)} FROM {SCHEMA}.{table} UNION ALL BY NAME SELECT * FROM ({delta}))
            GROUP BY {keys} HAVING sum({rows}) <> 0""")
        total, negative = con.execute(
            f"SELECT coalesce(sum({rows}), 0), count(*) FILTER (WHERE least({', '.join(summed)}) < 0) "
            f"FROM marts_updated_{table}").fetchone()
        if total != expected[table] or negative:
            log.warning("%s: the update sums to %s rows (%s negative counts), the table has %s current rows",
                        table, total, negative, expected[table])
            _drop_temp(con)
            return None
    for table in deltas:
        con.execute(f"DELETE FROM {SCHEMA}.{table}")
        con.execute(f"INSERT INTO {SCHEMA}.{table} BY NAME SELECT * FROM marts_updated_{table}")
    con.execute(f"DELETE FROM {SCHEMA}.watermark")
    _drop_temp(con)
    return Outcome("delta", changed)


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    for table in ("marts_changed_cases", "marts_touched_reviews", "marts_touched_cases",
                  *(f"marts_updated_{t}" for t in COUNTS)):
        con.execute(f"DROP TABLE IF EXISTS {table}")
