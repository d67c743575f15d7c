"""The monthly volumes behind the charts and the 同比 / 环比 sentences, and the month's channel mix.

Record-level months and monthly reports count differently (a small record-level delivery next
to a department's monthly total), so a month is only compared with a month of the same source;
otherwise the sentence says why there is no comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

CHART_MONTHS = 36  # the charts show at most the last three years
SOURCE_ZH = {"records": "明细", "monthly_report": "月报"}


@dataclass
class Change:
    """A month's volume against the previous month (环比) and the same month a year before (同比)."""

    measure: str  # 办件量 / 有效评价数
    unit: str
    value: int
    source: str  # records / monthly_report
    mom: float | None  # percent change; None when not comparable
    yoy: float | None
    mom_note: str = ""  # why there is no comparison
    yoy_note: str = ""


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM (SELECT table_name AS t FROM duckdb_tables() "
            "WHERE schema_name = ? AND table_name = ? AND database_name = current_database() "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE schema_name = ? "
            "AND view_name = ? AND database_name = current_database())",
            [schema, table, schema, table],
        ).fetchone()[0]
    )


def volume_series(con: duckdb.DuckDBPyConnection, month: date | None) -> list[tuple[date, dict]]:
    if not exists(con, "marts", "service_volume_monthly") or month is None:
        return []
    rows = con.execute(
        """
        SELECT month, source, sum(cases), sum(online_cases), sum(reviews), sum(good_reviews),
               sum(bad_reviews), count(cases), count(reviews)
        FROM marts.service_volume_monthly
        WHERE month <= ? AND month > ? - to_months(?)
        GROUP BY ALL ORDER BY month, source""",
        [month, month, CHART_MONTHS],
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
    return sorted(series.items())


def _month_measure(volume: dict[date, dict], month: date, measure: str) -> tuple[str, int] | None:
    """(source, value) of a measure in a month: the records when they have it, else the report."""
    by = volume.get(month) or {}
    for source in ("records", "monthly_report"):
        value = (by.get(source) or {}).get(measure)
        if value is not None:
            return source, value
    return None


def changes(volume: list[tuple[date, dict]], month: date | None) -> list[Change]:
    """环比 and 同比 of the month's cases and reviews, only against a month of the same source:
    record-level months and monthly reports count differently, so they are not compared."""
    if month is None:
        return []
    series = dict(volume)
    out = []
    for measure, label, unit in (("cases", "办件量", "件"), ("reviews", "有效评价数", "条")):
        now = _month_measure(series, month, measure)
        if now is None:
            continue
        source, value = now
        change = Change(label, unit, value, source, None, None)
        for attr, back, name in (("mom", 1, "上月"), ("yoy", 12, "上年同月")):
            before = _month_measure(series, add_months(month, -back), measure)
            if before is None:
                setattr(change, f"{attr}_note", f"{name}无数据")
            elif before[0] != source:
                setattr(change, f"{attr}_note", f"{name}为{SOURCE_ZH[before[0]]}数据，口径不同，不作比较")
            elif before[1] == 0:
                setattr(change, f"{attr}_note", f"{name}为0")
            else:
                setattr(change, attr, 100 * (value - before[1]) / before[1])
        out.append(change)
    return out


def channels(con: duckdb.DuckDBPyConnection, month: date | None) -> list[tuple[str, int]]:
    if month is None or not exists(con, "latest", "service_cases"):
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


