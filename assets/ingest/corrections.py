"""A returned workbook (``退回清单_*.xlsx``, see ``warehouse/returns.py``) delivered back as a correction.

The ordinary loader reads it: each data sheet keeps the department's own headers, the cover
sheet matches no column and is ignored, ``退回编号`` / ``问题说明`` land in ``extras``. What
this module adds, after the load, is what only a correction needs:

* personal data the clerk did not touch reads :data:`~warehouse.returns.MASK` and was hashed
  as that text; it is replaced by the hash of the original value, taken from the quarantine
  row the ``退回编号`` names (the warehouse never had the clear value to give back);
* rows of sheets that belong to another dataset are counted as skipped (the same workbook
  goes into each dataset's folder, and each load takes its own sheets);
* every quarantine row named by the workbook is recorded in ``quality.corrections`` as
  ``loaded`` (the corrected row is in ``core``) or ``quarantined`` (still wrong: the new
  batch quarantined it again, with a new message, and the next return workbook carries it).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from assets.ingest.privacy import pseudonymise
from expectations.contract import Contract
from expectations.sql import literal, quote
from warehouse.returns import COVER_SHEET, MARKER, MASK, REFERENCE, reference_sql
from warehouse.views import create_corrections_table


def is_correction(path: Path) -> bool:
    """A workbook with the return cover sheet whose first column carries the marker."""
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        return False
    try:
        import fastexcel

        reader = fastexcel.read_excel(path)
        if COVER_SHEET not in reader.sheet_names:
            return False
        cover = reader.load_sheet_by_name(COVER_SHEET, header_row=None, use_columns=[0]).to_polars()
    except Exception:  # noqa: BLE001 - not readable as a workbook: the loader will say why
        return False
    return cover.height > 0 and cover.to_series(0).cast(pl.String).eq(MARKER).any()


def _skip_other_datasets(con: duckdb.DuckDBPyConnection, contract: Contract, batch_id: str) -> int:
    """Rows of sheets that belong to another dataset are counted as skipped, not rejected.

    A department's workbook has one sheet per file it sent, possibly of several datasets; the
    clerk delivers it into each dataset's folder and each load takes its own sheets. The other
    sheets miss this dataset's columns, so the loader quarantined their rows; they are not
    errors of this delivery.
    """
    skipped = con.execute(
        f"""DELETE FROM quality.quarantine
            WHERE batch_id = ? AND split_part(raw_values->>{literal(REFERENCE)}, '|', 1) IN
                  (SELECT batch_id FROM quality.load_batches WHERE dataset <> ?)""",
        [batch_id, contract.name]).fetchall()[0][0]
    if skipped:
        con.execute(
            """UPDATE quality.load_batches
               SET rows_quarantined = rows_quarantined - ?, rows_skipped = rows_skipped + ?,
                   status = CASE WHEN rows_quarantined = ? AND rows_loaded > 0 THEN 'loaded' ELSE status END,
                   reason = concat_ws('；', nullif(reason, ''),
                                      ? || '行属于其他数据集的工作表，已跳过（该文件也需放入对应数据集的落地目录）')
               WHERE batch_id = ?""", [skipped, skipped, skipped, str(skipped), batch_id])
    return skipped


def apply(con: duckdb.DuckDBPyConnection, contract: Contract, batch_id: str, pii_key: bytes) -> dict[str, int]:
    """Restore untouched personal data and record which quarantine rows the batch corrected."""
    create_corrections_table(con)
    other_sheets = _skip_other_datasets(con, contract, batch_id)
    core = f"core.{quote(contract.name)}"
    ref = f"(t.extras->>{literal(REFERENCE)})"
    masked_hash = pseudonymise(pl.DataFrame({"v": [MASK]}), ["v"], pii_key)["v"][0]
    restored = 0
    for col in contract.columns:
        if not col.pii:
            continue
        headers = list(dict.fromkeys((col.name, col.zh, *col.aliases)))
        original = "coalesce(" + ", ".join(f"q.raw_values->>{literal(h)}" for h in headers) + ")"
        restored += con.execute(
            f"""UPDATE {core} AS t SET {quote(col.name)} = {original}
                FROM quality.quarantine AS q
                WHERE t.batch_id = ? AND t.{quote(col.name)} = ? AND {reference_sql('q')} = {ref}""",
            [batch_id, masked_hash]).fetchall()[0][0]
    loaded = con.execute(
        f"""INSERT INTO quality.corrections
            SELECT q.batch_id, q.source_sheet, q.source_row, ?, now()::TIMESTAMP, 'loaded'
            FROM quality.quarantine AS q JOIN {core} AS t ON {reference_sql('q')} = {ref}
            WHERE t.batch_id = ?""", [batch_id, batch_id]).fetchall()[0][0]
    again = con.execute(
        f"""INSERT INTO quality.corrections
            SELECT q.batch_id, q.source_sheet, q.source_row, ?, now()::TIMESTAMP, 'quarantined'
            FROM quality.quarantine AS q JOIN quality.quarantine AS n
              ON {reference_sql('q')} = (n.raw_values->>{literal(REFERENCE)})
            WHERE n.batch_id = ?""", [batch_id, batch_id]).fetchall()[0][0]
    return {"restored_personal_values": restored, "corrected": loaded, "still_rejected": again,
            "other_datasets_rows_skipped": other_sheets}
