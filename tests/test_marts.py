"""The marts on a small hand-made warehouse: every KPI checked against a figure worked out by hand.

The core rows below include superseded versions (valid_to set): they must never count. Registers
hold snapshots dated by their content (``as_of``): November and December 2022 for most, and a
second item snapshot for February 2023; each month-end reads the latest snapshot on or before it.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from warehouse import marts
from warehouse.ddl import create_all
from warehouse.marts import build_marts, load_catalogue

T0 = datetime(2022, 12, 1, 8, 0)  # an early load, later superseded
T1 = datetime(2023, 1, 10, 8, 0)  # first full load
T2 = datetime(2023, 3, 5, 9, 0)  # a later load / correction
NOV, DEC, FEB = date(2022, 11, 30), date(2022, 12, 31), date(2023, 2, 28)  # register as_of dates


def ts(text: str | None) -> datetime | None:
    return text and datetime.fromisoformat(text)


def insert(con, dataset: str, columns: str, rows: list[tuple], **fixed) -> None:
    """Insert rows given as tuples of ``columns`` (space-separated), plus ``fixed`` values."""
    names = columns.split()
    for i, values in enumerate(rows, start=1):
        row = {
            "source_row": i,
            "valid_from": T1,
            "valid_to": None,
            **fixed,
            **dict(zip(names, values, strict=True)),
        }
        cols = ", ".join(f'"{c}"' for c in row)
        con.execute(
            f"INSERT INTO core.{dataset} ({cols}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )


def cases(con, rows: list[tuple], **fixed) -> None:
    cols = (
        "case_no dept_code region_code channel applied_at accepted_at finished_at status item_code"
    )
    rows = [(*r[:4], ts(r[4]), ts(r[5]), ts(r[6]), *r[7:]) for r in rows]
    insert(con, "service_cases", cols + " full_online", rows, **fixed)


def reviews(con, rows: list[tuple], **fixed) -> None:
    rows = [(r[0], r[1], r[2], ts(r[3]), *r[4:]) for r in rows]
    cols = "review_no case_no rating reviewed_at auto_review rectification"
    insert(con, "service_reviews", cols, rows, channel="APP", **fixed)


ITEM = (
    "item_code version item_status online_available full_online handling_type promised_days"
    " dept_code"
)
ORG = "code unit_type parent_code on_platform has_homepage"
NODE = "node_id level region_code ipv6_dual_stack node_status"
SYSTEM = "system_id dept_code classified on_cloud"
REPORT = "month dept_code cases online_cases valid_reviews good_reviews bad_reviews"
INDICATOR = "reporter indicator period value source_row"
M = date  # month literals read as M(2022, 11, 1)


@pytest.fixture
def con(tmp_path: Path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    create_all(con)
    # fmt: off

    # Monthly reports: 2022-11 and 2022-12 have no records; 2023-01 has case records but no
    # review records (its 9,999 cases are ignored, its 300 reviews count).
    insert(con, "case_volume_monthly", REPORT, [
        (M(2022, 11, 1), "D1", 1000, 900, 500, 480, 5),
        (M(2022, 11, 1), "D2", 500, None, 200, 190, 2),
        (M(2022, 12, 1), "D1", 1200, 1100, 600, 590, 3),
        (M(2023, 1, 1), "D1", 9999, 9000, 300, 290, 1),
    ], batch_id="cvm1")
    insert(con, "case_volume_monthly", REPORT, [  # superseded by cvm1's 2022-12 row
        (M(2022, 12, 1), "D1", 1, 1, 1, 1, 0),
    ], batch_id="cvm0", valid_from=T0, valid_to=T1)

    cases(con, [
        ("C1", "D1", "210102001", "网上办理", "2023-01-05 09:00", "2023-01-05 10:00",
         "2023-01-06 10:00", "已办结", "I1", True),
        ("C2", "D1", "210102", "窗口办理", "2023-01-10 09:00", None,
         "2023-01-14 09:00", "已办结", "I1", False),
        ("C3", "D2", "210103001001", "移动端", "2023-01-20 09:00", "2023-01-20 12:00",
         "2023-01-20 18:00", "已办结", "I2", False),
        ("C4", "D2", "210100", "自助终端", "2023-01-31 23:00", None, None, "在办", "I2", False),
    ], batch_id="sc1")
    cases(con, [
        ("C5", "D1", "210102", "网上办理", "2023-02-01 08:00", "2023-02-01 08:00",
         "2023-02-03 08:00", "已办结", "I3", False),
        ("C6", "D2", "210103001", "移动端", "2023-02-02 08:00", None, None, "在办", "I1", False),
    ], batch_id="sc2", valid_from=T2)
    # superseded: C6 before its correction, and a withdrawn C7 (whose month must not open)
    cases(con, [
        ("C6", "D2", "210103001", "窗口办理", "2023-02-02 08:00", None, None, "在办", "I1", False),
        ("C7", "D1", "210102", "窗口办理", "2022-10-15 08:00", None, None, "在办", "I1", False),
    ], batch_id="sc1", valid_to=T2)

    reviews(con, [
        ("R1", "C1", 5, "2023-02-01 10:00", True, None),
        ("R2", "C2", 2, "2023-02-05 10:00", False, "已整改"),
        ("R3", "C3", 1, "2023-02-10 10:00", False, "整改中"),
        ("R4", "CX", 4, "2023-02-20 10:00", False, None),  # its case is not loaded
        ("R5", "C5", 3, "2023-03-01 10:00", None, None),
        ("R6", "C5", 4, "2023-03-02 10:00", False, None),
    ], batch_id="sr1")
    reviews(con, [  # superseded: R6 was first sent as a bad review
        ("R6", "C5", 1, "2023-03-02 10:00", False, "整改中"),
    ], batch_id="sr0", valid_from=T0, valid_to=T1)

    insert(con, "service_items", ITEM, [  # the December register: I1, I2, I3 in use
        ("I1", "1", "在用", True, True, "承诺件", 5, "D1"),
        ("I2", "1", "在用", True, False, "即办件", 0, "D2"),
        ("I3", "1", "在用", False, False, "承诺件", 3, "D1"),
    ], batch_id="si1", item_name="事项", as_of=DEC)
    insert(con, "service_items", ITEM, [  # the February register: I3 withdrawn (停用)
        ("I1", "1", "在用", True, True, "承诺件", 5, "D1"),
        ("I1", "2", "在用", True, True, "即办件", 1, "D1"),  # two versions in use: v2 counts
        ("I2", "1", "在用", True, False, "即办件", 0, "D2"),
        ("I3", "1", "停用", False, False, "承诺件", 3, "D1"),
    ], batch_id="si2", item_name="事项", valid_from=T2, as_of=FEB)
    insert(con, "service_items", ITEM, [  # loaded and corrected away the same day: never counts
        ("I4", "1", "在用", False, False, "承诺件", 3, "D1"),
    ], batch_id="si2bad", item_name="事项", valid_from=T2, valid_to=datetime(2023, 3, 5, 10),
       as_of=FEB)

    insert(con, "org_units", ORG, [
        ("D1", "市级部门", None, True, None),
        ("D2", "区县级部门", "210102", False, None),
        ("D3", "市级部门", None, True, None),
        ("210102", "区县", None, None, None),
        ("210103", "区县", None, None, None),
        ("210102001", "街道乡镇", "210102", None, True),
        ("210102002", "街道乡镇", "210102", None, False),
        ("210103001", "街道乡镇", None, None, True),  # no parent: placed by code prefix
        ("210103001001", "社区村", "210103001", None, True),
        ("C-X", "社区村", "S-UNKNOWN", None, True),  # no district found: city only
        ("C-Y", "社区村", "210102001", None, True),  # its street's parent is the district
    ], batch_id="ou1", name="单位", as_of=DEC)
    insert(con, "org_units", ORG, [  # the November register: only D2, then on the platform
        ("D2", "区县级部门", None, True, None),
    ], batch_id="ou0", name="单位", valid_from=T0, as_of=NOV)
    insert(con, "org_units", ORG, [  # a version corrected away: never counts
        ("D3", "市级部门", None, False, None),
    ], batch_id="ou1", name="单位", valid_to=T2, as_of=DEC)

    insert(con, "extranet_nodes", NODE, [
        ("N1", "市级", "210100", True, "在用"),
        ("N2", "区县级", "210102", False, "在用"),
        ("N3", "街道乡镇级", "210102001", None, "在用"),
        ("N4", "社区村级", "210103001001", True, "撤销"),
    ], batch_id="en1", unit_name="单位", as_of=DEC)
    insert(con, "extranet_nodes", NODE, [  # the November register
        ("N3", "社区村级", "210102001", False, "在用"),
    ], batch_id="en0", unit_name="单位", valid_from=T0, as_of=NOV)

    insert(con, "cloud_systems", SYSTEM, [
        ("S1", "D1", False, True),
        ("S2", "D1", False, False),
        ("S3", "D2", True, True),
        ("S4", "D2", True, False),
    ], batch_id="cs1", system_name="系统", as_of=DEC)
    insert(con, "cloud_systems", SYSTEM, [  # the November register
        ("S2", "D1", False, True),
    ], batch_id="cs0", system_name="系统", valid_from=T0, as_of=NOV)

    insert(con, "indicators", INDICATOR + " valid_from", [
        ("甲", "egress_bandwidth_gbps", "2021", 4.5, 1, T0),
        ("甲", "egress_bandwidth_gbps", "2022-04-28", 20.0, 2, T1),
        ("甲", "machine_rooms_closed", "2022-Q2", 21.0, 3, T1),
        ("甲", "base_libraries", "2022-06", 5.0, 4, T1),
        ("甲", "theme_libraries", "2022", 23.0, 5, T1),
        ("乙", "theme_libraries", "2022", 24.0, 7, T1),  # same load, later row: wins
    ], batch_id="in1")
    insert(con, "indicators", INDICATOR, [  # loaded later: wins over 甲's figure for the period
        ("乙", "machine_rooms_closed", "2022-Q2", 19.0, 1),
    ], batch_id="in2", valid_from=T2)
    insert(con, "indicators", INDICATOR, [  # superseded
        ("丙", "machine_rooms_closed", "2022-Q2", 99.0, 1),
    ], batch_id="in0", valid_from=T2, valid_to=datetime(2023, 3, 6))

    # fmt: on
    yield con
    con.close()


@pytest.fixture
def built(con):
    counts = build_marts(con, run_id="run-1")
    return con, counts


def kpi(con, code, period_start, scope="city"):
    """(value, numerator, denominator, batch_ids) of one KPI row, or None when the row is absent."""
    rows = con.execute(
        """SELECT value, numerator, denominator, batch_ids FROM marts.kpi_values
           WHERE kpi_code = ? AND period_start = ? AND scope = ?""",
        [code, period_start, scope],
    ).fetchall()
    assert len(rows) <= 1
    return rows[0] if rows else None


def value(con, code, period_start, scope="city"):
    row = kpi(con, code, period_start, scope)
    return None if row is None else row[0]


def test_counts_and_shape(built):
    con, counts = built
    assert counts["kpi_catalogue"] == len(load_catalogue())
    for table in ("service_volume_monthly", "kpi_values"):
        assert counts[table] == con.execute(f"SELECT count(*) FROM marts.{table}").fetchone()[0] > 0
    cols = con.execute(
        """SELECT column_name, data_type FROM duckdb_columns()
           WHERE schema_name = 'marts' AND table_name = 'kpi_values' ORDER BY column_index"""
    ).fetchall()
    assert cols == [
        ("kpi_code", "VARCHAR"),
        ("name_zh", "VARCHAR"),
        ("period_grain", "VARCHAR"),
        ("period_start", "DATE"),
        ("as_of", "DATE"),
        ("scope", "VARCHAR"),
        ("value", "DOUBLE"),
        ("unit", "VARCHAR"),
        ("numerator", "DOUBLE"),
        ("denominator", "DOUBLE"),
        ("batch_ids", "VARCHAR[]"),
        ("run_id", "VARCHAR"),
        ("computed_at", "TIMESTAMP"),
    ]
    # one row per key; name and unit from the catalogue; run id stamped
    assert (
        con.execute(
            """SELECT count(*) FROM (
               SELECT kpi_code, period_grain, period_start, scope FROM marts.kpi_values
           GROUP BY ALL HAVING count(*) > 1)"""
        ).fetchone()[0]
        == 0
    )
    assert con.execute(
        """SELECT DISTINCT name_zh, unit, run_id FROM marts.kpi_values
           WHERE kpi_code = 'case_online_rate'"""
    ).fetchall() == [("网上实办率", "%", "run-1")]
    # every marts table and column has a Chinese comment
    missing = con.execute(
        """SELECT table_name, column_name FROM duckdb_columns()
           WHERE schema_name = 'marts' AND (comment IS NULL OR comment = '')"""
    ).fetchall()
    assert missing == []
    assert (
        con.execute(
            "SELECT count(*) FROM duckdb_tables()"
            " WHERE schema_name = 'marts' AND (comment IS NULL OR comment = '')"
        ).fetchone()[0]
        == 0
    )


def test_catalogue_table(built):
    con, _ = built
    row = con.execute(
        "SELECT name_zh, unit, definition, sources, reference FROM marts.kpi_catalogue"
        " WHERE kpi_code = ?",
        ["case_volume_cumulative"],
    ).fetchone()
    assert row[:2] == ("累计办件量", "件")
    assert "月报" in row[2]
    assert row[3] == ["case_volume_monthly", "service_cases"]
    assert row[4] == 70_854_000


def test_cumulative_volumes(built):
    con, _ = built
    # 2022-11/12 from monthly reports (the superseded 2022-12 report ignored); 2023-01 from the
    # 4 case records (the 9,999 of the report ignored); 2023-02 two records (C6 once).
    expected = {
        date(2022, 11, 1): 1500,
        date(2022, 12, 1): 2700,
        date(2023, 1, 1): 2704,
        date(2023, 2, 1): 2706,
    }
    got = dict(
        con.execute(
            """SELECT period_start, value FROM marts.kpi_values
           WHERE kpi_code = 'case_volume_cumulative' AND scope = 'city' ORDER BY 1"""
        ).fetchall()
    )
    assert got == expected  # the withdrawn 2022-10 case (C7) opens no month
    assert kpi(con, "case_volume_cumulative", date(2022, 11, 1))[3] == ["cvm1"]
    assert kpi(con, "case_volume_cumulative", date(2023, 2, 1))[3] == ["cvm1", "sc1", "sc2"]
    # per department; D2 has no December report: the cumulative carries over
    assert value(con, "case_volume_cumulative", date(2022, 12, 1), "D2") == 500
    assert value(con, "case_volume_cumulative", date(2023, 2, 1), "D2") == 503
    assert value(con, "case_volume_cumulative", date(2023, 2, 1), "D1") == 2203

    # reviews: reports for 2022-11..2023-01 (no review records yet), records from 2023-02
    got = dict(
        con.execute(
            """SELECT period_start, value FROM marts.kpi_values
           WHERE kpi_code = 'review_valid_cumulative' AND scope = 'city' ORDER BY 1"""
        ).fetchall()
    )
    assert got == {
        date(2022, 11, 1): 700,
        date(2022, 12, 1): 1300,
        date(2023, 1, 1): 1600,
        date(2023, 2, 1): 1604,
        date(2023, 3, 1): 1606,
    }
    # R4's case is not loaded: counted for the city, not for a department
    assert value(con, "review_valid_cumulative", date(2023, 3, 1), "D1") == 500 + 600 + 300 + 2 + 2


def test_case_online_rate(built):
    con, _ = built
    # report months: only rows that report online cases (D2's 2022-11 row has none)
    assert kpi(con, "case_online_rate", date(2022, 11, 1))[:3] == (90.0, 900, 1000)
    assert value(con, "case_online_rate", date(2022, 11, 1), "D1") == 90.0
    assert kpi(con, "case_online_rate", date(2022, 11, 1), "D2") is None  # absent, not zero
    assert value(con, "case_online_rate", date(2022, 12, 1)) == pytest.approx(100 * 1100 / 1200)
    # record months: C1 网上办理 and C3 移动端 of 4 cases; the report's 9000/9999 ignored
    assert kpi(con, "case_online_rate", date(2023, 1, 1))[:4] == (50.0, 2, 4, ["sc1"])
    assert value(con, "case_online_rate", date(2023, 1, 1), "210102") == 50.0
    assert value(con, "case_online_rate", date(2023, 1, 1), "210103") == 100.0
    assert (
        kpi(con, "case_online_rate", date(2023, 1, 1), "210100") is None
    )  # city level, no district
    assert value(con, "case_online_rate", date(2023, 1, 1), "D2") == 50.0
    # C6's current version is 移动端 (its superseded 窗口办理 version ignored)
    assert kpi(con, "case_online_rate", date(2023, 2, 1))[:3] == (100.0, 2, 2)


def test_review_rates(built):
    con, _ = built
    assert kpi(con, "satisfaction_rate", date(2022, 11, 1))[:3] == (
        pytest.approx(100 * 670 / 700),
        670,
        700,
    )
    assert value(con, "satisfaction_rate", date(2023, 1, 1)) == pytest.approx(100 * 290 / 300)
    assert kpi(con, "satisfaction_rate", date(2023, 2, 1))[:4] == (50.0, 2, 4, ["sr1"])
    assert value(con, "satisfaction_rate", date(2023, 3, 1)) == 50.0
    assert kpi(con, "auto_review_share", date(2023, 2, 1))[:3] == (25.0, 1, 4)
    assert kpi(con, "auto_review_share", date(2023, 3, 1))[:3] == (0.0, 0, 2)  # a true zero
    assert kpi(con, "auto_review_share", date(2023, 1, 1)) is None  # reports say nothing about it
    assert kpi(con, "bad_review_rectification_rate", date(2023, 2, 1))[:3] == (50.0, 1, 2)
    # March has no bad review (R6's bad version is superseded): absent, not zero
    assert kpi(con, "bad_review_rectification_rate", date(2023, 3, 1)) is None


def test_case_handling(built):
    con, _ = built
    # items of the latest register (February). C1: Thu -> Fri, 1 working day <= 1 (I1 v2, the
    # greater in-use version); C2: Tue -> Sat, 3 working days (Wed, Thu, Fri) from application > 1;
    # C3: same day <= 0
    assert kpi(con, "on_time_completion_rate", date(2023, 1, 1)) == (
        pytest.approx(100 * 2 / 3),
        2,
        3,
        ["sc1", "si2"],
    )
    assert value(con, "on_time_completion_rate", date(2023, 1, 1), "D1") == 50.0
    assert value(con, "on_time_completion_rate", date(2023, 1, 1), "D2") == 100.0
    # C5's item has no in-use version: no finished case can be judged in February
    assert kpi(con, "on_time_completion_rate", date(2023, 2, 1)) is None
    # handling time in working days: C1 1.0; C2 Tue 09:00 -> Sat 09:00 = 15 h + 3 x 24 h on
    # working days (Saturday not counted) = 3.625; C3 0.25
    assert value(con, "median_handling_days", date(2023, 1, 1)) == 1.0
    assert value(con, "median_handling_days", date(2023, 1, 1), "D1") == (1.0 + 3.625) / 2
    assert value(con, "median_handling_days", date(2023, 1, 1), "D2") == 0.25
    assert value(con, "median_handling_days", date(2023, 2, 1)) == 2.0


def as_of(con, code, period_start, scope="city"):
    return con.execute(
        "SELECT as_of FROM marts.kpi_values WHERE kpi_code = ? AND period_start = ? AND scope = ?",
        [code, period_start, scope],
    ).fetchone()[0]


def test_item_snapshots(built):
    con, _ = built
    months = con.execute(
        """SELECT period_start, as_of FROM marts.kpi_values
           WHERE kpi_code = 'item_online_rate' AND scope = 'city' ORDER BY 1"""
    ).fetchall()
    # no register before December; December carried to January; February to March
    assert months == [(M(2022, 12, 1), DEC), (M(2023, 1, 1), DEC), (M(2023, 2, 1), FEB),
                      (M(2023, 3, 1), FEB)]
    # as of December: I1, I2, I3 in use
    for month in (M(2022, 12, 1), M(2023, 1, 1)):
        assert kpi(con, "item_online_rate", month)[:3] == (pytest.approx(100 * 2 / 3), 2, 3)
        assert value(con, "item_full_online_share", month) == pytest.approx(100 / 3)
        assert value(con, "item_instant_share", month) == pytest.approx(100 / 3)
    # as of February: I1 (v2 counted once), I2; I3 停用; I4 corrected away the same day
    assert kpi(con, "item_online_rate", M(2023, 2, 1)) == (100.0, 2, 2, ["si2"])
    assert value(con, "item_full_online_share", M(2023, 3, 1)) == 50.0
    assert value(con, "item_instant_share", M(2023, 3, 1)) == 100.0
    assert value(con, "item_full_online_share", M(2023, 3, 1), "D2") == 0.0
    assert value(con, "item_full_online_share", M(2023, 3, 1), "D1") == 100.0
    assert kpi(con, "item_online_rate", M(2022, 11, 1)) is None


def test_org_unit_snapshots(built):
    con, _ = built
    dec = M(2022, 12, 1)
    assert value(con, "departments_onboarded", dec) == 2  # D1, D3 (D2 off; D3's closed row never)
    assert value(con, "departments_onboarded", M(2022, 11, 1)) == 1  # D2, as in November
    assert as_of(con, "departments_onboarded", M(2022, 11, 1)) == NOV
    assert value(con, "departments_onboarded", M(2023, 3, 1)) == 2  # December carried forward
    assert as_of(con, "departments_onboarded", M(2023, 3, 1)) == DEC
    assert value(con, "street_portals", dec) == 2
    assert value(con, "street_portals", dec, "210102") == 1  # via parent
    assert value(con, "street_portals", dec, "210103") == 1  # via code prefix
    assert value(con, "community_portals", dec) == 3  # C-X counts for the city only
    assert value(con, "community_portals", dec, "210103") == 1  # code prefix
    assert value(con, "community_portals", dec, "210102") == 1  # C-Y: street's parent
    # the November register held no street or community: absent, not zero
    assert kpi(con, "street_portals", M(2022, 11, 1)) is None
    assert kpi(con, "community_portals", M(2022, 11, 1)) is None


def test_extranet_snapshots(built):
    con, _ = built
    dec = M(2022, 12, 1)
    assert value(con, "extranet_nodes", dec) == 3
    assert value(con, "extranet_levels_covered", dec) == 3
    assert kpi(con, "ipv6_dual_stack_share", dec)[:3] == (pytest.approx(100 / 3), 1, 3)
    assert value(con, "extranet_nodes", dec, "210102") == 2
    assert value(con, "ipv6_dual_stack_share", dec, "210102") == 0.0
    assert value(con, "extranet_nodes", dec, "210103") == 0  # a node is registered, revoked
    assert kpi(con, "ipv6_dual_stack_share", dec, "210103") is None  # no node in use
    assert kpi(con, "extranet_nodes", dec, "210100") is None  # the city itself is no district
    assert value(con, "extranet_levels_covered", M(2022, 11, 1)) == 1  # November: N3 only


def test_cloud_snapshots(built):
    con, _ = built
    dec = M(2022, 12, 1)
    assert value(con, "cloud_systems_hosted", dec) == 2
    assert kpi(con, "cloud_rate_nonclassified", dec)[:4] == (50.0, 1, 2, ["cs1"])
    assert value(con, "cloud_rate_nonclassified", dec, "D1") == 50.0
    assert kpi(con, "cloud_rate_nonclassified", dec, "D2") is None  # no non-classified system
    assert value(con, "cloud_systems_hosted", M(2022, 11, 1)) == 1  # S2, as in November


def test_indicators(built):
    con, _ = built
    rows = con.execute(
        """SELECT kpi_code, period_grain, period_start, as_of, value, batch_ids FROM marts.kpi_values
           WHERE scope = 'city' AND kpi_code IN (SELECT kpi_code FROM marts.kpi_catalogue
                                                 WHERE sources = ['indicators'])
             AND (period_grain <> 'month' OR period_start IN ('2022-06-01', '2022-11-01', '2023-03-01'))
           ORDER BY 1, 2, 3"""
    ).fetchall()
    assert rows == [
        ("base_libraries", "month", M(2022, 6, 1), date(2022, 6, 30), 5.0, ["in1"]),  # as reported
        ("base_libraries", "month", M(2022, 11, 1), date(2022, 6, 30), 5.0, ["in1"]),  # carried
        ("base_libraries", "month", M(2023, 3, 1), date(2022, 6, 30), 5.0, ["in1"]),
        ("egress_bandwidth_gbps", "day", M(2022, 4, 28), date(2022, 4, 28), 20.0, ["in1"]),
        ("egress_bandwidth_gbps", "month", M(2022, 11, 1), date(2022, 4, 28), 20.0, ["in1"]),
        ("egress_bandwidth_gbps", "month", M(2023, 3, 1), date(2022, 4, 28), 20.0, ["in1"]),
        ("egress_bandwidth_gbps", "year", M(2021, 1, 1), date(2021, 12, 31), 4.5, ["in1"]),
        ("machine_rooms_closed", "month", M(2022, 11, 1), date(2022, 6, 30), 19.0, ["in2"]),
        ("machine_rooms_closed", "month", M(2023, 3, 1), date(2022, 6, 30), 19.0, ["in2"]),
        ("machine_rooms_closed", "quarter", M(2022, 4, 1), date(2022, 6, 30), 19.0, ["in2"]),
        # the year 2022 is reported as of 2022-12-31: not yet known at the end of November
        ("theme_libraries", "month", M(2023, 3, 1), date(2022, 12, 31), 24.0, ["in1"]),
        ("theme_libraries", "year", M(2022, 1, 1), date(2022, 12, 31), 24.0, ["in1"]),
    ]


def test_missing_inputs_are_absent_never_zero(tmp_path):
    con = duckdb.connect(str(tmp_path / "empty.duckdb"))
    create_all(con)
    counts = build_marts(con)
    assert counts.pop("workday_calendar") > 365 * 20  # the calendar is there, data or not
    assert counts == {
        "kpi_catalogue": len(load_catalogue()),
        "service_volume_monthly": 0,
        "kpi_values": 0,
    }
    # only a monthly report for 2023-01 without online figures: volumes yes, online rate no
    insert(
        con,
        "case_volume_monthly",
        "month dept_code cases",
        [(M(2023, 1, 1), "D1", 10)],
        batch_id="b1",
    )
    build_marts(con)
    rows = con.execute(
        "SELECT kpi_code, scope, value FROM marts.kpi_values ORDER BY ALL"
    ).fetchall()
    assert rows == [
        ("case_volume_cumulative", "D1", 10.0),
        ("case_volume_cumulative", "city", 10.0),
    ]
    assert con.execute("SELECT count(*) FROM marts.kpi_values WHERE value = 0").fetchone()[0] == 0


def test_service_volume_monthly(built):
    con, _ = built
    per_month = con.execute(
        """SELECT month, sum(cases), sum(reviews) FROM marts.service_volume_monthly
           GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    # each figure comes from one source per month: summing never double counts
    assert per_month == [
        (date(2022, 11, 1), 1500, 700),
        (date(2022, 12, 1), 1200, 600),
        (date(2023, 1, 1), 4, 300),
        (date(2023, 2, 1), 2, 4),
        (date(2023, 3, 1), None, 2),
    ]
    rows = con.execute(
        """SELECT source, dept_code, region_code, cases, online_cases, full_online_cases, reviews,
                  good_reviews, bad_reviews, auto_reviews, batch_ids
           FROM marts.service_volume_monthly WHERE month = DATE '2023-02-01' ORDER BY ALL"""
    ).fetchall()
    assert rows == [
        ("records", "D1", "210102", 1, 1, 0, 2, 1, 1, 1, ["sc2", "sr1"]),
        ("records", "D2", "210103", 1, 1, 0, 1, 0, 1, 0, ["sc2", "sr1"]),
        ("records", None, None, 0, 0, 0, 1, 1, 0, 0, ["sr1"]),
    ]
    jan = con.execute(
        """SELECT source, dept_code, region_code, cases, reviews, good_reviews
           FROM marts.service_volume_monthly WHERE month = DATE '2023-01-01' ORDER BY ALL"""
    ).fetchall()
    assert jan == [
        ("monthly_report", "D1", None, None, 300, 290),  # cases from records this month
        ("records", "D1", "210102", 2, None, None),  # reviews from the report this month
        ("records", "D2", "210103", 1, None, None),
        ("records", "D2", None, 1, None, None),  # C4: city-level region code, no district
    ]


