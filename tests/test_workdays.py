"""Working days: the mainland calendar with 调休, as a table, and the KPIs that count in it.

The 2023 Spring Festival: 1月21日(六)–27日(五) off, 1月28日(六) and 29日(日) worked. A case set
around it is judged by hand below, day by day.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest

from warehouse.ddl import create_all
from warehouse.marts import build_marts
from warehouse.workdays import CalendarNotCovered, build_calendar, covered_years


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    create_all(con)
    yield con
    con.close()


def test_calendar_knows_the_2023_spring_festival_and_its_makeup_weekend(con):
    build_calendar(con)
    days = dict(con.execute(
        """SELECT day, day_type FROM marts.workday_calendar
           WHERE day BETWEEN '2023-01-20' AND '2023-01-30'""").fetchall())
    assert [days[date(2023, 1, d)] for d in range(20, 31)] == [
        "工作日", "周末", "周末", "法定节假日", "法定节假日", "法定节假日", "法定节假日", "法定节假日",
        "调休上班", "调休上班", "工作日"]
    # 2023-01-20 (Fri) to 2023-01-30 (Mon): working days after the 20th are 28th, 29th, 30th
    seq = dict(con.execute("SELECT day, workday_seq FROM marts.workday_calendar "
                           "WHERE day IN ('2023-01-20', '2023-01-30')").fetchall())
    assert seq[date(2023, 1, 30)] - seq[date(2023, 1, 20)] == 3
    assert con.execute("SELECT holiday_name FROM marts.workday_calendar WHERE day = '2023-01-28'"
                       ).fetchone()[0] == "春节"
    first, last = covered_years()
    assert first <= 2019 and last >= 2026


# (case, accepted, finished, promised working days, on time by hand)
CASES = [
    # accepted Fri 20th, 3 days: 28 (Sat, worked), 29 (Sun, worked), 30 -> deadline Mon 30th
    ("K1", "2023-01-20 10:00", "2023-01-30 16:00", 3, True),
    ("K2", "2023-01-20 10:00", "2023-01-31 09:00", 3, False),  # 4 working days
    # accepted Thu 19th, 1 day: Fri 20th; finished on the 28th (a make-up Saturday) = 2 days
    ("K3", "2023-01-19 09:00", "2023-01-28 11:00", 1, False),
    ("K4", "2023-01-19 09:00", "2023-01-20 17:00", 1, True),
    # accepted on a holiday (Tue 24th), 1 day: first working day after is Sat 28th
    ("K5", "2023-01-24 09:00", "2023-01-28 15:00", 1, True),
    ("K6", "2023-01-24 09:00", "2023-01-29 15:00", 1, False),
    # 即办件 (0 days): same day, or finished on a holiday after acceptance (no working day between)
    ("K7", "2023-01-20 09:00", "2023-01-20 11:00", 0, True),
    ("K8", "2023-01-20 16:00", "2023-01-22 10:00", 0, True),
    ("K9", "2023-01-20 16:00", "2023-01-28 10:00", 0, False),
    # calendar days would say late (10 days), working days say on time (5: 28, 29, 30, 31, 2/1)
    ("K10", "2023-01-22 09:00", "2023-02-01 09:00", 5, True),
]


def load_cases(con, cases) -> None:
    for i, (case_no, accepted, finished, promised, _) in enumerate(cases, start=1):
        item = f"I{promised}"
        con.execute(
            """INSERT INTO core.service_cases (case_no, item_code, dept_code, region_code, channel,
                   applied_at, accepted_at, finished_at, status, full_online, batch_id, source_row,
                   valid_from)
               VALUES (?, ?, 'D1', '210102', '网上办理', ?, ?, ?, '已办结', true, 'b-cases', ?, ?)""",
            [case_no, item, datetime.fromisoformat(accepted), datetime.fromisoformat(accepted),
             datetime.fromisoformat(finished), i, datetime(2023, 2, 10)])
    for promised in sorted({c[3] for c in cases}):
        con.execute(
            """INSERT INTO core.service_items (item_code, item_name, dept_code, handling_type,
                   promised_days, version, item_status, as_of, batch_id, source_row, valid_from)
               VALUES (?, '事项', 'D1', '承诺件', ?, '1', '在用', DATE '2023-01-31', 'b-items', 1, ?)""",
            [f"I{promised}", promised, datetime(2023, 2, 10)])


def test_on_time_completion_across_the_spring_festival_equals_a_hand_count(con):
    load_cases(con, CASES)
    build_marts(con)
    on_time = sum(c[4] for c in CASES)
    assert on_time == 6
    row = con.execute(
        """SELECT value, numerator, denominator FROM marts.kpi_values
           WHERE kpi_code = 'on_time_completion_rate' AND scope = 'city'
             AND period_start = DATE '2023-01-01'""").fetchone()
    assert row == (pytest.approx(100 * on_time / len(CASES)), on_time, len(CASES))


def test_handling_time_counts_working_time_only(con):
    # K8: Fri 16:00 -> Sun 10:00 = 8 h on Friday, the weekend not counted
    # K5: Tue 24th (holiday) 09:00 -> Sat 28th (worked) 15:00 = 15 h on the 28th
    # K1: Fri 20th 10:00 -> Mon 30th 16:00 = 14 h + 24 h (28th) + 24 h (29th) + 16 h = 78 h
    load_cases(con, [c for c in CASES if c[0] in ("K1", "K5", "K8")])
    build_marts(con)
    median, unit = con.execute(
        """SELECT value, unit FROM marts.kpi_values
           WHERE kpi_code = 'median_handling_days' AND scope = 'city'""").fetchone()
    assert unit == "工作日"
    assert median == pytest.approx(15 / 24)


def test_a_case_in_a_year_the_calendar_does_not_cover_fails_clearly(con):
    year = covered_years()[1] + 1
    load_cases(con, [("K99", f"{year}-01-05 09:00", f"{year}-01-06 09:00", 1, True)])
    with pytest.raises(CalendarNotCovered, match=f"1件已办结办件.*{year}年.*chinesecalendar"):
        build_marts(con)
    # nothing was half-built
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts'"
                       ).fetchone()[0] == 0
