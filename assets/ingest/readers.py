"""Read a landing file into ``SourceTable``s: all-string polars chunks named by the cleaned source
header.

What a department sends is a table a clerk looks at, so every row keeps the number the clerk sees
(``__row``: 1-based, counting title, unit and header rows) and totals rows are marked, not summed
(``__total``). Nothing here knows about contracts: matching headers and typing values is
``normalise``'s job.

Formats
-------
* **CSV / TXT** (also tab, semicolon or ``|`` separated): the encoding is decided on a 1 MB sample
  (UTF-8 / UTF-8 with BOM first, UTF-16 with a BOM, then GB18030 — GB18030 accepts nearly any
  bytes, so it is only a fall-back; a sample that is plain ASCII is decided on the file's first
  non-ASCII bytes instead). A few undecodable bytes (≤ 3, or ≤ 0.2 % of the sample's characters)
  are tolerated and become U+FFFD; more than that, NUL bytes or many control characters →
  ``UnreadableFile``. UTF-8 files are streamed by polars directly (``utf8-lossy``); other
  encodings are first transcoded block by block into a temporary UTF-8 file that is removed when
  the chunk iterator finishes. ``__row`` is the CSV record number (what Excel shows when it opens
  the file); it equals the line number unless a quoted cell contains a line break. The table is as
  wide as the widest of the first 500 records; cells beyond that width on later rows are cut.
* **XLSX / XLSM / XLS / ODS** via fastexcel (calamine), every cell read as text (dates come as
  ``2022-04-28 00:00:00``); one ``SourceTable`` per visible sheet that has a header row; hidden
  sheets (drop-down lists) and sheets without a recognisable table (notes, empty) are skipped.
  ``__row`` is the Excel row number.
* **JSON**: an array of records, ``{"data": [...]}`` / ``{"records": [...]}`` (also ``rows``,
  ``items``, ``list``, ``result``; nested up to 3 levels), JSON lines, or an array of arrays (then
  the first rows are laid out like a sheet). Values become strings (numbers as written by ``repr``,
  booleans ``true``/``false``, nested values as JSON). ``__row`` is the 1-based record number.
* **Parquet**: streamed by row group batches, every column cast to string. ``__row`` is the
  1-based record number.

Layout of a sheet-like table (CSV, XLSX, JSON arrays of arrays)
------------------------------------------------------------------
The first 30 rows are inspected. Rows with at most one non-empty cell (a title such as
``沈阳市政务服务办件量统计表``) or whose cells are all ``label：value`` notes (``填报单位：…``) are
preamble; the header is the first row with at least two non-empty cells of which at least half are
not numbers or dates. A unit row (``单位：万件``, also ``金额单位：万元``, or a row of per-column
units such as ``(万件)``, ``%``) above or below the header is read into ``units``; a row of column
numbers (``甲 乙 1 2 3``) under the header is skipped.

Two-row headers: if the row under the header holds only header-like text, every single (unmerged)
top cell has nothing under it (it was merged vertically) and at least one top cell spans several
columns with children under it, the two rows form one header. A child column is named
``'<parent>/<child>'`` (``'评价数/好评数'``, ``'办件量(万件)/合计'``) and recorded in
``SourceTable.header_parts`` as ``(parent, child)`` so that ``normalise`` can match the child, the
parent+child words or (for 合计/小计/总计-like children) the parent. A column with a parent but no
child cell keeps the parent's name; a column with neither is ``column_<n>`` (1-based position).
Duplicate names get ``_2``, ``_3`` … suffixes.

Units: ``units[column]`` is the unit written in the header's trailing brackets (``办件量（万件）``
→ ``万件``, for a two-row header the child's, else the parent's), else the cell of a per-column
unit row, else the table unit (``单位：万件`` anywhere in the preamble or right under the header).
The table unit is recorded for every column without a unit of its own; ``normalise`` only applies
units to numeric contract columns. The table unit is also in ``SourceTable.table_unit``.

Rows: blank rows (every cell empty or whitespace) and footer rows (every non-empty cell a note such
as ``填表人：张三``, ``审核人：…``, ``注：…``) are dropped and never returned. ``__total`` is
true when one of the first two columns is ``合计``/``小计``/``总计`` (whitespace ignored, so ``合
计``; also ``全市合计``, ``本页小计``, a trailing colon).
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from assets.ingest.errors import UnreadableFile
from assets.ingest.limits import (
    DEFAULT,
    LimitExceeded,
    Limits,
    bounded_fields,
    check_file_size,
    check_shape,
    check_xlsx_archive,
)

__all__ = ["UnreadableFile", "SourceTable", "read_file"]

ROW = "__row"
TOTAL = "__total"
RESERVED = (ROW, TOTAL)

SAMPLE_BYTES = 1 << 20  # encoding / layout sample of a text file
TRANSCODE_BLOCK = 16 << 20
# Source rows per chunk. Normalising a chunk holds a few dozen intermediate columns of it, so
# this bounds the loader's memory. The 10M case file (`bench/profile_load.py --plain`, alternating):
# 57.1 / 57.9 s at 100,000 rows, 53.5 / 53.4 s at 250,000, 52.6 / 53.4 s at 500,000, each peaking
# at 1.26, 1.26 and 1.52 GiB: fewer, larger chunks cost less per row in DuckDB and polars up to here.
CHUNK_ROWS = 250_000
# polars' streaming CSV source reads the file ahead of the consumer in pieces whose default size
# grows with the file, so a 2-million-row file was held in memory while its first chunks were
# still being normalised (peak RSS grew with the file). Bounded pieces keep the read-ahead small
# at no cost in speed. An undocumented polars setting, read when a scan runs; an explicit value
# in the environment wins.
os.environ.setdefault("POLARS_CSV_CHUNK_SIZE", str(1 << 20))
LAYOUT_ROWS = 30  # rows inspected for title, unit and header rows
BAD_BYTES_TOLERATED = 3
BAD_BYTES_RATIO = 0.002

EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}
PARQUET_SUFFIXES = {".parquet", ".pq"}




@dataclass
class SourceTable:
    sheet: str | None  # sheet name for spreadsheets, None otherwise
    columns: list[str]  # cleaned source headers, in file order
    units: dict[str, str]  # source header -> unit text ('万件', 'Mbps', '%')
    encoding: str | None  # detected encoding of a text file
    chunks: Iterator[
        pl.DataFrame
    ]  # String columns named as `columns`, plus __row (Int64), __total (Boolean)
    # Beyond the brief (all optional, with defaults):
    header_parts: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # joined header -> (parent, child)
    table_unit: str | None = None  # '单位：万件' found in the preamble / unit row
    preamble: list[str] = field(
        default_factory=list
    )  # title and note rows above the header, as text
    header_row: int | None = None  # row number (as __row counts) of the (first) header row


# --------------------------------------------------------------------------------------------------
# header cells, units


_BRACKETED = re.compile(
    r"^(?P<base>.*?)\s*[(（\[【]\s*(?P<unit>[^()（）\[\]【】]*?)\s*[)）\]】]\s*$", re.S
)
_UNIT_PREFIX = re.compile(r"^(?:单位|计量单位|金额单位|数量单位)\s*[:：]\s*")
_MULTIPLIERS = ("万亿", "千万", "百万", "亿", "万", "千", "百")
_UNIT_TOKEN = re.compile(
    r"^(?:万亿|千万|百万|亿|万|千|百)?"
    r"(?:件|条|个|元|家|项|户|类|次|人次|人|台|套|座|所|名|份|篇|张|天|日|工作日|小时|分钟|秒|%|‰|"
    r"mbps|gbps|kbps|tbps|mb|gb|tb|kb|m|g|t|k|兆|mbit/s|gbit/s|mb/s|gb/s|级|岁|年|月|周|平方米|米|公里|"
    r"千瓦时|吨|gb/天|tb/天)?$"
)
_TABLE_UNIT_CELL = re.compile(
    r"(?:^|[\s(（,，;；])(?:计量|金额|数量)?单位\s*[:：]\s*(?P<unit>[^\s)）,，;；]+)"
)


def clean_header(value: Any) -> str | None:
    """A header cell as text: line breaks removed, outer whitespace stripped; None when empty."""
    if value is None:
        return None
    text = str(value).replace("\r", "").replace("\n", "").replace("\t", " ").strip()
    return text or None


def split_unit(header: str) -> tuple[str, str | None]:
    """``'办件量（万件）'`` → ``('办件量', '万件')``; ``'办件量(单位：万件)'`` too; no brackets →
    ``(header, None)``.
    """
    m = _BRACKETED.match(header)
    if not m or not m.group("base").strip() or not m.group("unit").strip():
        return header, None
    unit = _UNIT_PREFIX.sub("", m.group("unit").strip()).strip()
    return m.group("base").strip(), (unit or None)


def looks_like_unit(text: str) -> bool:
    """'万件', '万元', '%', 'Mbps', '万件、万条' — short text made of a multiplier and/or a unit
    word.
    """
    t = unicodedata.normalize("NFKC", text).strip().lower().replace(" ", "")
    t = t.strip("()[]")
    if not t or len(t) > 12:
        return False
    parts = [p for p in re.split(r"[、,，;；]", t) if p]
    return bool(parts) and all(_UNIT_TOKEN.match(p) for p in parts)


def _table_unit_of(cell: str) -> str | None:
    m = _TABLE_UNIT_CELL.search(unicodedata.normalize("NFKC", cell))
    if m and looks_like_unit(m.group("unit")):
        return m.group("unit")
    return None


# --------------------------------------------------------------------------------------------------
# layout detection (shared by CSV, XLSX and JSON arrays of arrays)

_DATAISH = re.compile(
    r"^[+-]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?\s*(?:万亿|千万|百万|亿|万|千|百)?\s*[%‰]?$"
    r"|^\d{4}\s*[-/.年]\s*\d{1,2}"
    r"|^\d{8}(?:\s|$)"
    r"|^(?:true|false)$",
    re.I,
)
_META_CELL = re.compile(r"^[^:：]{1,20}[:：]\s*\S")
_COLUMN_NUMBERS = set("甲乙丙丁戊己庚辛壬癸")


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = str(value)
    return text if text.strip() else None


def _dataish(cell: str) -> bool:
    return bool(_DATAISH.match(unicodedata.normalize("NFKC", cell).strip()))


def _nonempty(row: Sequence[str | None]) -> list[tuple[int, str]]:
    return [(j, c) for j, c in enumerate(row) if c is not None]


def _is_meta_row(cells: list[str]) -> bool:
    return len(cells) <= 1 or all(
        _META_CELL.match(unicodedata.normalize("NFKC", c).strip()) for c in cells
    )


def _unit_row(row: Sequence[str | None]) -> tuple[str | None, dict[int, str]] | None:
    """A row made only of units: ('万件', {}) for '单位：万件', (None, {j: unit}) for per-column
    units.
    """
    cells = _nonempty(row)
    if not cells:
        return None
    table_unit = None
    per_column: dict[int, str] = {}
    for j, c in cells:
        t = unicodedata.normalize("NFKC", c).strip()
        prefixed = _UNIT_PREFIX.match(t.strip("()（）"))
        inner = _UNIT_PREFIX.sub("", t.strip("()（）")).strip()
        if not looks_like_unit(inner):
            return None
        if prefixed:
            table_unit = inner
        else:
            per_column[j] = inner
    if table_unit is not None and per_column:
        return None
    # a lone bare unit like '%' on a row of its own is a per-column unit for that column
    return table_unit, per_column


def _header_like(cells: list[str]) -> bool:
    if len(cells) < 2:
        return False
    texty = sum(1 for c in cells if not _dataish(c))
    return texty >= 1 and texty * 2 >= len(cells)


def _is_column_numbers(row: Sequence[str | None]) -> bool:
    """A row numbering the columns under the header: '甲 乙 1 2 3 …' or '1 2 3 …'."""
    cells = [unicodedata.normalize("NFKC", c).strip() for _, c in _nonempty(row)]
    if len(cells) < 3:
        return False
    nums = []
    for c in cells:
        if c in _COLUMN_NUMBERS:
            continue
        if not c.isdigit():
            return False
        nums.append(int(c))
    return not nums or nums == list(range(nums[0], nums[0] + len(nums)))


@dataclass
class Layout:
    header_index: int  # 0-based index of the (first) header row in the rows given
    data_start: int  # 0-based index of the first row after the header block
    columns: list[str]
    units: dict[str, str]
    header_parts: dict[str, tuple[str, str]]
    table_unit: str | None
    preamble: list[str]
    width: int


def _dedupe(names: list[str]) -> list[str]:
    seen: set[str] = set(RESERVED)
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def detect_layout(raw_rows: Sequence[Sequence[Any]], min_width: int = 0) -> Layout | None:
    """Find title/unit/header rows in the first rows of a sheet-like table; None if there is no
    header.
    """
    rows = [[_cell(v) for v in r] for r in raw_rows[:LAYOUT_ROWS]]
    width = max((max((j + 1 for j, _ in _nonempty(r)), default=0) for r in rows), default=0)
    if width == 0:
        return None
    width = max(width, min_width)
    rows = [
        list(r) + [None] * (width - len(r)) if len(r) < width else list(r[:width]) for r in rows
    ]

    preamble: list[str] = []
    table_unit: str | None = None
    per_column_units: dict[int, str] = {}
    header_index = None
    for i, row in enumerate(rows):
        cells = [c for _, c in _nonempty(row)]
        if not cells:
            continue
        unit_row = _unit_row(row)
        if unit_row is not None:
            if unit_row[0] or len(cells) == 1:
                table_unit = table_unit or unit_row[0] or next(iter(unit_row[1].values()))
            else:
                per_column_units.update(unit_row[1])
            preamble.append(" ".join(c.strip() for c in cells))
            continue
        if _is_meta_row(cells):
            preamble.append(" ".join(c.strip() for c in cells))
            for c in cells:
                table_unit = table_unit or _table_unit_of(c)
            continue
        if not _header_like(cells):
            break  # a data row before any header row: the table has no header
        following = next(
            (k for k in range(i + 1, min(i + 4, len(rows))) if _nonempty(rows[k])), None
        )
        if following is not None:
            top = [clean_header(c) for c in row]
            if following == i + 1 and _subheader(
                top, [clean_header(c) for c in rows[following]], width
            ):
                header_index = i
                break
            next_cells = [c for _, c in _nonempty(rows[following])]
            if (
                _header_like(next_cells)
                and _unit_row(rows[following]) is None
                and len(next_cells) >= max(3, 2 * len(cells))
            ):
                # a title with a second cell ('…统计表', '2023年3月') above the real header
                preamble.append(" ".join(c.strip() for c in cells))
                continue
        header_index = i
        break
    if header_index is None:
        return None

    top = [clean_header(c) for c in rows[header_index]]
    sub = None
    nxt_index = header_index + 1
    if nxt_index < len(rows):
        sub = _subheader(top, [clean_header(c) for c in rows[nxt_index]], width)

    names: list[str | None] = []
    parts: dict[str, tuple[str, str]] = {}
    header_units: dict[int, str] = {}
    if sub is None:
        for j in range(width):
            names.append(top[j])
            if top[j]:
                unit = split_unit(top[j])[1]
                if unit:
                    header_units[j] = unit
        data_start = header_index + 1
    else:
        owner = _owners(top, width)
        for j in range(width):
            parent = top[owner[j]] if owner[j] is not None else None
            child = sub[j]
            if (
                child
                and parent
                and (owner[j] != j or _span_end(top, owner[j], width) - owner[j] > 1)
            ):
                name = f"{parent}/{child}"
                parts[name] = (parent, child)
                unit = split_unit(child)[1] or split_unit(parent)[1]
            elif child and not parent:
                name, unit = child, split_unit(child)[1]
            elif top[j]:
                name, unit = top[j], split_unit(top[j])[1]
            else:
                name, unit = None, None
            names.append(name)
            if unit:
                header_units[j] = unit
        data_start = nxt_index + 1

    # unit rows / column-number rows right under the header
    for _ in range(3):
        if data_start >= len(rows):
            break
        row = rows[data_start]
        unit_row = _unit_row(row)
        if unit_row is not None:
            if unit_row[0]:
                table_unit = table_unit or unit_row[0]
            per_column_units.update(unit_row[1])
            data_start += 1
        elif _is_column_numbers(row):
            data_start += 1
        else:
            break

    final = _dedupe([n if n else f"column_{j + 1}" for j, n in enumerate(names)])
    parts = {final[j]: parts[n] for j, n in enumerate(names) if n in parts}
    units: dict[str, str] = {}
    for j, name in enumerate(final):
        unit = header_units.get(j) or per_column_units.get(j) or table_unit
        if unit:
            units[name] = unit
    return Layout(header_index, data_start, final, units, parts, table_unit, preamble, width)


def _span_end(top: list[str | None], k: int, width: int) -> int:
    end = k + 1
    while end < width and not top[end]:
        end += 1
    return end


def _owners(top: list[str | None], width: int) -> list[int | None]:
    owner: list[int | None] = []
    current = None
    for j in range(width):
        if top[j]:
            current = j
        owner.append(current)
    return owner


def _subheader(top: list[str | None], nxt: list[str | None], width: int) -> list[str | None] | None:
    """The row under the header if it is the second row of a merged two-row header, else None."""
    cells = [c for c in nxt if c]
    if not cells or any(_dataish(c) for c in cells) or _is_meta_row(cells) and len(cells) > 1:
        return None
    if _unit_row(nxt) is not None or _is_column_numbers(nxt):
        return None
    has_parent = False
    for k in range(width):
        if not top[k]:
            continue
        end = _span_end(top, k, width)
        if end - k == 1:
            if nxt[
                k
            ]:  # an unmerged single column has something under it: a data row, not a sub-header
                return None
        elif any(nxt[j] for j in range(k, end)):
            has_parent = True
    return nxt if has_parent else None


# --------------------------------------------------------------------------------------------------
# chunk post-processing


_TOTAL_RE = r"^(?:全市|全区|全县|全省|本页|本表|本月|总)?(?:合计|小计|总计)[:：]?$"


_FOOTER_RE = (
    r"^\s*(?:注|备注|说明|填表说明|填报说明|填表人|填报人|制表人|审核人|复核人|负责人|单位负责人|"
    r"统计负责人|联系人|联系电话|填报日期|填表日期|制表日期|报送日期)\s*[:：]"
)


def _filled(column: str) -> pl.Expr:
    """The cell holds something besides whitespace (null: no)."""
    return (pl.col(column).str.strip_chars().str.len_chars() > 0).fill_null(False)


def _finish(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Drop blank and footer rows, mark totals rows; frame has `columns` (String) and __row.

    A blank row has no filled cell; a footer (``填表人：张三  审核人：李四``, ``注：…`` under the
    table) has its filled cells all matching ``_FOOTER_RE``. Both have a first cell that is empty
    or matches, so only those rows (a handful in a machine export) are looked at cell by cell:
    checking every cell of every row was 1.5 of the 1.75 CPU-seconds a million CSV rows took to read.
    A totals cell needs a CJK character (合计, 小计, 总计), so only non-ASCII text is NFKC-normalised.
    """
    if frame.height == 0:
        return frame.with_columns(pl.lit(False).alias(TOTAL)).select([*columns, ROW, TOTAL])
    first_col = columns[0]
    candidates = (frame.with_row_index("__k")
                  .filter(~_filled(first_col) | pl.col(first_col).str.contains(_FOOTER_RE).fill_null(False)))
    if candidates.height:
        filled = [_filled(c) for c in columns]
        footer = pl.all_horizontal(
            [~f | pl.col(c).str.contains(_FOOTER_RE).fill_null(False) for f, c in zip(filled, columns, strict=True)]
        )
        dropped = candidates.filter(~pl.any_horizontal(filled) | footer)["__k"]
        if dropped.len():
            frame = frame.filter(~pl.int_range(pl.len(), dtype=pl.UInt32).is_in(dropped.implode()))
    wide = [pl.when(pl.col(c).str.contains(r"[^\x00-\x7f]")).then(pl.col(c)) for c in columns[:2]]
    total = pl.any_horizontal(
        [w.str.normalize("NFKC").str.replace_all(r"\s", "").str.contains(_TOTAL_RE) for w in wide]
    ).fill_null(False)
    return frame.with_columns(pl.col(ROW).cast(pl.Int64), total.alias(TOTAL)).select([*columns, ROW, TOTAL])


