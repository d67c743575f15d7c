"""Registers delivered for several month-ends, and a late correction, through real Dagster runs.

The files state their dates the ways departments write them (a title line, a title row in a
workbook, a 统计日期 column, a month in the title); one states none. Every snapshot KPI for
every month is compared with a count done by hand from the rows below.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import xlsxwriter

from assets.core import core_assets, cross_checks, landing_specs
from assets.marts import marts
from assets.quality import load_summary
from pipelines.resources import ExportsFolder, LandingFolder, PersonalDataKey, Warehouse
from tests.departments import write_csv

NODE_HEADER = ["接入点编号", "接入单位", "层级", "行政区划代码", "是否IPv6双栈", "状态"]
JAN, FEB, MAR = date(2023, 1, 1), date(2023, 2, 1), date(2023, 3, 1)


def delivered(path: Path, when: datetime) -> Path:
    """Set the file's modification time: the order (and, undated, the date) of delivery."""
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def node_csv(path: Path, rows: list[list[str]], title: str | None = None,
             as_of_column: str | None = None) -> Path:
    header = NODE_HEADER + (["统计日期"] if as_of_column else [])
    rows = [r + [as_of_column] for r in rows] if as_of_column else rows
    write_csv(path, header, rows, encoding="gbk")
    if title:  # a title line above the header, as a sheet saved as CSV has
        path.write_bytes(f"{title}\r\n".encode("gbk") + path.read_bytes())
    return path


def node_xlsx(path: Path, title: str, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("接入点")
    ws.merge_range(0, 0, 0, len(NODE_HEADER) - 1, title)
    for r, row in enumerate([NODE_HEADER, *rows], start=1):
        for c, v in enumerate(row):
            ws.write_string(r, c, v)
    wb.close()
    return path


def run(landing: Path, warehouse: Path, exports: Path) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [*landing_specs, *core_assets, *cross_checks, load_summary, marts],
        resources={
            "landing": LandingFolder(path=str(landing)),
            "warehouse": Warehouse(path=str(warehouse)),
            "exports": ExportsFolder(path=str(exports)),
            "personal_data_key": PersonalDataKey(key="test-key"),
        },
    )
    assert result.success
    return result


def snapshot(db: Path, code: str, scope: str = "city") -> dict[date, tuple]:
    """(value, as_of) of a KPI per month."""
    with duckdb.connect(str(db.with_name(db.stem + ".writer.duckdb")), read_only=True) as con:
        rows = con.execute(
            """SELECT period_start, value, as_of FROM marts.kpi_values
               WHERE kpi_code = ? AND scope = ? AND period_grain = 'month' ORDER BY 1""",
            [code, scope]).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    root = tmp_path_factory.mktemp("history")
    landing, warehouse, exports = root / "landing", root / "wh" / "gm.duckdb", root / "exports"
    nodes = landing / "extranet_nodes"
    # January: a CSV with a title line. N3 is registered but revoked.
    delivered(node_csv(nodes / "接入点_1月.csv", [
        ["N1", "市大数据局", "市级", "210100", "是", "在用"],
        ["N2", "和平区政府", "区县级", "210102", "否", "在用"],
        ["N3", "太原街街道", "街道乡镇级", "210102001", "是", "撤销"],
    ], title="沈阳市电子政务外网接入点清单（截至2023年1月31日）"), datetime(2023, 2, 3, 9))
    # February: a workbook whose title says 截至2023年2月底
    delivered(node_xlsx(nodes / "接入点_2月.xlsx", "政务外网接入点清单（截至2023年2月底）", [
        ["N1", "市大数据局", "市级", "210100", "是", "在用"],
        ["N2", "和平区政府", "区县级", "210102", "否", "在用"],
        ["N3", "太原街街道", "街道乡镇级", "210102001", "是", "在用"],
        ["N4", "太原街社区", "社区村级", "210102001001", "否", "在用"],
    ]), datetime(2023, 3, 2, 9))
    # March: a 统计日期 column
    delivered(node_csv(nodes / "接入点_3月.csv", [
        ["N1", "市大数据局", "市级", "210100", "是", "在用"],
        ["N2", "和平区政府", "区县级", "210102", "是", "在用"],
        ["N3", "太原街街道", "街道乡镇级", "210102001", "是", "在用"],
        ["N4", "太原街社区", "社区村级", "210102001001", "否", "在用"],
        ["N5", "沈河区政府", "区县级", "210103", "是", "在用"],
    ], as_of_column="2023-03-31"), datetime(2023, 4, 3, 9))
    # an undated cloud register, delivered on 2023-03-10
    delivered(write_csv(landing / "cloud_systems" / "业务系统清单.csv",
                        ["系统编号", "系统名称", "所属部门编码", "是否涉密", "是否上云"],
                        [["S1", "审批系统", "D1", "否", "是"], ["S2", "档案系统", "D1", "否", "否"]]),
              datetime(2023, 3, 10, 9))
    # an indicator sheet without a 统计期 column: its title says which month it reports
    indicators = write_csv(landing / "indicators" / "指标报送.csv", ["报送单位", "指标名称", "数值"],
                           [["市大数据局", "建成基础库", "6"], ["市大数据局", "形成主题库", "25"]])
    indicators.write_bytes("沈阳市数字政府建设指标报送表（截至2023年3月底）\r\n".encode()
                           + indicators.read_bytes())
    delivered(indicators, datetime(2023, 4, 6, 9))
    run(landing, warehouse, exports)
    before = {code: snapshot(warehouse, code)
              for code in ("extranet_nodes", "extranet_levels_covered", "ipv6_dual_stack_share")}
    before["district"] = snapshot(warehouse, "extranet_nodes", "210102")

    # After March, February is corrected: N3 was not connected yet (dropped), N4 was revoked.
    delivered(node_csv(nodes / "接入点_2月_更正.csv", [
        ["N1", "市大数据局", "市级", "210100", "是", "在用"],
        ["N2", "和平区政府", "区县级", "210102", "否", "在用"],
        ["N4", "太原街社区", "社区村级", "210102001001", "否", "撤销"],
    ], title="政务外网接入点清单 统计期：2023年2月"), datetime(2023, 4, 20, 9))
    run(landing, warehouse, exports)
    return {"warehouse": warehouse, "before": before}


