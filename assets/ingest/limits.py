"""Limits on what one landed file may make the loader read, each breach a department-facing reason.

A 5.5 MB XLSX that unpacks to a 1.39 GB sheet was read whole (peak 2.87 GiB), and a 200 MB
line was reported as an internal error (issue 8). The limits are checked before the expensive
read where the file says how big it is (file size; the XLSX zip's declared uncompressed sizes),
and as the chunks stream otherwise (field length), so memory stays bounded meanwhile.

The defaults follow what a spreadsheet can hold (Excel: 1,048,576 rows, 32,767 characters per
cell). A text file is streamed in bounded chunks, so its size bounds only disk and time: the
platform's whole history is one 10 GB CSV (70,854,000 cases) and must load, so the file size
limit is 64 GB. ``pipelines.resources.IngestLimits`` makes them configurable per run.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from assets.ingest.errors import UnreadableFile

MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 64 * 1024 * MB
    max_xlsx_uncompressed_bytes: int = 512 * MB
    max_sheet_rows: int = 1_048_576
    max_columns: int = 1_000
    max_field_chars: int = 32_767


DEFAULT = Limits()


class LimitExceeded(UnreadableFile):
    """The file is bigger than the bureau accepts; the message tells the department what to do."""


def _mb(n: int) -> str:
    return f"{n / MB:,.1f} MB"


ESCAPES_REASON = "文件是指向落地目录之外的链接，已拒绝读取；请把文件本身放进落地目录"


def refusal(path: Path, landing: Path, accepted: set[str]) -> str | None:
    """Why a landed file is refused without being read (every file gets a batch), or None."""
    if escapes(path, landing):
        return ESCAPES_REASON
    if path.suffix.lower() not in accepted:
        kind = path.suffix.lower() or "无扩展名"
        return (f"不支持的文件类型（{kind[:20]}），未载入；请按模板另存为 "
                + "、".join(sorted(s.lstrip(".").upper() for s in accepted)) + " 后重新报送")
    return None


def escapes(path: Path, landing: Path) -> bool:
    """A symlink (or a file under a symlinked folder) whose target is outside the landing folder."""
    return not path.resolve().is_relative_to(landing.resolve())


def link_digest(path: Path) -> str:
    """Stands in for the content hash of a refused link, so it is recorded once, never read."""
    return hashlib.sha256(b"symlink:" + os.fsencode(os.readlink(path) if path.is_symlink() else path)).hexdigest()


def check_file_size(path: Path, limits: Limits) -> None:
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise LimitExceeded(f"文件大小 {_mb(size)} 超过上限 {_mb(limits.max_file_bytes)}，请拆分成多个文件后重新报送")


def check_xlsx_archive(path: Path, limits: Limits) -> None:
    """Refuse a workbook whose zip declares more uncompressed bytes than the limit, before unpacking it."""
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip (old .xls) or broken: the Excel reader says so in its own words
    if declared > limits.max_xlsx_uncompressed_bytes:
        raise LimitExceeded(f"Excel文件解压后 {_mb(declared)}，超过上限 {_mb(limits.max_xlsx_uncompressed_bytes)}"
                            f"（可能含有大量空白格式或隐藏内容），请只保留数据区域或拆分后重新报送")


def check_shape(rows: int, columns: int, limits: Limits, where: str) -> None:
    if rows > limits.max_sheet_rows:
        raise LimitExceeded(f"{where}超过 {limits.max_sheet_rows:,} 行的上限，请拆分后重新报送")
    if columns > limits.max_columns:
        raise LimitExceeded(f"{where}有 {columns:,} 列，超过 {limits.max_columns:,} 列的上限，请删除多余的列后重新报送")


def bounded_fields(chunks: Iterator[pl.DataFrame], limits: Limits) -> Iterator[pl.DataFrame]:
    """Pass chunks through, refusing the file at the first cell longer than the limit (row named, value not)."""
    for chunk in chunks:
        text = [c for c, t in chunk.schema.items() if t == pl.String]
        if text:
            too_long = pl.any_horizontal([pl.col(c).str.len_chars() > limits.max_field_chars for c in text])
            hit = chunk.filter(too_long)
            if hit.height:
                row = hit["__row"][0] if "__row" in hit.columns else None
                at = f"第{row}行" if row is not None else "文件中"
                raise LimitExceeded(f"{at}有单元格超过 {limits.max_field_chars:,} 个字符的上限（可能是引号未闭合，"
                                    f"把后面的内容都并进了一个单元格），请检查后重新报送")
        yield chunk
