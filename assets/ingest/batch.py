"""Load one landed file as one batch: read, normalise, judge every row, merge, account.

For every batch: rows_read = rows_loaded + rows_quarantined + rows_skipped. A file that
cannot be read becomes a ``failed`` batch with a reason and never stops the other files.
The same bytes delivered again are recorded as a ``duplicate`` and not loaded twice.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from assets.ingest.limits import DEFAULT, Limits, escapes, link_digest, refusal
from assets.ingest.normalise import match_headers, normalise
from assets.ingest.readers import UnreadableFile, read_file
from expectations.contract import Contract, all_contracts
from expectations.rules import RowRule, reference_rule, row_rules
from expectations.sql import literal, quote
from warehouse.stages import stage
from warehouse.writer import mark_superseded, merge_into_core, now

SUPPORTED_SUFFIXES = {".csv", ".txt", ".xlsx", ".xlsm", ".json", ".parquet"}
LOADED_STATUSES = ("loaded", "partially_loaded", "superseded")
# The batch being loaded, judged as it is staged. TEMP: it never needs to reach the database
# file (writing it there cost more than judging it), and DuckDB spills it to its temp
# directory when it outgrows the writer's memory limit.
STAGING = "govmetrics_staging"

log = logging.getLogger("govmetrics.ingest")


@dataclass
class BatchResult:
    batch_id: str
    dataset: str
    source_path: str
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_skipped: int = 0
    reason: str | None = None
    merge: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def landed_files(landing: Path, dataset: str) -> list[Path]:
    folder = landing / dataset
    if not folder.is_dir():
        return []
    # Every file a department put there, also of a type we cannot read: it gets a failed batch.
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith((".", "~$"))]
    # In delivery order, so that a corrected file supersedes the one it corrects.
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.as_posix()))


def pending_files(con: duckdb.DuckDBPyConnection, landing: Path, dataset: str) -> list[Path]:
    """Files not seen before as (path, content): re-running with nothing new changes nothing."""
    seen = set(con.execute("SELECT source_path, sha256 FROM quality.load_batches WHERE dataset = ?",
                           [dataset]).fetchall())
    return [p for p in landed_files(landing, dataset)
            if (relative(p, landing), link_digest(p) if escapes(p, landing) else sha256_of(p)) not in seen]


def relative(path: Path, landing: Path) -> str:
    try:
        return path.relative_to(landing).as_posix()
    except ValueError:
        return path.as_posix()


def _new_batch_id(dataset: str, sha: str) -> str:
    """Readable and unique: dataset, arrival time, content prefix, and a random tail."""
    return f"{dataset}-{now():%Y%m%dT%H%M%S}-{sha[:8]}-{uuid.uuid4().hex[:6]}"


def _record(con: duckdb.DuckDBPyConnection, result: BatchResult, sha: str, run_id: str | None,
            encoding: str | None = None, period: tuple[str | None, str | None] = (None, None)) -> None:
    con.execute(
        """INSERT INTO quality.load_batches
           (batch_id, dataset, source_path, sha256, received_at, run_id, rows_read, rows_loaded,
            rows_quarantined, rows_skipped, status, reason, encoding, period_min, period_max)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [result.batch_id, result.dataset, result.source_path, sha, now(), run_id, result.rows_read,
         result.rows_loaded, result.rows_quarantined, result.rows_skipped, result.status,
         result.reason, encoding, *period])


