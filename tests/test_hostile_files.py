"""Malformed and hostile files built from personal values, through a real ``govmetrics refresh``.

Every file must be accounted for (a batch with a reason the department can act on), the good
files must load, and no personal value may appear in clear anywhere: CLI output, every
warehouse table, exports and both bulletins, the Dagster instance's files and its event log.
Public outputs (warehouse, exports, bulletins) must not carry the server's paths either.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import xlsxwriter

from assets.core import core_assets, cross_checks, landing_specs
from pipelines.resources import ExportsFolder, LandingFolder, PersonalDataKey, Warehouse
from tests import departments as dep
from tests.cli_runs import cli, instance_at, no_traceback, setup

# Personal values used nowhere else: 18-digit ID numbers and mobile numbers.
IDS = [f"2101021988{n:08d}" for n in range(40)]
PHONES = [f"1891234{n:04d}" for n in range(40)]
PERSONAL = IDS + PHONES
HEADER = ",".join(dep.CASE_HEADER)


def case_line(n: int, note: str = "") -> str:
    return (f"{PHONES[n % 40]},H{n:05d},I001,2023-03-05 09:30,网上办理,D001,210102,,,在办,是,"
            f"{IDS[n % 40]},{note}")


def truncated_xlsx(path: Path) -> None:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("办件")
    sheet.write_row(0, 0, dep.CASE_HEADER)
    for n in range(1, 400):
        sheet.write_row(n, 0, case_line(n).split(","))
    book.close()
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) * 2 // 3])


def hostile_landing(landing: Path, outside: Path) -> dict[str, Path]:
    folder = landing / "service_cases"
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    # An unclosed quote: a parser quotes "the rest of the file" in its error.
    body = [case_line(1), case_line(2, '"未闭合的引号 ' + IDS[3])] + [case_line(n) for n in range(4, 400)]
    files["quote"] = folder / "unclosed_quote.csv"
    files["quote"].write_text("\n".join([HEADER, *body]) + "\n", encoding="utf-8")
    files["xlsx"] = folder / "truncated.xlsx"
    truncated_xlsx(files["xlsx"])
    # One cell far longer than any cell a spreadsheet can hold, made of personal values.
    files["huge"] = folder / "huge_line.csv"
    files["huge"].write_text(f"{HEADER}\n{case_line(5)}\n{case_line(6, ' '.join(PERSONAL) * 200)}\n", encoding="utf-8")
    files["garbage"] = folder / "garbage.csv"
    files["garbage"].write_bytes(b"".join(os.urandom(40) + p.encode() + b"\x00\xff" for p in PERSONAL))
    # JSON broken half-way through a record.
    files["json"] = folder / "broken.json"
    files["json"].write_text(json.dumps([{"办件编号": "H9", "申请人证件号码": IDS[7], "联系电话": PHONES[7]}],
                                        ensure_ascii=False)[:-12], encoding="utf-8")
    # A type we do not load, and a file without a suffix.
    files["docx"] = folder / "说明.docx"
    files["docx"].write_bytes(b"PK\x03\x04" + " ".join(PERSONAL).encode())
    files["bare"] = folder / "export"
    files["bare"].write_text("\n".join([HEADER, case_line(1)]), encoding="utf-8")
    # A link to a file outside the landing folder (e.g. another department's data).
    outside.mkdir(parents=True, exist_ok=True)
    secret = outside / "secret.csv"
    secret.write_text("\n".join([HEADER, *(case_line(n) for n in range(10, 30))]) + "\n", encoding="utf-8")
    files["link"] = folder / "link.csv"
    files["link"].symlink_to(secret)
    return files


def texts_of_warehouse(path: Path) -> str:
    out = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        for schema, table in tables:
            out.append(repr(con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()))
    return "\n".join(out)


def texts_of_folder(folder: Path) -> str:
    out = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        if p.suffix == ".parquet":
            with duckdb.connect() as con:
                out.append(repr(con.execute("SELECT * FROM read_parquet(?)", [str(p)]).fetchall()))
        else:
            out.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(out)


def texts_of_event_log(home: Path) -> str:
    out = []
    with instance_at(home) as instance:
        for run in instance.get_runs():
            out.extend(dg.serialize_value(record) for record in instance.all_logs(run.run_id))
    return "\n".join(out)


def test_hostile_files_are_accounted_for_and_leak_nothing(tmp_path):
    site = setup(tmp_path)
    dep.registers(site.landing)
    good = dep.cases_json(site.landing)
    files = hostile_landing(site.landing, tmp_path / "outside")

    proc = cli(site.env(), "refresh")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert no_traceback(proc.stdout + proc.stderr)

    batches = {r[0]: r[1:] for r in site.query(
        "SELECT source_path, status, reason, rows_read, rows_loaded FROM quality.load_batches")}
    for name, path in files.items():
        status, reason, *_ = batches[path.relative_to(site.landing).as_posix()]
        assert status == "failed" and reason and "内部错误" not in reason, (name, reason)
        assert len(reason) < 300, (name, reason)  # a sentence, never the file's content
    assert "引号" in batches["service_cases/unclosed_quote.csv"][1]
    assert "个字符" in batches["service_cases/huge_line.csv"][1]
    assert "落地目录之外" in batches["service_cases/link.csv"][1]
    assert "不支持的文件类型（.docx）" in batches["service_cases/说明.docx"][1]
    assert batches["service_cases/platform_export.json"][0] == "loaded"
    assert site.query("SELECT count(*) FROM latest.service_cases") == [(good["loaded"],)]

    public = "\n".join([texts_of_warehouse(site.work), texts_of_warehouse(site.warehouse),
                        texts_of_folder(site.exports)])
    everything = "\n".join([public, proc.stdout, proc.stderr, texts_of_folder(site.home),
                            texts_of_event_log(site.home)])
    assert "bulletin.md" in {p.name for p in site.exports.rglob("*")}
    leaked = [v for v in PERSONAL if v in everything]
    assert leaked == []
    assert str(tmp_path) not in public


def run_core(site, **limits) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*landing_specs, *core_assets, *cross_checks],
        resources={"landing": LandingFolder(path=str(site.landing), **limits),
                   "warehouse": Warehouse(path=str(site.warehouse)),
                   "exports": ExportsFolder(path=str(site.exports)),
                   "personal_data_key": PersonalDataKey(key="limits-test-key")},
        raise_on_error=False,
    )


def zip_bomb(path: Path, sheet_bytes: int) -> None:
    """A real workbook whose one sheet is mostly empty formatted rows: tiny packed, big unpacked."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("办件")
    sheet.write_row(0, 0, dep.CASE_HEADER)
    sheet.write_row(1, 0, case_line(1).split(","))
    book.close()
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</sheetData>", b"<row/>" * (sheet_bytes // 6) + b"</sheetData>")
            dst.writestr(info.filename, data)