def _rebatch(frames: Iterable[pl.DataFrame], size: int) -> Iterator[pl.DataFrame]:
    """Re-cut a stream of frames into frames of exactly `size` rows (the last may be shorter)."""
    pending: list[pl.DataFrame] = []
    pending_rows = 0
    for frame in frames:
        while frame.height:
            take = min(size - pending_rows, frame.height)
            pending.append(frame.slice(0, take))
            pending_rows += take
            frame = frame.slice(take)
            if pending_rows == size:
                yield pl.concat(pending, how="vertical") if len(pending) > 1 else pending[0]
                pending, pending_rows = [], 0
    if pending_rows:
        yield pl.concat(pending, how="vertical") if len(pending) > 1 else pending[0]


# --------------------------------------------------------------------------------------------------
# entry point


def read_file(path: Path, chunk_rows: int = CHUNK_ROWS, limits: Limits = DEFAULT) -> list[SourceTable]:
    """Read any landing file; raise ``UnreadableFile`` when it cannot be read at all.

    CSV/TXT → one table; XLSX → one table per visible sheet with a header row; JSON, Parquet → one
    table. Chunks are produced lazily (a large CSV is streamed), at most ``chunk_rows`` source rows
    each (fewer after blank rows are dropped). A file past one of ``limits`` raises
    ``LimitExceeded`` (an ``UnreadableFile``), before the read where the file declares its size,
    else as the chunks stream.
    """
    tables = _read_any(Path(path), chunk_rows, limits)
    for table in tables:
        table.chunks = bounded_fields(table.chunks, limits)
    return tables