def load_file(con: duckdb.DuckDBPyConnection, contract: Contract, path: Path, landing: Path,
              pii_key: bytes, run_id: str | None = None,
              progress: Callable[[str], None] = log.info, limits: Limits = DEFAULT) -> BatchResult:
    """Load one file; never raises for a bad file (the failure is recorded as a batch)."""
    source = relative(path, landing)
    refused = refusal(path, landing, SUPPORTED_SUFFIXES)
    if refused:  # never read: a link out of the landing folder, a type we do not load
        sha = link_digest(path) if escapes(path, landing) else sha256_of(path)
        result = BatchResult(_new_batch_id(contract.name, sha), contract.name, source, "failed", reason=refused)
        _record(con, result, sha, run_id)
        progress(f"{source}: failed, {refused}")
        return result
    sha = sha256_of(path)
    batch_id = _new_batch_id(contract.name, sha)
    earlier = con.execute(
        f"SELECT batch_id, source_path FROM quality.load_batches WHERE dataset = ? AND sha256 = ? "
        f"AND status IN {LOADED_STATUSES} ORDER BY received_at LIMIT 1", [contract.name, sha]).fetchall()
    if earlier:
        earlier = earlier[0]
        result = BatchResult(batch_id, contract.name, source, "duplicate",
                             reason=f"与已载入的批次 {earlier[0]}（{earlier[1]}）内容完全相同，未重复载入")
        _record(con, result, sha, run_id)
        progress(f"{source}: duplicate of {earlier[0]}, skipped")
        return result

    # Staging and judging only read the warehouse and write the connection's TEMP tables, so
    # they run before the transaction: rows appended inside a DuckDB transaction are held in
    # memory the buffer manager cannot spill, which made the peak grow with the file. The
    # transaction covers every write a reader could see: quarantine, core, load_batches.
    try:
        rules, flags = _rules_for(con, contract)
        result, encoding, staged = _stage(con, contract, path, source, batch_id, rules, pii_key, progress, limits)
        loaded_at = _judge(con, contract, flags, batch_id) if staged else None
        con.execute("BEGIN TRANSACTION")
        try:
            period = _quarantine_and_merge(con, contract, result, loaded_at) if staged else (None, None)
            _record(con, result, sha, run_id, encoding, period)
            stage("merging")  # everything written, nothing committed
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    except UnreadableFile as exc:  # found while streaming (a broken row, a limit): the department's file
        result = BatchResult(batch_id, contract.name, source, "failed", reason=f"文件无法读取：{exc}")
        _record(con, result, sha, run_id)
    except Exception as exc:  # one bad file never stops the others
        log.exception("loading %s failed", source)
        result = BatchResult(batch_id, contract.name, source, "failed",
                             reason=f"载入时发生内部错误，文件未载入（{type(exc).__name__}，详见运行日志）")
        _record(con, result, sha, run_id)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {STAGING}; DROP TABLE IF EXISTS duplicates; "
                    f"DROP TABLE IF EXISTS incoming")
    progress(f"{source}: {result.status} read={result.rows_read} loaded={result.rows_loaded} "
             f"quarantined={result.rows_quarantined} skipped={result.rows_skipped}")
    return result