def test_snapshot_kpis_per_month_equal_hand_counts(history):
    before = history["before"]
    # in use: Jan N1, N2; Feb N1-N4; Mar N1-N5. Each month reads its own snapshot.
    assert before["extranet_nodes"] == {JAN: (2, date(2023, 1, 31)), FEB: (4, date(2023, 2, 28)),
                                        MAR: (5, date(2023, 3, 31))}
    assert {m: v for m, (v, _) in before["extranet_levels_covered"].items()} == {JAN: 2, FEB: 4, MAR: 4}
    # dual stack in use: Jan N1 of 2; Feb N1, N3 of 4; Mar N1, N2, N3, N5 of 5
    assert {m: v for m, (v, _) in before["ipv6_dual_stack_share"].items()} == {
        JAN: 50.0, FEB: 50.0, MAR: 80.0}
    # district 210102 (N2, N3, N4 by code prefix): Jan 1, Feb 3, Mar 3
    assert {m: v for m, (v, _) in before["district"].items()} == {JAN: 1, FEB: 3, MAR: 3}


def test_a_late_correction_changes_its_own_month_only(history):
    db, before = history["warehouse"], history["before"]
    after = snapshot(db, "extranet_nodes")
    assert after[FEB] == (2, date(2023, 2, 28))  # N1, N2: N3 dropped, N4 revoked
    assert after[JAN] == before["extranet_nodes"][JAN]
    assert after[MAR] == before["extranet_nodes"][MAR]
    assert {m: v for m, (v, _) in snapshot(db, "extranet_levels_covered").items()} == {
        JAN: 2, FEB: 2, MAR: 4}
    assert snapshot(db, "extranet_nodes", "210102")[FEB][0] == 1
    with duckdb.connect(str(db.with_name(db.stem + ".writer.duckdb")), read_only=True) as con:
        # the February rows the correction replaced or dropped stay queryable as history
        closed = con.execute(
            """SELECT node_id, node_status FROM core.extranet_nodes
               WHERE as_of = DATE '2023-02-28' AND valid_to IS NOT NULL ORDER BY 1""").fetchall()
        assert closed == [("N3", "在用"), ("N4", "在用")]
        current = con.execute(
            """SELECT as_of, count(*) FROM latest.extranet_nodes GROUP BY 1 ORDER BY 1""").fetchall()
        assert current == [(date(2023, 1, 31), 3), (date(2023, 2, 28), 3), (date(2023, 3, 31), 5)]


def test_an_undated_register_takes_its_delivery_date_and_says_so(history):
    db = history["warehouse"]
    assert snapshot(db, "cloud_systems_hosted") == {MAR: (1, date(2023, 3, 10))}
    with duckdb.connect(str(db.with_name(db.stem + ".writer.duckdb")), read_only=True) as con:
        status, reason, period = con.execute(
            "SELECT status, reason, period_max FROM quality.load_batches WHERE dataset = 'cloud_systems'"
        ).fetchone()
        dated = con.execute(
            "SELECT DISTINCT period_max FROM quality.load_batches WHERE dataset = 'extranet_nodes' "
            "ORDER BY 1").fetchall()
    assert status == "loaded" and period == "2023-03-10"
    assert "未注明统计日期" in reason and "2023年3月10日" in reason and "2行" in reason
    assert dated == [("2023-01-31",), ("2023-02-28",), ("2023-03-31",)]


def test_an_indicator_sheet_takes_its_period_from_its_title(history):
    db = history["warehouse"]
    assert snapshot(db, "base_libraries") == {MAR: (6, date(2023, 3, 31))}
    assert snapshot(db, "theme_libraries") == {MAR: (25, date(2023, 3, 31))}
    with duckdb.connect(str(db.with_name(db.stem + ".writer.duckdb")), read_only=True) as con:
        assert con.execute("SELECT DISTINCT period FROM core.indicators").fetchall() == [("2023-03",)]
        assert con.execute("SELECT status, reason FROM quality.load_batches WHERE dataset = 'indicators'"
                           ).fetchone() == ("loaded", None)