def _read_any(path: Path, chunk_rows: int, limits: Limits) -> list[SourceTable]:
    path = Path(path)
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    if not path.is_file():
        raise UnreadableFile(f"找不到文件 / file not found: {path.name}")
    size = path.stat().st_size
    if size == 0:
        raise UnreadableFile("文件为空（0字节） / the file is empty (0 bytes)")
    check_file_size(path, limits)
    with open(path, "rb") as f:
        magic = f.read(8)
    suffix = path.suffix.lower()
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"\xd0\xcf\x11\xe0"):
        check_xlsx_archive(path, limits)
        return _read_excel(path, chunk_rows, limits)
    if magic.startswith(b"PAR1"):
        return _read_parquet(path, chunk_rows)
    if suffix in EXCEL_SUFFIXES:
        raise UnreadableFile(
            "不是有效的Excel文件（xlsx），文件可能已损坏 / "
            "not a valid xlsx file (broken or not a spreadsheet)"
        )
    if suffix in PARQUET_SUFFIXES:
        raise UnreadableFile("不是有效的Parquet文件 / not a valid Parquet file")
    if suffix in JSON_SUFFIXES:
        return _read_json(path, chunk_rows)
    return _read_text(path, chunk_rows, limits)


# --------------------------------------------------------------------------------------------------
# text files


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\r\n\f\v") or ch == "\x7f")
    return bad / len(text)


