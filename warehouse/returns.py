"""Rejected rows back to the departments that sent them: one XLSX per department per run.

``退回清单_<部门>_<期间>.xlsx`` holds, for every file of this run that had rows quarantined,
one sheet with those rows as the department sent them (its own headers, its own values), the
reason in Chinese, and the cells of the column at fault highlighted; a cover sheet
(``退回说明``) counts the rows by rule and says what to do.

Personal data: the warehouse never holds an ID or phone number in clear, not even in the
quarantine (``raw_values`` keeps the keyed hash), so the workbook cannot show one either.
Such cells read :data:`MASK`. A clerk who leaves them alone keeps the applicant's identity:
when the workbook comes back, the loader restores the original hash from the quarantine row
named in ``退回编号`` (see ``assets/ingest/corrections.py``). A clerk who types a full number
over the mask corrects it, and it is hashed like any delivered value.

Size: a sheet lists at most :data:`ROWS_PER_FILE` rows of one source file, in file order; the
cover sheet counts every rejected row and says when a sheet lists only the first ones (the
rest are in ``quality.rejected_rows`` and ``govmetrics quarantine``). A file rejected by the
hundred thousand is a systematic error to fix at its source, not cell by cell, and an XLSX
sheet ends at 1,048,576 rows.

The workbook comes back into ``landing/<dataset>/`` and is recognised as a correction by its
cover sheet (:data:`COVER_SHEET` with :data:`MARKER`). Each data sheet keeps the file's own
headers, so the ordinary loader reads it; ``退回编号`` and ``问题说明`` are kept aside as extras.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from expectations.contract import all_contracts, header_key
from expectations.sql import literal
from warehouse.views import rejected_rows_sql

COVER_SHEET = "退回说明"
MARKER = "govmetrics-return-v1"
REFERENCE = "退回编号"
REASON = "问题说明"
SOURCE_ROW = "原行号"
FAULT = "__fault"  # hidden helper column: |header|header| of the cells at fault
MASK = "（个人信息已脱敏，不改动则沿用原值）"
HASHED = r"^[0-9a-f]{64}$"  # how the loader's keyed hash (HMAC-SHA256, hex) looks
ROWS_PER_FILE = 10_000
PARALLEL_FROM_ROWS = 100_000  # below this, starting worker processes costs more than it saves
MAX_COLUMN_PIXELS = 1790  # xlsxwriter's cap on a fitted column (255 characters)


def reference_sql(alias: str = "q") -> str:
    """The quarantine row reference written into ``退回编号``: batch, sheet and row."""
    return f"{alias}.batch_id || '|' || coalesce({alias}.source_sheet, '') || '|' || {alias}.source_row"


def _fault_headers(dataset: str, messages: list[str], headers: list[str]) -> pl.DataFrame:
    """(message, fault) for each distinct message: the headers of the columns the message names."""
    contract = all_contracts()[dataset]
    keys = {h: header_key(h) for h in headers}
    rows = []
    for message in messages:  # distinct messages of one file: a handful, not data rows
        named = [c for c in contract.columns if f"“{c.zh}”" in message or c.zh in message]
        hit = [h for h in headers if any(keys[h] in c.header_keys for c in named)]
        rows.append({"message": message, FAULT: "|" + "|".join(hit) + "|" if hit else ""})
    return pl.DataFrame(rows, schema={"message": pl.String, FAULT: pl.String})


def _pii_headers(dataset: str, headers: list[str]) -> list[str]:
    contract = all_contracts()[dataset]
    pii_keys = {k for c in contract.columns if c.pii for k in c.header_keys}
    return [h for h in headers if header_key(h) in pii_keys]


def _safe_name(text: str) -> str:
    return re.sub(r'[\\/:*?"<>|\s]+', "", text)[:40] or "未注明部门"


def _period(frame: pl.DataFrame, run_date: datetime) -> str:
    lo, hi = frame["period_min"].drop_nulls().min(), frame["period_max"].drop_nulls().max()
    if lo is None:
        return run_date.strftime("%Y-%m")
    lo, hi = str(lo)[:7], str(hi)[:7]
    return lo if lo == hi else f"{lo}至{hi}"


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def rejected_this_run(con: duckdb.DuckDBPyConnection, run_id: str, rows_per_file: int = ROWS_PER_FILE) -> pl.DataFrame:
    """Rows quarantined by the batches of ``run_id`` and not yet corrected, with their department:
    the first ``rows_per_file`` of each source file, with the counts of all of them.

    The rows are chosen and counted on their identity alone (batch, sheet, row, department, rule),
    and only the chosen ones are read whole: a file rejected by the ten million (a wrong
    department code in every row) had its raw values sorted three times over, and spilled 7 GB.
    """
    batches = [b for (b,) in con.execute("SELECT batch_id FROM quality.load_batches WHERE run_id = ?",
                                         [run_id]).fetchall()]
    listed = ", ".join(literal(b) for b in batches) or "NULL"
    sql = f"""
        SELECT p.* EXCLUDE (rule_rows, file_rows) REPLACE (q.raw_values AS raw_values),
               {reference_sql('p')} AS reference, b.period_min, b.period_max, p.rule_rows, p.file_rows
        FROM (
            SELECT r.* REPLACE (NULL AS raw_values),
                   count(*) OVER (PARTITION BY r.department, r.dataset, r.rule) AS rule_rows,
                   count(*) OVER (PARTITION BY r.department, r.dataset, r.source_path) AS file_rows
            FROM ({rejected_rows_sql(batches)}) AS r
            WHERE r.correction_status = '待更正'
            QUALIFY row_number() OVER (PARTITION BY r.department, r.dataset, r.source_path
                                       ORDER BY r.source_sheet, r.source_row) <= ?
        ) AS p
        JOIN (SELECT batch_id, source_sheet, source_row, raw_values FROM quality.quarantine
              WHERE batch_id IN ({listed})) AS q
          ON q.batch_id = p.batch_id AND q.source_row = p.source_row
         AND q.source_sheet IS NOT DISTINCT FROM p.source_sheet
        JOIN quality.load_batches AS b ON b.batch_id = p.batch_id
        ORDER BY p.department, p.dataset, p.source_path, p.source_sheet, p.source_row"""
    arrow = con.sql(sql, params=[rows_per_file]).to_arrow_table()
    return pl.from_arrow(arrow) if arrow.num_rows else pl.DataFrame()


def _sheet(rows: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """The rows of one source file as the department sent them, plus reference, reason, faults."""
    dataset = rows["dataset"][0]
    # Every row of one file has the same headers (the raw JSON keeps empty cells as null).
    headers = [h for h in json.loads(rows["raw_values"][0]) if h not in (REFERENCE, REASON, SOURCE_ROW)]
    dtype = pl.Struct({h: pl.String for h in headers})
    raw = rows.select(pl.col("raw_values").str.json_decode(dtype).alias("raw")).unnest("raw")
    masked = set(_pii_headers(dataset, headers))
    # Personal-data columns, and any other cell the loader hashed (an extra column that looked
    # personal, e.g. 姓名): a keyed hash means nothing to a clerk and is not theirs to see.
    raw = raw.with_columns([
        pl.when(pl.col(h).is_not_null() & (pl.lit(h in masked) | pl.col(h).str.contains(HASHED)))
        .then(pl.lit(MASK)).otherwise(pl.col(h)).alias(h) for h in headers])
    faults = _fault_headers(dataset, rows["message"].unique().to_list(), headers)
    front = rows.select(pl.col("reference").alias(REFERENCE), pl.col("source_row").alias(SOURCE_ROW),
                        pl.col("message").alias(REASON), "message")
    sheet = pl.concat([front, raw], how="horizontal").join(faults, on="message", how="left",
                                                          maintain_order="left").drop("message")
    return sheet, headers


def _column_widths(sheet: pl.DataFrame) -> dict[str, int]:
    """Each column's width in pixels, from its longest cell or header (plus the filter button).

    Measured in polars: xlsxwriter's ``autofit`` measures every cell in Python (a sixth of the
    time to write a sheet) and counts a Chinese character 8 pixels wide, about half its width.
    """
    def pixels(text: pl.Expr) -> pl.Expr:  # ~7 px a Latin character, ~15 px a Chinese one
        return text.str.len_chars() * 7 + text.str.count_matches(r"[^\x00-\x7f]") * 8

    longest = sheet.select(pixels(pl.all().cast(pl.String)).max().fill_null(0)).row(0)
    headers = pl.select(pixels(pl.Series(sheet.columns))).to_series()
    return {c: min(max(cell, header + 16) + 7, MAX_COLUMN_PIXELS)
            for c, cell, header in zip(sheet.columns, longest, headers, strict=True)}


def write_workbook(rows: pl.DataFrame, path: Path, department: str, period: str) -> Path:
    """One department's workbook: the cover sheet, then one sheet per source file."""
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    contracts = all_contracts()
    with xlsxwriter.Workbook(path, {"strings_to_formulas": False, "strings_to_urls": False}) as wb:
        bold = wb.add_format({"bold": True})
        fault = wb.add_format({"bg_color": "#FFEB9C", "font_color": "#9C0006", "bold": True})
        cover = wb.add_worksheet(COVER_SHEET)
        cover.set_column(0, 0, 22)
        cover.set_column(1, 1, 30)
        cover.set_column(2, 2, 8)
        cover.set_column(3, 3, 70)
        cover.write(0, 0, f"退回清单：{department}（{period}）", bold)
        cover.write(1, 0, "以下各行未通过校验，未载入。请在各工作表中按“问题说明”改正标黄的单元格，"
                          "不要改动“退回编号”列，保存后将本文件放回对应数据集的落地目录：")
        folders = "、".join(f"landing/{d}/" for d in rows["dataset"].unique(maintain_order=True))
        cover.write(2, 0, f"放回位置：{folders}")
        cover.write(3, 0, f"显示为“{MASK}”的单元格：原值未回传；不改动则沿用原值，改填完整号码则以新值为准。")
        by_rule = (rows.group_by("dataset", "rule", maintain_order=True)
                   .agg(pl.col("rule_rows").first().alias("行数"), pl.col("message").first().alias("说明"))
                   .with_columns(pl.col("dataset").replace_strict(
                       {n: c.title_zh for n, c in contracts.items()}, default=pl.col("dataset")).alias("数据集"))
                   .select("数据集", pl.col("rule").alias("规则"), "行数", "说明"))
        by_rule.write_excel(wb, COVER_SHEET, position=(5, 0), autofit=False, table_style="Table Style Light 9")
        files = rows.group_by("source_path", maintain_order=True).agg(pl.col("file_rows").first(), pl.len())
        cover.write(7 + by_rule.height, 0, f"合计 {files['file_rows'].sum()} 行")
        cut = files.filter(pl.col("file_rows") > pl.col("len"))
        for j, (source, total, listed) in enumerate(cut.iter_rows()):  # files, not data rows
            cover.write(8 + by_rule.height + j, 0, f"{source}：共 {total} 行未通过，本清单列出前 {listed} 行；"
                                                   f"其余见 govmetrics quarantine 或 quality.rejected_rows")
        cover.write(9 + by_rule.height + cut.height, 0, MARKER)  # how the loader recognises a returned workbook

        sheets = {}
        for i, ((dataset, source), part) in enumerate(
                rows.group_by("dataset", "source_path", maintain_order=True), 1):
            sheet, headers = _sheet(part)
            ws = wb.add_worksheet(f"{i}_{contracts[dataset].title_zh}"[:31])
            # the table over every row; its data rows go in once the workbook is closed (_fill_rows)
            ws.add_table(0, 0, sheet.height, sheet.width - 1, {
                "style": "Table Style Light 1",
                "columns": [{"header": c, "header_format": bold} for c in sheet.columns]})
            helper = _column_letter(sheet.columns.index(FAULT))
            for h in headers:
                j = sheet.columns.index(h)
                needle = h.replace('"', '""').replace("~", "~~").replace("*", "~*").replace("?", "~?")
                ws.conditional_format(1, j, sheet.height, j, {
                    "type": "formula", "criteria": f'=ISNUMBER(SEARCH("|{needle}|",${helper}2))', "format": fault})
            for j, (column, pixels) in enumerate(_column_widths(sheet).items()):
                ws.set_column_pixels(j, j, pixels, None, {"hidden": True} if column == FAULT else {})
            ws.write_comment(0, 0, f"来源文件：{source}；数据集：{dataset}")
            ws.freeze_panes(1, 3)
            sheets[f"xl/worksheets/sheet{ws.index + 1}.xml"] = sheet
    _fill_rows(path, {member: (f"A1:{_column_letter(sheet.width - 1)}{sheet.height + 1}", _rows_xml(sheet, 2))
                      for member, sheet in sheets.items()})
    return path


