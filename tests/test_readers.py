"""Readers on files that look like what departments send (all built in tmp_path)."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter

from assets.ingest.readers import SourceTable, UnreadableFile, read_file, split_unit


def rows_of(table: SourceTable) -> pl.DataFrame:
    chunks = list(table.chunks)
    return pl.concat(chunks) if chunks else pl.DataFrame()


def one(path: Path, **kw) -> tuple[SourceTable, pl.DataFrame]:
    tables = read_file(path, **kw)
    assert len(tables) == 1
    return tables[0], rows_of(tables[0])


# ------------------------------------------------------------------------------------------ CSV


def test_gbk_csv_with_shuffled_chinese_headers(tmp_path: Path) -> None:
    text = (
        "申办渠道,办件编号,行政区划代码,申请时间,事项编码\r\n"
        "网上办理,BJ2023000001,210102,2022年4月28日 9时30分,11210100MB0000001\r\n"
        "窗口办理,BJ2023000002,210103,2022/4/28 9:30,11210100MB0000002\r\n"
    )
    path = tmp_path / "办件明细.csv"
    path.write_bytes(text.encode("gbk"))
    table, rows = one(path)
    assert table.encoding == "gb18030"
    assert table.sheet is None
    assert table.columns == ["申办渠道", "办件编号", "行政区划代码", "申请时间", "事项编码"]
    assert rows.columns == [*table.columns, "__row", "__total"]
    assert rows["申办渠道"].to_list() == ["网上办理", "窗口办理"]
    assert rows["申请时间"][0] == "2022年4月28日 9时30分"
    assert rows["__row"].to_list() == [2, 3]
    assert rows["__total"].to_list() == [False, False]
    assert all(dtype == pl.String for dtype in rows.select(table.columns).dtypes)
    assert rows.schema["__row"] == pl.Int64 and rows.schema["__total"] == pl.Boolean


def test_utf8_bom_csv(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes("\ufeff事项编码,事项名称,是否可网办\n001,出生登记,是\n".encode())
    table, rows = one(path)
    assert table.encoding == "utf-8-sig"
    assert table.columns[0] == "事项编码"  # no BOM in the header
    assert rows.row(0) == ("001", "出生登记", "是", 2, False)


def test_plain_utf8_csv_is_not_read_as_gb18030(tmp_path: Path) -> None:
    path = tmp_path / "org.csv"
    path.write_text("编码,名称,类型\n210100,沈阳市营商环境建设局,市级部门\n", encoding="utf-8")
    table, rows = one(path)
    assert table.encoding == "utf-8"
    assert rows["名称"][0] == "沈阳市营商环境建设局"


def test_garbage_bytes_are_unreadable(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "broken.csv"
    path.write_bytes(bytes(rng.randrange(256) for _ in range(20_000)))
    with pytest.raises(UnreadableFile, match="UTF-8"):
        read_file(path)
    # no NUL bytes, still not text
    path.write_bytes(bytes(rng.choice([b for b in range(1, 256)]) for _ in range(20_000)))
    with pytest.raises(UnreadableFile, match="GB18030"):
        read_file(path)


def test_a_few_bad_bytes_in_gbk_are_tolerated(tmp_path: Path) -> None:
    good = "编码,名称,类型\n" + "".join(f"21010{i},单位{i},市级部门\n" for i in range(200))
    data = bytearray(good.encode("gbk"))
    data[-20] = 0xFF  # one undecodable byte inside a name
    path = tmp_path / "org.csv"
    path.write_bytes(bytes(data))
    table, rows = one(path)
    assert table.encoding == "gb18030"
    assert rows.height == 200
    replaced = sum(rows[c].str.contains("\ufffd").sum() for c in table.columns)
    assert replaced == 1


def test_empty_files_are_unreadable(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(UnreadableFile, match="空"):
        read_file(empty)
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\n  \n", encoding="utf-8")
    with pytest.raises(UnreadableFile):
        read_file(blank)
    title_only = tmp_path / "title.csv"
    title_only.write_text("沈阳市政务服务办件量统计表\n", encoding="utf-8")
    with pytest.raises(UnreadableFile, match="表头"):
        read_file(title_only)


def test_csv_header_only_gives_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("编码,名称,类型\n", encoding="utf-8")
    table, rows = one(path)
    assert table.columns == ["编码", "名称", "类型"]
    assert rows.height == 0


def test_csv_title_unit_rows_blank_rows_totals_and_row_numbers(tmp_path: Path) -> None:
    lines = [
        "沈阳市政务服务办件量统计表,,,",  # 1
        "单位：万件,,,",  # 2
        "统计月份,实施部门编码,办件量（万件）,",  # 3
        "2023年3月,210100,152.3,",  # 4
        ",,,",  # 5 blank
        "",  # 6 blank
        '2023年3月,210200,"1,234.5",',  # 7
        "合 计,,1386.8,",  # 8
        "2023年4月,210100,７０８５.４万,备注",  # 9
    ]
    path = tmp_path / "monthly.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table, rows = one(path)
    assert table.columns == ["统计月份", "实施部门编码", "办件量（万件）", "column_4"]
    assert table.units["办件量（万件）"] == "万件"
    assert table.table_unit == "万件"
    assert table.preamble[0] == "沈阳市政务服务办件量统计表"
    assert table.header_row == 3
    assert rows["__row"].to_list() == [4, 7, 8, 9]
    assert rows["__total"].to_list() == [False, False, True, False]
    assert rows["办件量（万件）"].to_list() == ["152.3", "1,234.5", "1386.8", "７０８５.４万"]
    assert rows["column_4"].to_list() == [None, None, None, "备注"]


def test_csv_footers_blank_first_cells_and_wide_totals(tmp_path: Path) -> None:
    """Rows are looked at cell by cell only when their first cell is empty or a footer: each such
    case is still told apart from a record."""
    lines = [
        "办件编号,实施部门编码,办件量",  # 1
        "A1,210100,3",  # 2
        ",210200,4",  # 3 first cell empty, still a record
        " ,　,",  # 4 blank (ASCII and ideographic spaces)
        ",填表人：张三,审核人：李四",  # 5 footer with an empty first cell
        "注：数据截至月底,,",  # 6 footer
        "注：见附件,210300,5",  # 7 a record: its other cells are data
        "⼩计,,7",  # 8 totals written with the Kangxi radical for 小 (NFKC: 小计)
        "全市 合计：,,19",  # 9 totals
    ]
    path = tmp_path / "footers.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, rows = one(path)
    assert rows["__row"].to_list() == [2, 3, 7, 8, 9]
    assert rows["__total"].to_list() == [False, False, False, True, True]


def test_tab_and_semicolon_separated(tmp_path: Path) -> None:
    for sep in ("\t", ";"):
        path = tmp_path / "t.txt"
        path.write_text(
            sep.join(["编码", "名称", "类型"]) + "\n" + sep.join(["1", "甲,乙", "区县"]) + "\n",
            encoding="utf-8",
        )
        table, rows = one(path)
        assert table.columns == ["编码", "名称", "类型"]
        assert rows["名称"][0] == "甲,乙"


def test_utf16_csv_from_excel_unicode_text(tmp_path: Path) -> None:
    path = tmp_path / "u16.txt"
    path.write_bytes("编码\t名称\t类型\r\n1\t沈阳\t区县\r\n".encode("utf-16"))
    table, rows = one(path)
    assert table.encoding == "utf-16"
    assert rows["名称"].to_list() == ["沈阳"]


def test_quoted_line_break_in_header_cell(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('"办件量\n（万件）",统计月份\n12,2023-03\n', encoding="utf-8")
    table, rows = one(path)
    assert table.columns == ["办件量（万件）", "统计月份"]
    assert rows["__row"].to_list() == [2]  # CSV record number, as Excel shows it


def test_large_gbk_csv_is_streamed_in_chunks(tmp_path: Path) -> None:
    n = 600_000
    path = tmp_path / "big.csv"
    body = "".join(f"BJ{i:08d},网上办理,{i % 97}\n" for i in range(n))
    path.write_bytes(("办件编号,申办渠道,数量\n" + body).encode("gbk"))
    (table,) = read_file(path, chunk_rows=250_000)
    sizes, firsts, lasts = [], [], []
    for chunk in table.chunks:
        sizes.append(chunk.height)
        firsts.append(chunk["__row"][0])
        lasts.append(chunk["__row"][-1])
    assert sizes == [250_000, 250_000, 100_000]
    assert firsts == [2, 250_002, 500_002]
    assert lasts == [250_001, 500_001, 600_001]
    assert not list(tmp_path.glob("*.utf8.csv"))


def test_chunk_rows_utf8_exact_rows(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(10)), encoding="utf-8")
    (table,) = read_file(path, chunk_rows=4)
    chunks = list(table.chunks)
    assert [c.height for c in chunks] == [4, 4, 2]
    assert pl.concat(chunks)["__row"].to_list() == list(range(2, 12))


# ------------------------------------------------------------------------------------------ XLSX


def build_monthly_workbook(path: Path) -> None:
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("2023年3月")
    ws.merge_range(0, 0, 0, 7, "沈阳市政务服务办件量统计表")  # row 1: title
    ws.write(1, 7, "单位：万件")  # row 2: unit row at the right
    ws.merge_range(2, 0, 3, 0, "统计月份")  # rows 3-4: two-row header
    ws.merge_range(2, 1, 3, 1, "实施部门编码")
    ws.merge_range(2, 2, 2, 3, "办件量")
    ws.write(3, 2, "合计")
    ws.write(3, 3, "其中网上")
    ws.merge_range(2, 4, 2, 6, "好差评（万条）")
    ws.write(3, 4, "有效评价数")
    ws.write(3, 5, "好评数")
    ws.write(3, 6, "差评数")
    ws.write(2, 7, "备注")
    ws.write_row(
        4, 0, ["2023年3月", "210100", "152.3", "140.1", "12.5", "12.4", "0.1"]
    )  # row 5: text numbers
    ws.write_row(
        5,
        0,
        [dt.datetime(2023, 3, 1), 210200, 7085.4, 6600, 4652.2, 4600, 2],
    )  # row 6: real numbers, a date cell
    # row 7 blank
    ws.write_row(7, 0, ["合 计", None, "7237.7", None, None, None, None])  # row 8: totals
    ws.write(9, 0, "2023年4月")  # row 10 (row 9 blank)
    ws.write(9, 1, "210100")
    ws.write(9, 2, "１６０")
    ws.write(9, 7, "含补报")
    ws.write(11, 0, "填表人：张三")  # row 12: footer notes, not a record
    ws.write(11, 4, "审核人：李四")
    ws.write(12, 0, "注：本表数据截至月末。")  # row 13
    notes = wb.add_worksheet("填表说明")
    notes.write(0, 0, "填表说明：")
    notes.write(1, 0, "1. 办件量单位为万件。")
    wb.add_worksheet("空表")
    ws2 = wb.add_worksheet("区县")
    ws2.write_row(0, 0, ["统计月份", "实施部门编码", "办件量（万件）"])
    ws2.write_row(1, 0, ["2023-03", "210102", "3.5"])
    ws2.write_row(2, 0, ["2023-03", "210103", "4"])
    hidden = wb.add_worksheet("下拉")
    hidden.write_row(0, 0, ["市级部门", "区县级部门"])
    hidden.write_row(1, 0, ["区县", "街道乡镇"])
    hidden.hide()
    wb.close()


def test_xlsx_title_unit_two_row_header_totals_blank_rows_and_sheets(tmp_path: Path) -> None:
    path = tmp_path / "办件量月报.xlsx"
    build_monthly_workbook(path)
    tables = read_file(path)
    assert [t.sheet for t in tables] == [
        "2023年3月",
        "区县",
    ]  # notes, empty and hidden sheets skipped
    main, county = tables
    assert main.encoding is None
    assert main.columns == [
        "统计月份",
        "实施部门编码",
        "办件量/合计",
        "办件量/其中网上",
        "好差评（万条）/有效评价数",
        "好差评（万条）/好评数",
        "好差评（万条）/差评数",
        "备注",
    ]
    assert main.header_parts["办件量/其中网上"] == ("办件量", "其中网上")
    assert main.header_parts["好差评（万条）/好评数"] == ("好差评（万条）", "好评数")
    assert main.table_unit == "万件"
    assert main.units["办件量/合计"] == "万件"  # the unit row
    assert main.units["好差评（万条）/好评数"] == "万条"  # the header's unit wins
    assert main.header_row == 3
    rows = rows_of(main)
    assert rows["__row"].to_list() == [5, 6, 8, 10]
    assert rows["__total"].to_list() == [False, False, True, False]
    assert rows["办件量/合计"].to_list() == ["152.3", "7085.4", "7237.7", "１６０"]
    assert rows["实施部门编码"].to_list() == ["210100", "210200", None, "210100"]
    assert rows["统计月份"][1] == "44986"  # a date typed without a date format: an Excel serial
    assert rows["备注"].to_list() == [None, None, None, "含补报"]
    assert all(rows.schema[c] == pl.String for c in main.columns)

    assert county.columns == ["统计月份", "实施部门编码", "办件量（万件）"]
    assert county.units == {"办件量（万件）": "万件"}
    assert rows_of(county)["__row"].to_list() == [2, 3]


def test_xlsx_chunks_and_unnamed_columns(tmp_path: Path) -> None:
    path = tmp_path / "nodes.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("接入点")
    ws.write_row(0, 0, ["接入点编号", "接入单位", None, "层级"])
    for i in range(10):
        ws.write_row(i + 1, 0, [f"N{i}", "单位", f"x{i}", "市级"])
    ws.write(0, 6, None)
    wb.close()
    (table,) = read_file(path, chunk_rows=4)
    assert table.columns == ["接入点编号", "接入单位", "column_3", "层级"]
    chunks = list(table.chunks)
    assert [c.height for c in chunks] == [4, 4, 2]
    assert chunks[-1]["__row"].to_list() == [10, 11]


def test_broken_xlsx_is_unreadable(tmp_path: Path) -> None:
    good = tmp_path / "good.xlsx"
    build_monthly_workbook(good)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(UnreadableFile, match="xlsx"):
        read_file(broken)
    not_excel = tmp_path / "fake.xlsx"
    not_excel.write_text("这不是Excel文件", encoding="utf-8")
    with pytest.raises(UnreadableFile, match="xlsx"):
        read_file(not_excel)


def test_xlsx_with_only_notes_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "notes.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("说明")
    ws.write(0, 0, "本月无数据报送。")
    wb.close()
    with pytest.raises(UnreadableFile, match="表头|表格"):
        read_file(path)


# ------------------------------------------------------------------------------------------ JSON


def test_json_records_and_wrappers(tmp_path: Path) -> None:
    records = [
        {
            "评价编号": "PJ1",
            "评价等级": 5,
            "是否默认评价": True,
            "评价时间": "2023-03-01 10:00:00",
            "x": None,
        },
        {
            "评价编号": "PJ2",
            "评价等级": "满意",
            "是否默认评价": False,
            "评价时间": "2023-03-02",
            "得分": 4.5,
        },
        {"评价编号": "合计", "评价等级": None},
        {},
    ]
    for i, payload in enumerate(
        [records, {"data": records}, {"code": 0, "records": records}, {"result": {"list": records}}]
    ):
        path = tmp_path / f"r{i}.json"
        path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        table, rows = one(path)
        assert table.columns == ["评价编号", "评价等级", "是否默认评价", "评价时间", "x", "得分"]
        assert rows["评价等级"].to_list() == ["5", "满意", None]
        assert rows["是否默认评价"].to_list() == ["true", "false", None]
        assert rows["得分"].to_list() == [None, "4.5", None]
        assert rows["__row"].to_list() == [1, 2, 3]
        assert rows["__total"].to_list() == [False, False, True]


def test_json_lines_and_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n', encoding="utf-8")
    _, rows = one(path)
    assert rows["a"].to_list() == ["1", "2"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1, ', encoding="utf-8")
    with pytest.raises(UnreadableFile, match="JSON"):
        read_file(bad)


def test_json_array_of_arrays_is_laid_out_like_a_sheet(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(
        json.dumps(
            [["指标报送表"], ["报送单位", "指标名称", "数值"], ["市大数据局", "基础库", 5]],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    table, rows = one(path)
    assert table.columns == ["报送单位", "指标名称", "数值"]
    assert rows.row(0) == ("市大数据局", "基础库", "5", 3, False)


# ------------------------------------------------------------------------------------------ Parquet


def test_parquet_columns_cast_to_strings_and_streamed(tmp_path: Path) -> None:
    n = 10
    table = pa.table(
        {
            "办件编号": [f"BJ{i}" for i in range(n)],
            "数量": pa.array(range(n), pa.int64()),
            "带宽(Mbps)": pa.array([100.5] * n),
            "申请时间": pa.array([dt.datetime(2022, 4, 28, 9, 30)] * n, pa.timestamp("us")),
            "开通日期": pa.array([dt.date(2022, 4, 28)] * n, pa.date32()),
            "全程网办": pa.array([True, False] * 5),
        }
    )
    path = tmp_path / "cases.parquet"
    pq.write_table(table, path, row_group_size=3)
    (src,) = read_file(path, chunk_rows=4)
    assert src.columns == ["办件编号", "数量", "带宽(Mbps)", "申请时间", "开通日期", "全程网办"]
    assert src.units == {"带宽(Mbps)": "Mbps"}
    chunks = list(src.chunks)
    assert [c.height for c in chunks] == [4, 4, 2]
    rows = pl.concat(chunks)
    assert rows["__row"].to_list() == list(range(1, n + 1))
    assert rows["数量"][3] == "3"
    assert rows["带宽(Mbps)"][0] == "100.5"
    assert rows["申请时间"][0].startswith("2022-04-28 09:30:00")
    assert rows["开通日期"][0] == "2022-04-28"
    assert rows["全程网办"][:2].to_list() == ["true", "false"]
    assert all(rows.schema[c] == pl.String for c in src.columns)


def test_broken_parquet_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 50)
    with pytest.raises(UnreadableFile, match="Parquet"):
        read_file(path)


# ------------------------------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("办件量（万件）", ("办件量", "万件")),
        ("办件量(单位：万件)", ("办件量", "万件")),
        ("接入带宽(Mbps)", ("接入带宽", "Mbps")),
        ("办件量", ("办件量", None)),
        ("(万件)", ("(万件)", None)),
    ],
)
def test_split_unit(header: str, expected: tuple[str, str | None]) -> None:
    assert split_unit(header) == expected


def test_title_with_a_date_cell_above_the_header(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "政务外网接入点清单,,,,2023年3月\n接入点编号,接入单位,层级,行政区划代码,状态\nN1,市局,市级,210100,在用\n",
        encoding="utf-8",
    )
    table, rows = one(path)
    assert table.columns == ["接入点编号", "接入单位", "层级", "行政区划代码", "状态"]
    assert rows["__row"].to_list() == [3]


def test_encoding_decided_past_an_ascii_only_first_megabyte(tmp_path: Path) -> None:
    ascii_rows = "".join(f"BJ{i:08d},210100\n" for i in range(80_000))  # > 1 MB of ASCII
    text = "case_no,dept_code\n" + ascii_rows + "BJ99999999,沈阳市\n"
    path = tmp_path / "late.csv"
    path.write_bytes(text.encode("gbk"))
    (table,) = read_file(path)
    assert table.encoding == "gb18030"
    rows = rows_of(table)
    assert rows["dept_code"][-1] == "沈阳市"