def _stage(con, contract: Contract, path: Path, source: str, batch_id: str, rules: list[RowRule],
           pii_key: bytes, progress, limits: Limits = DEFAULT) -> tuple[BatchResult, str | None, bool]:
    """Read and normalise every table of the file into the staging table (if it has rows).

    The row rules are judged as each chunk goes in (they read only the row itself and the
    referenced registers, which do not change during the load), so the staged batch is
    written once and never copied. Each staged row gets ``__seq``, its position in the batch.
    """
    checked = _checked_select(rules)
    result = BatchResult(batch_id, contract.name, source, "loaded")
    try:
        tables = read_file(path, limits=limits)
    except UnreadableFile as exc:
        result.status, result.reason = "failed", f"文件无法读取：{exc}"
        return result, None, False
    notes: list[str] = []
    encoding = None
    created = matched = False
    seq = 0
    for table in tables:
        match = match_headers(table, contract)
        where = f"工作表“{table.sheet}”" if table.sheet else "文件"
        if not match.mapping:
            notes.append(f"{where}没有可识别的列，已忽略")
            continue
        encoding = encoding or table.encoding
        matched = True
        for chunk in table.chunks:
            totals = int(chunk["__total"].sum())
            frame = normalise(chunk.filter(~pl.col("__total")), match, contract, pii_key)
            # A row is one record of the dataset: a wide indicator row unpivots into one per value.
            result.rows_skipped += totals
            result.rows_read += totals + frame.height
            frame = frame.with_columns(pl.lit(table.sheet, dtype=pl.String).alias("__sheet"),
                                       pl.lit(", ".join(match.missing_required) or None,
                                              dtype=pl.String).alias("__missing"),
                                       pl.int_range(seq, seq + frame.height, dtype=pl.Int64).alias("__seq"))
            seq += frame.height
            con.register("govmetrics_chunk", frame.to_arrow())
            del frame
            if created:
                con.execute(f"INSERT INTO {STAGING} BY NAME {checked}")
            else:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGING} AS {checked}")
                created = True
            con.unregister("govmetrics_chunk")
            stage("reading")
            progress(f"{source}: staged {result.rows_read:,} rows")
        if match.missing_required:
            notes.append(f"{where}缺少必填列：" + "、".join(
                f"{contract.column(c).zh}（{c}）" for c in match.missing_required))
    if not matched:
        result.status = "failed"
        notes.append(f"没有一列能对应到{contract.title_zh}模板的列，请按模板填写表头")
    elif result.rows_read == 0:
        notes.append("文件只有表头，没有数据行")
    result.reason = "；".join(notes) or None
    return result, encoding, created


def _rules_for(con, contract: Contract) -> tuple[list[RowRule], list[str]]:
    """Row rules plus reference rules whose referenced dataset has current rows."""
    rules = [RowRule("missing_column", None, "__missing IS NOT NULL",
                     "文件缺少必填列，整行无法载入，请按模板补齐列后重新报送")] + row_rules(contract)
    flags: list[str] = []
    contracts = all_contracts()
    for col in contract.columns:
        if not col.reference:
            continue
        ref_ds, ref_col = col.reference
        if col.on_missing_reference == "flag":
            flags.append(f"{quote(col.name)} IS NOT NULL AND {quote(col.name)} NOT IN "
                         f"(SELECT {quote(ref_col)} FROM latest.{quote(ref_ds)} WHERE {quote(ref_col)} IS NOT NULL) "
                         f"AS {quote(col.flag_column)}")
            continue
        present = con.execute(f"SELECT count(*) FROM latest.{quote(ref_ds)}").fetchall()[0][0]
        if present:  # an empty register cannot judge anything: say so instead of rejecting all
            rules.append(reference_rule(col, contracts[ref_ds].title_zh))
        else:
            log.warning("%s.%s: %s has no rows yet, reference not checked", contract.name, col.name, ref_ds)
    return rules, flags


def _checked_select(rules: list[RowRule]) -> str:
    """SELECT over the registered chunk adding ``__rules`` / ``__messages``: the rules it breaks.

    Each rule's predicate is evaluated once per row, into the list of the (1-based) numbers of
    the rules broken (empty for almost every row); names and messages are looked up from it.
    """
    broken = "[" + ", ".join(f"CASE WHEN {r.broken_sql} THEN {i} END" for i, r in enumerate(rules, 1)) + "]"
    names = "[" + ", ".join(literal(r.name) for r in rules) + "]"
    messages = "[" + ", ".join(literal(r.message) for r in rules) + "]"
    return (f"SELECT * EXCLUDE (__broken), list_transform(__broken, lambda i: {names}[i]) AS __rules, "
            f"list_transform(__broken, lambda i: {messages}[i]) AS __messages "
            f"FROM (SELECT *, list_filter({broken}, lambda x: x IS NOT NULL) AS __broken FROM govmetrics_chunk)")