# Characters XML 1.0 cannot hold, written as Excel's _xHHHH_ escapes (as xlsxwriter writes them).
_CONTROL = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20))]
MAX_CELL_CHARS = 32_767  # Excel's limit for the text of one cell


def _xml_text(text: pl.Expr) -> pl.Expr:
    """Cell text as XML character data that Excel reads back as ``text``: a literal ``_xHHHH_``
    kept literal, markup escaped, control characters as ``_xHHHH_``, cut at Excel's limit."""
    return (text.str.slice(0, MAX_CELL_CHARS)
            .str.replace_all(r"_(x[0-9A-Fa-f]{4}_)", "_x005F_$1")
            .str.replace_many(["&", "<", ">"], ["&amp;", "&lt;", "&gt;"])
            .str.replace_many(_CONTROL, [f"_x{ord(c):04X}_" for c in _CONTROL]))


def _rows_xml(sheet: pl.DataFrame, first_row: int) -> str:
    """The ``<row>`` elements of ``sheet`` from worksheet row ``first_row`` (1-based) on, built in
    polars: xlsxwriter writes a cell in Python (~100,000 cells a second), and a department's sheet
    of 10,000 rows has 160,000. Text is an inline string; empty and null cells are left out."""
    row = pl.int_range(first_row, first_row + pl.len()).cast(pl.String)
    cells = []
    for j, (name, dtype) in enumerate(sheet.schema.items()):
        ref = [pl.lit(f'<c r="{_column_letter(j)}'), row, pl.lit('"')]
        value = pl.col(name).cast(pl.String)
        if dtype.is_integer():  # 原行号; everything else is the department's text
            cell = pl.concat_str([*ref, pl.lit("><v>"), value, pl.lit("</v></c>")])
        else:
            inline = pl.lit(' t="inlineStr"><is><t xml:space="preserve">')
            cell = pl.when(value.str.len_bytes() > 0).then(
                pl.concat_str([*ref, inline, _xml_text(value), pl.lit("</t></is></c>")]))
        cells.append(cell.fill_null(""))
    rows = pl.concat_str([pl.lit('<row r="'), row, pl.lit('">'), *cells, pl.lit("</row>")])
    return sheet.select(rows.str.join("")).item() if sheet.height else ""