@pytest.mark.parametrize("limits, build, expected", [
    ({"max_xlsx_uncompressed_mb": 1}, lambda p: zip_bomb(p.with_suffix(".xlsx"), 3 << 20), "解压后"),
    ({"max_sheet_rows": 50}, lambda p: sheet_with_rows(p.with_suffix(".xlsx"), 80), "行的上限"),
    ({"max_columns": 10}, lambda p: p.with_suffix(".csv").write_text(f"{HEADER}\n{case_line(1)}\n"), "列的上限"),
    ({"max_file_mb": 1}, lambda p: p.with_suffix(".csv").write_text(
        HEADER + "\n" + "\n".join(case_line(n) for n in range(20_000)) + "\n"), "超过上限"),
    ({"max_field_chars": 100}, lambda p: p.with_suffix(".csv").write_text(
        f"{HEADER}\n{case_line(1)}\n{case_line(2, 'x' * 200)}\n"), "第3行有单元格超过 100 个字符"),
])
def test_each_limit_is_a_failed_batch_the_department_can_act_on(tmp_path, limits, build, expected):
    site = setup(tmp_path)
    dep.registers(site.landing)
    (site.landing / "service_cases").mkdir(parents=True)
    build(site.landing / "service_cases" / "办件明细")
    run_core(site, **limits)
    [(status, reason, loaded)] = site.query(
        "SELECT status, reason, rows_loaded FROM quality.load_batches WHERE dataset = 'service_cases'")
    assert status == "failed" and loaded == 0 and expected in reason and "内部错误" not in reason, reason
    assert site.query("SELECT count(*) FROM latest.org_units")[0][0] > 0  # the other files loaded


def sheet_with_rows(path: Path, rows: int) -> None:
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("办件")
    sheet.write_row(0, 0, dep.CASE_HEADER)
    for n in range(1, rows + 1):
        sheet.write_row(n, 0, case_line(n).split(","))
    book.close()
