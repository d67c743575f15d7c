"""Rejected rows go back to the departments that sent them, and a fixed workbook comes back in."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import duckdb
import fastexcel
import polars as pl
import pytest
import xlsxwriter

from assets.core import core_assets, cross_checks, landing_specs
from assets.exports import returns
from assets.ingest.privacy import pseudonymise
from assets.quality import load_summary
from pipelines.resources import ExportsFolder, LandingFolder, PersonalDataKey, Warehouse
from tests import departments as dep
from warehouse.returns import COVER_SHEET, MASK, REASON, REFERENCE, rejected_this_run

KEY = "test-key"
IDS = {"D001": dep.ID_NUMBERS[0], "D002": dep.ID_NUMBERS[1], "D003": dep.ID_NUMBERS[2]}
NAMES = {"D001": "市营商局", "D002": "市公安局", "D003": "和平区政数局"}
# 期间: the months of the files the rejected rows came from (D003 also sent the February report)
PERIODS = {"D001": "2023-03", "D002": "2023-03", "D003": "2023-02至2023-03"}


def run(landing: Path, warehouse: Path, exports: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*landing_specs, *core_assets, *cross_checks, load_summary, returns],
        resources={"landing": LandingFolder(path=str(landing)), "warehouse": Warehouse(path=str(warehouse)),
                   "exports": ExportsFolder(path=str(exports)), "personal_data_key": PersonalDataKey(key=KEY)},
        raise_on_error=False,
    )


def cases(landing: Path) -> None:
    """Good rows from three departments and bad rows from each (two from D001)."""
    def row(case, item, dept, channel="网上办理", applied="2023-03-05 09:30", id_no=None):
        return [dep.PHONES[0], case, item, applied, channel, dept, "210102", "", "", "在办", "是",
                id_no or IDS[dept], ""]
    dep.write_csv(landing / "service_cases" / "办件明细_202303.csv", dep.CASE_HEADER, [
        row("C0001", "I001", "D001"), row("C0002", "I002", "D002"), row("C0003", "I003", "D003"),
        row("C0004", "I001", "D001", channel="电话"),          # row 5: channel not in the list
        row("C0005", "I999", "D001"),                          # row 6: unknown item
        row("C0006", "I002", "D002", applied="2023年13月45日"),  # row 7: unreadable time
        row("C0007", "I003", "D003", channel="邮寄"),           # row 8: channel not in the list
    ], encoding="gbk")
    # D001 also reports monthly figures, one of them negative: its workbook gets a second sheet
    dep.write_csv(landing / "case_volume_monthly" / "办件量月报_2023年3月.csv",
                  ["统计月份", "实施部门编码", "办件量", "其中网上办件量"],
                  [["2023年2月", "D001", "120", "100"], ["2023年2月", "D002", "80", "60"],
                   ["2023年2月", "D003", "-5", "0"]])


def sheets(path: Path) -> dict[str, pl.DataFrame]:
    reader = fastexcel.read_excel(path)
    return {name: reader.load_sheet_by_name(name, header_row=None if name == COVER_SHEET else 0).to_polars()
            for name in reader.sheet_names}


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    root = tmp_path_factory.mktemp("returns")
    landing, warehouse, exports = root / "landing", root / "wh" / "gm.duckdb", root / "exports"
    dep.registers(landing)
    cases(landing)
    result = run(landing, warehouse, exports)
    assert result.success
    return {"root": root, "landing": landing, "warehouse": warehouse, "exports": exports}


def workbooks(exports: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted((exports / "returns").glob("*.xlsx"))}


def test_one_workbook_per_department_with_exactly_its_rows(first):
    books = workbooks(first["exports"])
    assert sorted(books) == sorted(f"退回清单_{NAMES[d]}_{PERIODS[d]}.xlsx" for d in NAMES)
    expected = {"D001": {"C0004", "C0005"}, "D002": {"C0006"}, "D003": {"C0007"}}
    for dept, name in NAMES.items():
        content = sheets(books[f"退回清单_{name}_{PERIODS[dept]}.xlsx"])
        cover = content.pop(COVER_SHEET)
        assert cover.to_series(0)[0] == f"退回清单：{name}（{PERIODS[dept]}）"
        data = content.pop(next(s for s in content if s.endswith("办件明细")))
        assert set(data["办件编号"]) == expected[dept]
        assert set(data["实施部门编码"]) == {dept}
        if dept == "D003":  # the negative monthly figure, on its own sheet
            (monthly,) = content.values()
            assert monthly["办件量"].to_list() == ["-5"] and set(monthly["实施部门编码"]) == {dept}
        else:
            assert not content
        assert data[REASON].str.len_chars().min() > 4 and data[REFERENCE].is_not_null().all()
        # personal data: masked, never clear
        assert set(data["申请人证件号码"]) == {MASK}
        text = " ".join(str(v) for frame in [cover, data] for col in frame.iter_columns() for v in col)
        assert not any(i in text for i in dep.ID_NUMBERS + dep.PHONES)
    d001 = sheets(books["退回清单_市营商局_2023-03.xlsx"])[COVER_SHEET]
    assert "not_in_set" in d001.to_series(1).to_list() and "unknown_reference" in d001.to_series(1).to_list()


def test_a_sheet_lists_the_first_rows_and_the_cover_counts_them_all(first, tmp_path):
    """A file rejected by the thousand: the sheet stops, the cover still counts every row."""
    from warehouse.returns import write_returns

    work = first["warehouse"].with_name("gm.writer.duckdb")
    with duckdb.connect(str(work), read_only=True) as con:
        (run_id,) = con.execute("SELECT DISTINCT run_id FROM quality.load_batches "
                                "WHERE source_path LIKE 'service_cases/%'").fetchall()[0]
        paths = write_returns(con, tmp_path, run_id, rows_per_file=1)
    content = sheets(next(p for p in paths if NAMES["D001"] in p.name))
    cover = content.pop(COVER_SHEET).to_series(0).to_list()
    data = content.pop(next(s for s in content if s.endswith("办件明细")))
    assert data.height == 1 and data["办件编号"].to_list() == ["C0004"]  # the first in file order
    assert "合计 2 行" in cover
    assert any("共 2 行未通过，本清单列出前 1 行" in str(line) for line in cover)


def test_workbooks_written_in_parallel_are_the_same(first, tmp_path):
    """Many rejected rows: worker processes write the workbooks, with the same content and order."""
    from warehouse.returns import write_returns

    work = first["warehouse"].with_name("gm.writer.duckdb")
    with duckdb.connect(str(work), read_only=True) as con:
        (run_id,) = con.execute("SELECT DISTINCT run_id FROM quality.load_batches "
                                "WHERE source_path LIKE 'service_cases/%'").fetchall()[0]
        serial = write_returns(con, tmp_path / "serial", run_id)
        parallel = write_returns(con, tmp_path / "parallel", run_id, parallel_from_rows=1)
    assert [p.name for p in parallel] == [p.name for p in serial] and len(serial) > 1
    for a, b in zip(serial, parallel, strict=True):
        left, right = sheets(a), sheets(b)
        assert list(left) == list(right)
        assert all(left[name].equals(right[name]) for name in left)


def test_a_later_run_returns_only_its_own_rows_a_review_to_its_cases_department(tmp_path):
    """The second run's list holds the review it rejected, not the cases the first run rejected; a
    review names no department, so it goes to the department of the case it reviews."""
    landing, warehouse, exports = tmp_path / "landing", tmp_path / "wh" / "gm.duckdb", tmp_path / "exports"
    dep.registers(landing)
    cases(landing)
    assert run(landing, warehouse, exports).success
    dep.write_csv(landing / "service_reviews" / "好差评_202303.csv",
                  ["评价编号", "办件编号", "评价等级", "评价渠道", "评价时间"],
                  [["R0001", "C0002", "5", "APP", "2023-03-06 10:00"],     # good, a case of D002
                   ["R0002", "C0001", "5", "传真", "2023-03-06 11:00"]])   # row 3: channel not in the list
    second = run(landing, warehouse, exports)
    assert second.success
    with duckdb.connect(str(warehouse.with_name("gm.writer.duckdb")), read_only=True) as con:
        rows = rejected_this_run(con, second.run_id)
    assert rows.select("dataset", "source_row", "department").rows() == [("service_reviews", 3, NAMES["D001"])]


def test_cells_stay_text_and_chinese_columns_are_wide_enough(tmp_path):
    """A department's cell that looks like a formula is written as text (never evaluated when
    the clerk opens the workbook), and a column of Chinese text is as wide as its longest cell."""
    import re
    import zipfile

    from warehouse.returns import write_workbook

    message = "“申办渠道”不在允许的取值中：邮寄，请改为：网上办理、窗口办理、移动端、自助终端"
    rows = pl.DataFrame({
        "dataset": ["service_cases"], "source_path": ["service_cases/办件明细.csv"], "rule": ["not_in_set"],
        "rule_rows": [1], "file_rows": [1], "message": [message], "reference": ["b|x|2"], "source_row": [2],
        "raw_values": ['{"办件编号": "C1", "申办渠道": "=HYPERLINK(\\"http://example.org\\")"}'],
    })
    book = write_workbook(rows, tmp_path / "退回清单.xlsx", "市营商局", "2023-03")
    data = sheets(book)["1_办件明细"]
    assert data["申办渠道"].to_list() == ['=HYPERLINK("http://example.org")']
    with zipfile.ZipFile(book) as z:
        xml = z.read("xl/worksheets/sheet2.xml").decode()
    assert "<f>" not in xml
    widths = {int(m[0]): float(m[1]) for m in re.findall(r'<col min="(\d+)" max="\d+" width="([\d.]+)"', xml)}
    assert widths[3] >= 1.8 * len(message)  # 问题说明: a Chinese character is two Latin ones wide


def test_any_cell_text_reads_back_as_it_was_sent(tmp_path):
    """The data rows are written as XML by polars (``_rows_xml``): markup, Excel's own _xHHHH_
    escapes, control characters, spaces at the ends, emoji and a cell past Excel's limit all read
    back as sent (the last cut at 32,767 characters), and every part of the workbook is well-formed XML."""
    import json
    import zipfile
    from xml.dom import minidom

    from warehouse.returns import MAX_CELL_CHARS, write_workbook

    texts = ['<a href="x">&amp;</a>', "_x0041_ 与 _X0041_", "制表\t换行\n回车\r响铃\x07空\x00", "  两端空格  ",
             "😀 𠀀", "长" * (MAX_CELL_CHARS + 10), "", None]
    n = len(texts)
    rows = pl.DataFrame({
        "dataset": ["service_cases"] * n, "source_path": ["service_cases/办件明细.csv"] * n,
        "rule": ["not_in_set"] * n, "rule_rows": [n] * n, "file_rows": [n] * n, "message": ["请改正"] * n,
        "reference": [f"b|x|{i}" for i in range(2, n + 2)], "source_row": list(range(2, n + 2)),
        "raw_values": [json.dumps({"办件编号": f"C{i}", "申办渠道": t}, ensure_ascii=False)
                       for i, t in enumerate(texts)],
    })
    book = write_workbook(rows, tmp_path / "退回清单.xlsx", "市营商局", "2023-03")
    with zipfile.ZipFile(book) as z:
        for member in z.namelist():
            if member.endswith((".xml", ".rels", ".vml")):
                minidom.parseString(z.read(member))
    data = sheets(book)["1_办件明细"]
    want = [t[:MAX_CELL_CHARS] if t else None for t in texts]
    assert data["申办渠道"].to_list() == want
    assert data["办件编号"].to_list() == [f"C{i}" for i in range(n)]
    assert data["原行号"].to_list() == list(range(2, n + 2))


def _deliver_fixed(book: Path, target: Path) -> None:
    """What a clerk does: fix the highlighted cell, save, deliver back (cover sheet kept)."""
    content = sheets(book)
    cover = content.pop(COVER_SHEET)
    target.parent.mkdir(parents=True, exist_ok=True)
    with xlsxwriter.Workbook(target) as wb:
        cover.write_excel(wb, COVER_SHEET, include_header=False, autofit=False)
        for name, data in content.items():  # the monthly sheet is left as it is
            if "申办渠道" in data.columns:
                data = data.with_columns(pl.when(pl.col("申办渠道") == "邮寄").then(pl.lit("窗口办理"))
                                         .otherwise(pl.col("申办渠道")).alias("申办渠道"))
            data.write_excel(wb, name)


def test_fixed_workbook_delivered_back_loads_and_supersedes(first):
    book = workbooks(first["exports"])["退回清单_和平区政数局_2023-02至2023-03.xlsx"]
    back = first["landing"] / "service_cases" / "退回清单_和平区政数局_2023-03_已改.xlsx"
    _deliver_fixed(book, back)
    os.utime(back)
    result = run(first["landing"], first["warehouse"], first["exports"])
    assert result.success
    writer = first["warehouse"].with_name("gm.writer.duckdb")
    with duckdb.connect(str(writer), read_only=True) as con:
        status = con.execute("SELECT status, rows_read, rows_loaded, rows_quarantined, rows_skipped "
                             "FROM quality.load_batches WHERE source_path LIKE '%已改.xlsx'").fetchall()
        assert status == [("loaded", 2, 1, 0, 1)]  # the monthly sheet's row: skipped, it belongs elsewhere
        channel, id_hash = con.execute(
            "SELECT channel, applicant_id_no FROM latest.service_cases WHERE case_no = 'C0007'").fetchall()[0]
        states = dict(con.execute("SELECT raw_values->>'办件编号', correction_status FROM quality.rejected_rows "
                                  "WHERE batch_id NOT IN (SELECT batch_id FROM quality.load_batches "
                                  "WHERE source_path LIKE '%.xlsx')").fetchall())
    assert channel == "窗口办理"
    # the masked ID the clerk left alone is the applicant's original ID (as its hash), not the mask
    original = pseudonymise(pl.DataFrame({"v": [IDS["D003"]]}), ["v"], KEY.encode())["v"][0]
    assert id_hash == original
    assert states == {"C0007": "已更正", "C0004": "待更正", "C0005": "待更正", "C0006": "待更正", None: "待更正"}