def _judge(con, contract: Contract, flags: list[str], batch_id: str) -> datetime:
    """Find duplicate keys in the staged batch and build ``incoming``, the rows to merge.

    Returns the load time ``incoming`` carries as ``valid_from``.
    """
    keys = ", ".join(quote(k) for k in contract.keys)
    # Duplicate keys within the file: among the rows that break no rule, every row after the
    # first (by sheet, then row) with the same key. Only (__seq, first row) of those rows is
    # kept, so the window sorts three narrow columns, not the staged rows.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE duplicates AS
        SELECT __seq, __first_row FROM (
            SELECT __seq, __row, first_value(__row) OVER (PARTITION BY {keys} ORDER BY __sheet, __row) AS __first_row
            FROM {STAGING} WHERE len(__rules) = 0
        ) WHERE __first_row <> __row""")
    stage("judging")
    loaded_at = now()
    columns = ", ".join(quote(c) for c in contract.column_names)
    flag_sql = "".join(f", {f}" for f in flags)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE incoming AS
        SELECT {columns}{flag_sql}, ? AS batch_id, __row AS source_row, __extras::JSON AS extras,
               ?::TIMESTAMP AS valid_from, NULL::TIMESTAMP AS valid_to
        FROM {STAGING} AS s
        WHERE len(__rules) = 0 AND NOT EXISTS (SELECT 1 FROM duplicates AS d WHERE d.__seq = s.__seq)""",
                [batch_id, loaded_at])
    return loaded_at


def _quarantine_and_merge(con, contract: Contract, result: BatchResult,
                          loaded_at: datetime) -> tuple[str | None, str | None]:
    key_zh = "、".join(contract.column(k).zh for k in contract.keys)
    result.rows_quarantined = con.execute(f"""
        INSERT INTO quality.quarantine
        SELECT ?, ?, __sheet, __row, __rules[1], __rules, array_to_string(__messages, '；'), __raw::JSON
        FROM (
            SELECT s.__sheet, s.__row, s.__raw,
                   CASE WHEN d.__seq IS NOT NULL THEN ['duplicate_key'] ELSE s.__rules END AS __rules,
                   CASE WHEN d.__seq IS NOT NULL
                        THEN ['{key_zh}在本文件中重复，与第' || d.__first_row || '行相同；保留了第一次出现的行']
                        ELSE s.__messages END AS __messages
            FROM {STAGING} AS s LEFT JOIN duplicates AS d ON s.__seq = d.__seq
            WHERE len(s.__rules) > 0 OR d.__seq IS NOT NULL
        )""", [result.batch_id, result.dataset]).fetchall()[0][0]

    result.rows_loaded = con.execute("SELECT count(*) FROM incoming").fetchall()[0][0]
    result.merge = merge_into_core(con, contract, "incoming", loaded_at)
    mark_superseded(con, contract.name, result.batch_id)

    if result.rows_loaded == 0 and result.rows_quarantined:
        result.status = "failed"
        all_bad = f"全部{result.rows_quarantined}行均未通过校验，见 quality.quarantine"
        result.reason = "；".join(filter(None, [result.reason, all_bad]))
    elif result.rows_quarantined:
        result.status = "partially_loaded"
        result.reason = "；".join(filter(None, [result.reason, f"{result.rows_quarantined}行未通过校验，已隔离"]))
    period = None
    if contract.period:
        period = con.execute(f"SELECT min({quote(contract.period)})::VARCHAR, max({quote(contract.period)})::VARCHAR "
                             f"FROM incoming").fetchall()[0]
    return period or (None, None)


def refresh_reference_flags(con: duckdb.DuckDBPyConnection, contract: Contract) -> int:
    """Re-evaluate 'not loaded yet' flags: a review's case may have arrived since."""
    changed = 0
    for col in contract.columns:
        if not col.flag_column:
            continue
        ref_ds, ref_col = col.reference
        changed += con.execute(
            f"""UPDATE core.{quote(contract.name)} SET {quote(col.flag_column)} = ({quote(col.name)} NOT IN
                   (SELECT {quote(ref_col)} FROM latest.{quote(ref_ds)} WHERE {quote(ref_col)} IS NOT NULL))
                WHERE valid_to IS NULL""").fetchall()[0][0]
    return changed