def _fill_rows(path: Path, sheets: dict[str, tuple[str, str]]) -> None:
    """Append generated rows to the sheets of the closed workbook at ``path``: ``sheets`` maps a
    worksheet's member name to (its used range, its rows' XML)."""
    partial = path.with_name(path.name + ".partial")
    try:
        with zipfile.ZipFile(path) as written, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            for member in written.infolist():
                data = written.read(member)
                if member.filename in sheets:
                    used, rows = sheets[member.filename]
                    xml = re.sub(r'<dimension ref="[^"]*"/>', f'<dimension ref="{used}"/>', data.decode(), count=1)
                    head, end, tail = xml.partition("</sheetData>")
                    if not end:
                        raise RuntimeError(f"{member.filename} of {path.name} has no sheetData to fill")
                    data = f"{head}{rows}{end}{tail}".encode()
                out.writestr(member, data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_returns(con: duckdb.DuckDBPyConnection, out_dir: Path, run_id: str,
                  run_date: datetime | None = None, rows_per_file: int = ROWS_PER_FILE,
                  parallel_from_rows: int = PARALLEL_FROM_ROWS) -> list[Path]:
    """Write this run's workbooks under ``out_dir``; returns their paths (none if nothing was rejected).

    A workbook's frame (cover sheet, table, formats, comments) is written by xlsxwriter and its
    data rows by polars (:func:`_rows_xml`): about 30,000 rows a second, where xlsxwriter's cell
    by cell writing managed 6,000 (the 138,889 rejected rows of a 10M-row export: 3.6 s against
    ~17 s of CPU). From ``parallel_from_rows`` rows on, the workbooks are shared out, largest first,
    among one worker process per core (:func:`_write_in_workers`), each of which takes ~1 s to start.
    """
    run_date = run_date or datetime.now()
    rows = rejected_this_run(con, run_id, rows_per_file)
    if rows.is_empty():
        return []
    jobs = []
    for (department,), part in rows.group_by("department", maintain_order=True):
        period = _period(part, run_date)
        jobs.append((part, out_dir / f"退回清单_{_safe_name(department)}_{period}.xlsx", department, period))
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2 or rows.height < parallel_from_rows:
        return [write_workbook(*job) for job in jobs]
    _write_in_workers(jobs, workers)
    return [path for _, path, _, _ in jobs]


def _write_in_workers(jobs: list[tuple[pl.DataFrame, Path, str, str]], workers: int) -> None:
    """Each worker is ``python -m warehouse.returns <list>``, a fresh interpreter reading its
    share of the rows from Arrow IPC files. Not ``multiprocessing``: its spawned children import
    the caller's main module again, and a script without a ``__main__`` guard would run the
    whole pipeline once more in each of them."""
    shares: list[list[int]] = [[] for _ in range(workers)]
    load = [0] * workers
    for i in sorted(range(len(jobs)), key=lambda i: -jobs[i][0].height):  # largest first, to the least loaded
        w = load.index(min(load))
        shares[w].append(i)
        load[w] += jobs[i][0].height
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="govmetrics-returns-") as tmp:
        procs = []
        for w, share in enumerate(shares):
            listing = []
            for i in share:
                part, path, department, period = jobs[i]
                rows_file = Path(tmp) / f"{i}.arrow"
                part.write_ipc(rows_file)
                listing.append({"rows": str(rows_file), "path": str(path), "department": department, "period": period})
            share_file = Path(tmp) / f"worker-{w}.json"
            share_file.write_text(json.dumps(listing, ensure_ascii=False), encoding="utf-8")
            procs.append(subprocess.Popen([sys.executable, "-m", "warehouse.returns", str(share_file)],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        stderr = [p.communicate()[1] for p in procs]
        errors = [err.decode(errors="replace").strip().splitlines()[-1:]
                  for p, err in zip(procs, stderr, strict=True) if p.returncode != 0]
        if errors:
            raise RuntimeError(f"writing return workbooks failed in a worker process: {errors}")


def _worker(listing: Path) -> None:
    for job in json.loads(listing.read_text(encoding="utf-8")):
        write_workbook(pl.read_ipc(job["rows"]), Path(job["path"]), job["department"], job["period"])


if __name__ == "__main__":  # a worker of _write_in_workers
    _worker(Path(sys.argv[1]))