def test_rebuild_is_atomic_and_checked(built, tmp_path, monkeypatch):
    con, counts = built
    kpi_dir = tmp_path / "kpis"
    kpi_dir.mkdir()
    for f in marts.KPI_SQL_DIR.glob("*.sql"):
        (kpi_dir / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(marts, "KPI_SQL_DIR", kpi_dir)

    (kpi_dir / "cloud.sql").unlink()
    with pytest.raises(ValueError, match="cloud_systems_hosted has no SQL"):
        build_marts(con)

    (kpi_dir / "cloud.sql").write_text(
        "-- kpi_codes: cloud_systems_hosted, cloud_rate_nonclassified, nope\nSELECT 1",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="nope, which is not in"):
        build_marts(con)

    # a KPI that fails mid-build leaves the previous marts untouched
    (kpi_dir / "cloud.sql").write_text(
        "-- kpi_codes: cloud_systems_hosted, cloud_rate_nonclassified\n"
        "SELECT 'cloud_systems_hosted' AS kpi_code, 'month' AS period_grain,"
        " DATE '2023-01-01' AS period_start,"
        " 'city' AS scope, 1.0 AS value, NULL AS numerator, NULL AS denominator, [] AS batch_ids"
        " FROM core.no_such_table",
        encoding="utf-8",
    )
    with pytest.raises(Exception, match="no_such_table"):
        build_marts(con, run_id="run-2")
    assert con.execute("SELECT count(*), min(run_id) FROM marts.kpi_values").fetchone() == (
        counts["kpi_values"],
        "run-1",
    )

    # a duplicate key is refused
    (kpi_dir / "cloud.sql").write_text(
        "-- kpi_codes: cloud_systems_hosted, cloud_rate_nonclassified\n"
        "SELECT 'cloud_systems_hosted' AS kpi_code, 'month' AS period_grain,"
        " DATE '2023-01-01' AS period_start,"
        " 'city' AS scope, 1.0 AS value, NULL AS numerator, NULL AS denominator, [] AS batch_ids"
        " FROM range(2)",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="several rows"):
        build_marts(con, run_id="run-3")
    assert con.execute("SELECT DISTINCT run_id FROM marts.kpi_values").fetchall() == [("run-1",)]


def test_docs_list_every_kpi():
    text = (Path(__file__).parents[1] / "docs" / "kpis.md").read_text(encoding="utf-8")
    for entry in load_catalogue():
        assert f"`{entry['code']}`" in text, entry["code"]
    for f in marts.kpi_sql_files():
        assert f.path.name in text


# --- the shared counts kept between builds -----------------------------------------------------

T3 = datetime(2023, 4, 1, 8, 0)  # a load after every row of the fixture


def marts_rows(con) -> dict[str, list[tuple]]:
    return {
        "kpi_values": con.execute(
            "SELECT * EXCLUDE (run_id, computed_at) FROM marts.kpi_values ORDER BY ALL"
        ).fetchall(),
        "service_volume_monthly": con.execute(
            "SELECT * FROM marts.service_volume_monthly ORDER BY ALL"
        ).fetchall(),
    }


def shared_build(con) -> tuple[str, str | None]:
    return con.execute("SELECT mode, reason FROM marts_state.watermark").fetchone()


def from_scratch(con) -> dict[str, list[tuple]]:
    """The marts rebuilt with no kept counts (the state dropped first)."""
    con.execute("DROP SCHEMA marts_state CASCADE")
    build_marts(con)
    assert shared_build(con) == ("full", "no counts kept yet")
    return marts_rows(con)


def test_shared_counts_are_updated_from_what_changed(built):
    """A later load changes cases and reviews in every way a load can: the next build reads only
    the changed rows and gets the marts a rebuild from scratch gets."""
    con, _ = built
    assert shared_build(con) == ("full", "no counts kept yet")
    # fmt: off
    # C2 moves from D1 to D2 (its review R2 is unchanged: it must follow its case), a new case C8,
    # and CX, the case R4 reviewed, arrives
    con.execute("UPDATE core.service_cases SET valid_to = ? WHERE case_no = 'C2' AND valid_to IS NULL",
                [T3])
    cases(con, [
        ("C2", "D2", "210103", "窗口办理", "2023-01-10 09:00", None, "2023-01-14 09:00", "已办结", "I1", False),
        ("C8", "D1", "210102", "移动端", "2023-03-10 09:00", None, None, "在办", "I1", True),
        ("CX", "D2", "210103001", "网上办理", "2023-01-30 09:00", None, None, "在办", "I2", False),
    ], batch_id="sc3", valid_from=T3)
    # R1 re-rated, R3 withdrawn, a new review R7 of C8
    con.execute("UPDATE core.service_reviews SET valid_to = ? WHERE review_no IN ('R1', 'R3') "
                "AND valid_to IS NULL", [T3])
    reviews(con, [
        ("R1", "C1", 1, "2023-02-01 10:00", False, "整改中"),
        ("R7", "C8", 5, "2023-03-12 10:00", True, None),
    ], batch_id="sr2", valid_from=T3)
    # fmt: on
    before = marts_rows(con)
    build_marts(con, run_id="run-2")
    assert shared_build(con) == ("delta", None)
    # 4 case versions appended or closed; reviews of changed cases or changed themselves: R1 (twice),
    # R2, R3, R4, R7
    assert con.execute("SELECT changed_rows FROM marts_state.watermark").fetchone()[0] == 4 + 6
    updated = marts_rows(con)
    assert updated != before
    assert updated == from_scratch(con)
    # and a build with nothing new keeps every count
    build_marts(con)
    build_marts(con)
    assert shared_build(con) == ("delta", None)
    assert marts_rows(con) == updated


def test_shared_counts_are_rebuilt_when_an_update_cannot_be_trusted(built):
    """Rows deleted since the last build (a killed load undone), a load dated before it (a clock
    set back) or changed counting SQL: the counts are rebuilt from every current row."""
    con, _ = built
    con.execute("DELETE FROM core.service_cases WHERE batch_id = 'sc2'")
    build_marts(con)
    assert shared_build(con) == ("full", "service_cases: rows deleted, or changed with a time before the last build")
    assert marts_rows(con) == from_scratch(con)

    reviews(con, [("R8", "C1", 4, "2023-02-03 10:00", False, None)], batch_id="sr3", valid_from=T1)
    build_marts(con)
    assert shared_build(con)[0] == "full"
    assert marts_rows(con) == from_scratch(con)

    con.execute("UPDATE marts_state.watermark SET digest = 'older'")
    build_marts(con)
    assert shared_build(con) == ("full", "the counting SQL changed")