def _decode_sample(head: bytes, whole: bool, encoding: str) -> tuple[str, int]:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    text = decoder.decode(head, final=whole)
    return text, text.count("\ufffd")


def detect_encoding(head: bytes, whole: bool) -> tuple[str, str]:
    """(encoding, decoded sample) for the first bytes of a text file, or UnreadableFile."""
    if head.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        candidates = ["utf-16"]
    else:
        if b"\x00" in head:
            raise UnreadableFile(
                "文件无法解码：既不是UTF-8也不是GB18030编码的文本（含有二进制内容） / "
                "cannot decode the file: neither UTF-8 nor GB18030 text (binary content)"
            )
        candidates = ["utf-8", "gb18030"]
    best: tuple[int, str, str] | None = None
    for encoding in candidates:
        text, bad = _decode_sample(head, whole, encoding)
        if bad == 0:
            best = (0, encoding, text)
            break
        if best is None or bad < best[0]:
            best = (bad, encoding, text)
    assert best is not None
    bad, encoding, text = best
    if (
        bad > max(BAD_BYTES_TOLERATED, BAD_BYTES_RATIO * max(len(text), 1))
        or _control_ratio(text) > 0.01
    ):
        raise UnreadableFile(
            "文件无法解码：既不是UTF-8也不是GB18030编码（可能是乱码或二进制文件） / "
            "cannot decode the file: neither UTF-8 nor GB18030 text (garbage or binary bytes)"
        )
    return encoding, text


def _sniff_delimiter(lines: list[str]) -> str:
    best, best_score = ",", -1.0
    for delim in (",", "\t", ";", "|"):
        rows = [r for r in csv.reader(lines, delimiter=delim) if any(c.strip() for c in r)]
        if not rows:
            continue
        counts = sorted(len(r) for r in rows)
        score = counts[len(counts) // 2] + 0.01 * max(counts)
        if score > best_score + 1e-9:
            best, best_score = delim, score
    return best


_NON_ASCII = re.compile(rb"[\x80-\xff]")


def _encoding_past_ascii(path: Path) -> str:
    """The encoding of a file whose first megabyte is plain ASCII, decided on its first non-ASCII
    bytes (an export with English headers and codes first could still be GB18030 further down)."""
    offset = 0
    with open(path, "rb") as f:
        while block := f.read(TRANSCODE_BLOCK):
            m = _NON_ASCII.search(block)
            if m:
                f.seek(offset + max(0, block.rfind(b"\n", 0, m.start()) + 1))
                window = f.read(64 << 10)
                encoding, _ = detect_encoding(window, whole=False)
                return encoding
            offset += len(block)
    return "utf-8"


def _read_text(path: Path, chunk_rows: int, limits: Limits) -> list[SourceTable]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(SAMPLE_BYTES)
    whole = len(head) >= size
    encoding, text = detect_encoding(head, whole)
    if encoding == "utf-8" and not whole and head.isascii():
        encoding = _encoding_past_ascii(path)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise UnreadableFile("文件为空：没有表头和数据 / the file is empty: no header row")
    lines = text.splitlines(keepends=True)
    if not whole and len(lines) > 1:
        lines = lines[:-1]  # the last line of a partial sample may be cut
    lines = lines[:500]
    try:
        delim = _sniff_delimiter(lines[:200])
        rows = list(csv.reader(lines, delimiter=delim))
    except csv.Error:  # a cell past csv's field limit (128 KiB) in the first rows
        raise LimitExceeded(f"文件开头的行中有单元格超过 {csv.field_size_limit():,} 个字符（可能是引号未闭合），"
                            "请检查后重新报送") from None
    sample_width = max((len(r) for r in rows), default=0)
    layout = detect_layout(rows[: LAYOUT_ROWS + 1], min_width=sample_width)
    if layout is None:
        raise UnreadableFile(
            "文件中找不到表头行（前30行内没有列名） / no header row found in the first 30 rows"
        )
    check_shape(0, layout.width, limits, "文件")
    chunks = _csv_chunks(path, encoding, delim, layout, chunk_rows)
    return [
        SourceTable(
            sheet=None,
            columns=layout.columns,
            units=layout.units,
            encoding=encoding,
            chunks=chunks,
            header_parts=layout.header_parts,
            table_unit=layout.table_unit,
            preamble=layout.preamble,
            header_row=layout.header_index + 1,
        )
    ]


def _transcode(path: Path, encoding: str) -> Path:
    # The pid in the name lets warehouse.recovery remove the file if this process is killed.
    fd, name = tempfile.mkstemp(prefix=f"govmetrics-{os.getpid()}-", suffix=".utf8.csv")
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    try:
        with open(path, "rb") as fin, os.fdopen(fd, "wb") as fout:
            while block := fin.read(TRANSCODE_BLOCK):
                fout.write(decoder.decode(block).encode("utf-8"))
            fout.write(decoder.decode(b"", final=True).encode("utf-8"))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _csv_chunks(
    path: Path, encoding: str, delim: str, layout: Layout, chunk_rows: int
) -> Iterator[pl.DataFrame]:
    tmp: Path | None = None
    try:
        source = path
        if encoding not in ("utf-8", "utf-8-sig"):
            tmp = _transcode(path, encoding)
            source = tmp
        positional = [f"c{j}" for j in range(layout.width)]
        lf = pl.scan_csv(
            source,
            has_header=False,
            separator=delim,
            skip_rows=layout.data_start,
            schema={c: pl.String for c in positional},
            missing_columns="insert",
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
            row_index_name="__i",
            quote_char='"',
        )
        rename = dict(zip(positional, layout.columns, strict=True))
        offset = layout.data_start + 1
        try:
            for batch in _rebatch(lf.collect_batches(chunk_size=chunk_rows), chunk_rows):
                frame = batch.rename(rename).with_columns(
                    (pl.col("__i").cast(pl.Int64) + offset).alias(ROW)
                )
                yield _finish(frame, layout.columns)
        except pl.exceptions.PolarsError:
            # polars quotes the unparsed rest of the file in its message: never pass it on.
            raise UnreadableFile("CSV文件解析失败（可能有未闭合的引号或损坏的行），请检查后重新报送 / "
                                 "cannot parse the CSV file (unclosed quote or broken line)") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# spreadsheets


def _read_excel(path: Path, chunk_rows: int, limits: Limits) -> list[SourceTable]:
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
        sheet_names = list(reader.sheet_names)
    except Exception:  # calamine raises several exception types for broken files
        raise UnreadableFile(
            "不是有效的Excel文件（xlsx），文件可能已损坏 / "
            "not a valid xlsx file (broken or not a spreadsheet)"
        ) from None
    tables: list[SourceTable] = []
    for name in sheet_names:
        try:
            # One row past the limit is enough to know it is exceeded; the rest is never read.
            sheet = reader.load_sheet(name, header_row=None, skip_rows=0, dtypes="string",
                                      n_rows=limits.max_sheet_rows + 1)
            if getattr(sheet, "visible", "visible") != "visible":
                continue
            frame = sheet.to_polars()
        except Exception:
            raise UnreadableFile(
                f"Excel工作表“{name[:60]}”无法读取，文件可能已损坏 / cannot read sheet {name[:60]!r}"
            ) from None
        if frame.height == 0 or frame.width == 0:
            continue
        check_shape(frame.height, frame.width, limits, f"工作表“{name[:60]}”")
        frame = frame.select(pl.all().cast(pl.String))
        layout = detect_layout(frame.head(LAYOUT_ROWS).rows())
        if layout is None:
            continue
        width = max(layout.width, frame.width)
        columns = list(layout.columns)
        if width > len(columns):
            columns = _dedupe(columns + [f"column_{j + 1}" for j in range(len(columns), width)])
        data = frame.slice(layout.data_start)
        positional = frame.columns[:width]
        data = data.select(
            [pl.col(c).alias(n) for c, n in zip(positional, columns, strict=False)]
        ).with_row_index("__i")
        data = data.with_columns(
            (pl.col("__i").cast(pl.Int64) + layout.data_start + 1).alias(ROW)
        ).drop("__i")
        # columns with no header and no value at all are layout noise (formatted but empty cells)
        unnamed_empty = [
            c
            for j, c in enumerate(columns)
            if c == f"column_{j + 1}"
            and data.get_column(c).str.strip_chars().str.len_chars().fill_null(0).max() in (0, None)
        ]
        if unnamed_empty:
            data = data.drop(unnamed_empty)
            columns = [c for c in columns if c not in unnamed_empty]
        units = {c: u for c, u in layout.units.items() if c in columns}
        tables.append(
            SourceTable(
                sheet=name,
                columns=columns,
                units=units,
                encoding=None,
                chunks=_frame_chunks(data, columns, chunk_rows),
                header_parts={k: v for k, v in layout.header_parts.items() if k in columns},
                table_unit=layout.table_unit,
                preamble=layout.preamble,
                header_row=layout.header_index + 1,
            )
        )
    if not tables:
        raise UnreadableFile(
            "Excel文件中没有可识别的表格（所有工作表都为空或没有表头） / "
            "no sheet with a header row in the workbook"
        )
    return tables


def _frame_chunks(
    data: pl.DataFrame, columns: list[str], chunk_rows: int
) -> Iterator[pl.DataFrame]:
    for start in range(0, data.height, chunk_rows):
        yield _finish(data.slice(start, chunk_rows), columns)


# --------------------------------------------------------------------------------------------------
# JSON


_WRAPPER_KEYS = (
    "data",
    "records",
    "rows",
    "items",
    "list",
    "result",
    "results",
    "datas",
    "dataList",
)


def _find_records(obj: Any, depth: int = 0) -> list | None:
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict) and depth < 3:
        for key in _WRAPPER_KEYS:
            if key in obj:
                found = _find_records(obj[key], depth + 1)
                if found is not None:
                    return found
        lists = [v for v in obj.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
        if depth == 0 and obj and not any(isinstance(v, (list, dict)) for v in obj.values()):
            return [obj]  # a single record
    return None


def _json_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _read_json(path: Path, chunk_rows: int) -> list[SourceTable]:
    raw = path.read_bytes()
    encoding, _ = detect_encoding(raw[:SAMPLE_BYTES], len(raw) <= SAMPLE_BYTES)
    text = raw.decode(encoding, errors="replace")
    if not text.strip():
        raise UnreadableFile("文件为空：没有数据 / the file is empty")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        try:
            obj = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise UnreadableFile(f"不是有效的JSON文件（第{exc.lineno}行第{exc.colno}列：{exc.msg}） / "
                                 f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    records = _find_records(obj)
    if records is None:
        raise UnreadableFile(
            "JSON文件中找不到记录数组 / no array of records found in the JSON file"
        )
    if records and all(isinstance(r, list) for r in records):
        return _json_rows(records, encoding, chunk_rows)
    if not all(isinstance(r, dict) for r in records):
        raise UnreadableFile("JSON记录不是对象（键值对） / JSON records are not objects")
    keys: dict[str, None] = {}
    for r in records:
        for k in r:
            keys.setdefault(k, None)
    if not keys:
        raise UnreadableFile("JSON文件没有任何字段 / the JSON records have no fields")
    originals = list(keys)
    cleaned = _dedupe([clean_header(k) or f"column_{j + 1}" for j, k in enumerate(originals)])
    units = {c: u for c in cleaned if (u := split_unit(c)[1])}

    def chunks() -> Iterator[pl.DataFrame]:
        for start in range(0, len(records), chunk_rows):
            part = records[start : start + chunk_rows]
            data = {
                c: [_json_str(r.get(k)) for r in part]
                for k, c in zip(originals, cleaned, strict=True)
            }
            data[ROW] = list(range(start + 1, start + len(part) + 1))
            frame = pl.DataFrame(data, schema={**{c: pl.String for c in cleaned}, ROW: pl.Int64})
            yield _finish(frame, cleaned)

    return [
        SourceTable(sheet=None, columns=cleaned, units=units, encoding=encoding, chunks=chunks())
    ]


def _json_rows(rows: list[list], encoding: str, chunk_rows: int) -> list[SourceTable]:
    layout = detect_layout([[_json_str(v) for v in r] for r in rows[:LAYOUT_ROWS]])
    if layout is None:
        raise UnreadableFile("JSON数组中找不到表头行 / no header row found in the JSON array")
    width = layout.width
    body = rows[layout.data_start :]

    def chunks() -> Iterator[pl.DataFrame]:
        for start in range(0, len(body), chunk_rows):
            part = body[start : start + chunk_rows]
            data = {
                c: [_json_str(r[j]) if j < len(r) else None for r in part]
                for j, c in enumerate(layout.columns[:width])
            }
            data[ROW] = [layout.data_start + start + i + 1 for i in range(len(part))]
            frame = pl.DataFrame(
                data, schema={**{c: pl.String for c in layout.columns}, ROW: pl.Int64}
            )
            yield _finish(frame, layout.columns)

    return [
        SourceTable(
            None,
            layout.columns,
            layout.units,
            encoding,
            chunks(),
            layout.header_parts,
            layout.table_unit,
            layout.preamble,
            layout.header_index + 1,
        )
    ]


# --------------------------------------------------------------------------------------------------
# Parquet


def _as_string(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if dtype == pl.String:
        return col
    if isinstance(dtype, pl.Struct):
        return col.struct.json_encode()
    if isinstance(dtype, (pl.List, pl.Array)):
        return pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}")
    if dtype == pl.Binary:
        return col.cast(pl.String, strict=False)
    if dtype == pl.Boolean:
        return pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false")).otherwise(None)
    return col.cast(pl.String, strict=False)


def _read_parquet(path: Path, chunk_rows: int) -> list[SourceTable]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        originals = list(pf.schema_arrow.names)
    except Exception:
        raise UnreadableFile("不是有效的Parquet文件 / not a valid Parquet file") from None
    if not originals:
        raise UnreadableFile("Parquet文件没有任何列 / the Parquet file has no columns")
    cleaned = _dedupe([clean_header(k) or f"column_{j + 1}" for j, k in enumerate(originals)])
    units = {c: u for c in cleaned if (u := split_unit(c)[1])}

    def batches() -> Iterator[pl.DataFrame]:
        try:
            for batch in pf.iter_batches(batch_size=chunk_rows):
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                frame.columns = [f"c{j}" for j in range(frame.width)]
                yield frame
        except Exception:
            raise UnreadableFile(
                "Parquet文件读取失败，文件可能已损坏 / cannot read the Parquet file (broken)"
            ) from None

    def chunks() -> Iterator[pl.DataFrame]:
        offset = 0
        for frame in _rebatch(batches(), chunk_rows):
            frame = frame.select(
                [
                    _as_string(c, frame.schema[c]).alias(n)
                    for c, n in zip(frame.columns, cleaned, strict=True)
                ]
            ).with_columns(
                pl.int_range(offset + 1, offset + 1 + frame.height, dtype=pl.Int64).alias(ROW)
            )
            offset += frame.height
            yield _finish(frame, cleaned)

    return [SourceTable(sheet=None, columns=cleaned, units=units, encoding=None, chunks=chunks())]
