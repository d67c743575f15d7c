"""Parquet exports for report generators: ``exports/<table>/...parquet`` + ``_manifest.json``.

What is exported
    Every table (and view) of the ``marts`` schema, and for every dataset whose contract
    declares no personal data, its current rows (``latest.<dataset>``). ``service_cases``
    carries personal data (applicant id number and phone, even hashed) and is never
    exported. Bookkeeping columns of core tables are exported except ``valid_to`` (always
    empty for current rows) and ``extras`` (columns departments added outside the contract:
    nobody has reviewed them, they may hold personal data). The directory is named after the
    table (``exports/kpi_values``, ``exports/org_units``); a marts table and a dataset of the
    same name would clash and are refused.

Partitioning (hive style, ``key=value`` directories)
    A partition key is an *extra* column derived from the table's period: every file still
    holds all the table's columns with their warehouse types, so a single file read alone is
    complete, and the key never changes a column's type on the way back.

    * ``period_month=YYYY-MM``: tables whose period is a month, date or timestamp:
      ``service_volume_monthly`` (from ``month``), ``case_volume_monthly`` (``month``),
      ``service_reviews`` (``reviewed_at``). A report for one month reads one directory.
    * ``grain=<period_grain>``: ``kpi_values`` (month, quarter, year, day, snapshot): small,
      and readers nearly always want a single grain.
    * unpartitioned (``<table>/part-0.parquet``): registers (``org_units``,
      ``service_items``, ``extranet_nodes``, ``cloud_systems``), ``kpi_catalogue``, and
      ``indicators``, whose period is free text (``2022``, ``2022-Q1``, ``2022-04-28``) in a
      table of a few hundred rows.

    Keys are strings; both DuckDB (``hive_partitioning=true``: ``'2023-03'`` is not a date, it
    stays VARCHAR) and pyarrow (:func:`dataset`) read them back as strings.

Files are zstd-compressed, at most ``MAX_ROWS_PER_FILE`` rows each, named ``part-<n>.parquet``.

Unchanged months are not written again
    A large table (``service_reviews``: 46.5 million rows) is written month by month. The
    manifest keeps a fingerprint of each month partition: its row count and the sum of a hash
    of every row (all columns, the key included), with a digest of the file schema (types and
    labels). A month whose fingerprint is the one of the previous export, and whose files are
    all still there, is hard-linked from the previous export instead of being written: a
    monthly delivery of cases rewrites none of the reviews. An export file is never modified
    after it is written (``export_runs``), so the link is the same file.

Atomicity
    All tables are written into a staging directory next to ``exports`` first. Then each
    table directory is swapped in with one ``renameat2(RENAME_EXCHANGE)`` (on Linux; two renames
    elsewhere), so a reader sees the old table or the new one, never half of one. Tables no
    longer produced are removed, and the manifest is replaced last (write + ``os.replace``).
    A report generator compares the manifest's ``run_id`` with what it read last time.

Schema only grows
    The manifest keeps each table's schema as ``{column: arrow type}``. A column whose type
    differs from the previous manifest stops the export before anything is written
    (:class:`SchemaChangeError`): such a change needs a documented migration (delete the
    table's directory and its manifest entry on purpose). A new column is appended (recorded
    under ``columns_added``); a column that disappeared from the warehouse stays in the files,
    empty, with its previous type, in its previous place.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from expectations.contract import all_contracts
from expectations.sql import quote
from warehouse.export_metadata import coverage, describe, label_and_unit, period_column
from warehouse.export_runs import keep_run, link
from warehouse.files import exchange

MANIFEST = "_manifest.json"
MANIFEST_VERSION = 1
COMPRESSION = "zstd"
BATCH_ROWS = 128 * 1024
MAX_ROWS_PER_FILE = 5_000_000
MAX_ROWS_PER_GROUP = 1024 * 1024
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # the directory of rows whose partition key is missing

# Core bookkeeping columns never exported (see module docstring).
CORE_EXCLUDED = ("valid_to", "extras")

# Contract column types whose period gives a month partition.
MONTHLY_PERIOD_TYPES = ("month", "date", "timestamp")

# Partitioning of the marts tables: (key, SQL expression of the key, sort columns).
MARTS_LAYOUT: dict[str, tuple[str | None, str | None, tuple[str, ...]]] = {
    "service_volume_monthly": (
        "period_month",
        "strftime(\"month\", '%Y-%m')",
        ("month", "dept_code", "region_code", "source"),
    ),
    "kpi_values": ("grain", '"period_grain"', ("kpi_code", "period_start", "scope")),
    "kpi_catalogue": (None, None, ("kpi_code",)),
}


# Names under exports/ that are not tables (see export_runs.py, the bulletin and the return workbooks).
RESERVED = {"runs", "latest", "bulletin", "returns"}

# Quality tables for report generators: (source, columns never exported). The quarantine is
# exported from ``quality.rejected_rows`` (it adds the department) without the raw values,
# which hold personal data (hashed) and whatever else a department typed.
QUALITY_EXPORTS: dict[str, tuple[str, set[str]]] = {
    "load_batches": ("quality.load_batches", set()),
    "quarantine": ("quality.rejected_rows", {"raw_values"}),
    "check_results": ("quality.check_results", set()),
}


class SchemaChangeError(RuntimeError):
    """An exported column would change type, or a table its partitioning: needs a migration."""


@dataclass
class _Plan:
    table: str  # directory name under exports/
    source: str  # schema.table in DuckDB
    select: str  # the SQL producing the rows (partition key last, if any)
    key: str | None  # partition key
    key_from: str | None  # column the key is derived from
    schema: pa.Schema = field(
        default_factory=lambda: pa.schema([])
    )  # file columns, canonical types
    added: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # gone from the warehouse, kept empty
    # Large tables are written month by month (one query per month, no sort) instead of in
    # one query ordered by the key: see :func:`_rows`.
    by_month: bool = False
    # Month partitions of a ``by_month`` table linked from the previous export, not written.
    reused: dict[str | None, list[dict]] = field(default_factory=dict)  # key value -> files
    partitions: dict[str, dict] = field(default_factory=dict)  # folder -> fingerprint, rows, period


# ---------------------------------------------------------------------------------------------
# Types


def canonical_type(t: pa.DataType) -> pa.DataType:
    """One spelling per logical type, so that the manifest does not change with the DuckDB
    version: strings as ``string``, lists as ``list<item>``, recursively."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    ):
        return pa.list_(canonical_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, canonical_type(f.type)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(canonical_type(t.key_type), canonical_type(t.item_type))
    return t


def type_string(t: pa.DataType) -> str:
    """The manifest spelling of an arrow type: ``string``, ``int64``, ``date32[day]``,
    ``timestamp[us]``, ``list<string>``."""
    t = canonical_type(t)
    if pa.types.is_list(t):
        return f"list<{type_string(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ", ".join(f"{f.name}: {type_string(f.type)}" for f in t) + ">"
    if pa.types.is_map(t):
        return f"map<{type_string(t.key_type)}, {type_string(t.item_type)}>"
    return str(t)


# ---------------------------------------------------------------------------------------------
# What to export


def _relations(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
        "AND database_name = current_database() "
        "AND NOT internal UNION SELECT view_name FROM duckdb_views() WHERE schema_name = ? "
        "AND database_name = current_database() AND NOT internal ORDER BY 1",
        [schema, schema],
    ).fetchall()
    return [r[0] for r in rows]


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = ? AND table_name = ? "
        "AND database_name = current_database() ORDER BY column_index",
        [schema, table],
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def pii_column_names() -> set[str]:
    """Every column any contract declares as personal data: never in any export file."""
    return {c for contract in all_contracts().values() for c in contract.pii_columns}


def _select_list(columns: list[tuple[str, str]], exclude: set[str]) -> str:
    parts = []
    for name, dtype in columns:
        if name in exclude:
            continue
        # JSON leaves as text (an arrow extension type would tie readers to DuckDB).
        expr = f"CAST({quote(name)} AS VARCHAR)" if dtype.upper() == "JSON" else quote(name)
        parts.append(f"{expr} AS {quote(name)}")
    return ", ".join(parts)


def _plans(con: duckdb.DuckDBPyConnection) -> list[_Plan]:
    pii = pii_column_names()
    plans: list[_Plan] = []
    for table in _relations(con, "marts"):
        cols = _columns(con, "marts", table)
        key, key_sql, order = MARTS_LAYOUT.get(table, (None, None, ()))
        names = {c for c, _ in cols}
        if key and not key_sql_columns_present(key_sql, names):
            key = key_sql = None
        order = tuple(c for c in order if c in names)
        plans.append(_plan(table, f"marts.{table}", cols, pii, key, key_sql, order))
    for contract in all_contracts().values():
        if contract.pii_columns:  # personal data: never exported, not even hashed
            continue
        if contract.name not in _relations(con, "latest"):
            continue
        cols = _columns(con, "latest", contract.name)
        key = key_sql = None
        if contract.period and contract.column(contract.period).type in MONTHLY_PERIOD_TYPES:
            key, key_sql = "period_month", f"strftime({quote(contract.period)}, '%Y-%m')"
        # records datasets are large: written month by month, unsorted within a month
        large = contract.kind == "records" and key is not None
        plans.append(
            _plan(
                contract.name,
                f"latest.{contract.name}",
                cols,
                pii | set(CORE_EXCLUDED),
                key,
                key_sql,
                () if contract.kind == "records" else contract.keys,
                by_month=large,
            )
        )
    for table, (source, exclude) in QUALITY_EXPORTS.items():
        schema_name, rel = source.split(".")
        if rel in _relations(con, schema_name):
            plans.append(_plan(table, source, _columns(con, schema_name, rel), pii | exclude, None, None, ()))
    seen: set[str] = set()
    for p in plans:
        if p.table in seen:
            raise ValueError(f"two warehouse tables would both be exported as exports/{p.table}")
        if p.table in RESERVED:
            raise ValueError(f"exports/{p.table} is reserved for the run folders")
        seen.add(p.table)
    return plans


def key_sql_columns_present(key_sql: str | None, names: set[str]) -> bool:
    return key_sql is None or all(c in names for c in re.findall(r'"([^"]+)"', key_sql))


def _plan(
    table: str,
    source: str,
    cols: list[tuple[str, str]],
    exclude: set[str],
    key: str | None,
    key_sql: str | None,
    order: tuple[str, ...],
    by_month: bool = False,
) -> _Plan:
    schema_name, rel = source.split(".", 1)
    select = f"SELECT {_select_list(cols, exclude)}"
    if key:
        if key in {c for c, _ in cols}:
            raise ValueError(f"partition key {key} of {source} clashes with a column")
        select += f", {key_sql} AS {quote(key)}"
    select += f" FROM {quote(schema_name)}.{quote(rel)}"
    sort = ([] if by_month or not key else [quote(key)]) + [quote(c) for c in order]
    if sort:
        select += " ORDER BY " + ", ".join(sort)
    key_from = re.findall(r'"([^"]+)"', key_sql)[0] if key_sql else None
    return _Plan(table=table, source=source, select=select, key=key, key_from=key_from, by_month=by_month)


# ---------------------------------------------------------------------------------------------
# Schema evolution


def _read_manifest(exports_dir: Path) -> dict:
    path = exports_dir / MANIFEST
    if not path.exists():
        return {"tables": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def _previous_field_type(exports_dir: Path, entry: dict, column: str) -> pa.DataType:
    """The exact arrow type of a column in the previous export (read from one of its files)."""
    for f in entry.get("files", []):
        path = exports_dir / f["path"]
        if path.exists():
            s = pq.read_schema(path)
            if column in s.names:
                return canonical_type(s.field(column).type)
    raise SchemaChangeError(
        f"column {column!r} of exports/{entry.get('table', '?')} is gone from the warehouse "
        f"and its "
        f"previous type cannot be read back from the previous files; restore the column or migrate "
        f"the export on purpose"
    )


def _resolve_schema(
    plan: _Plan, current: pa.Schema, previous: dict | None, exports_dir: Path
) -> None:
    """Fix the file schema of a table: previous columns first (types unchanged), new ones after."""
    current_fields = {
        f.name: pa.field(f.name, canonical_type(f.type)) for f in current if f.name != plan.key
    }
    if not previous:
        plan.schema = pa.schema(list(current_fields.values()))
        return
    prev_schema: dict[str, str] = previous.get("schema", {})
    prev_part = (previous.get("partitioning") or {}).get("key")
    if prev_part != plan.key:
        raise SchemaChangeError(
            f"exports/{plan.table} was partitioned by {prev_part or 'nothing'} and would now be "
            f"partitioned by {plan.key or 'nothing'}; readers filter on the key: "
            f"migrate on purpose "
            f"(remove exports/{plan.table} and its manifest entry) if this is intended"
        )
    changed = [
        f"{c}: {prev_schema[c]} -> {type_string(f.type)}"
        for c, f in current_fields.items()
        if c in prev_schema and prev_schema[c] != type_string(f.type)
    ]
    if changed:
        raise SchemaChangeError(
            f"exports/{plan.table} ({plan.source}): column type changed compared to the previous "
            f"export ({'; '.join(changed)}). The export schema only grows; a type change needs a "
            f"documented migration (remove exports/{plan.table} and its manifest entry on purpose)"
        )
    fields = []
    for c in prev_schema:
        if c in current_fields:
            fields.append(current_fields[c])
        else:
            fields.append(
                pa.field(c, _previous_field_type(exports_dir, {**previous, "table": plan.table}, c))
            )
            plan.kept.append(c)
    for c, f in current_fields.items():
        if c not in prev_schema:
            fields.append(f)
            plan.added.append(c)
    plan.schema = pa.schema(fields)


def _aligned(reader: pa.RecordBatchReader, plan: _Plan) -> pa.RecordBatchReader:
    """The rows in the plan's schema: columns reordered and cast, gone ones null, key last."""
    out_fields = list(plan.schema)
    if plan.key:
        label, unit = label_and_unit(plan.key, None, None)
        out_fields.append(pa.field(plan.key, pa.string(), metadata={"label_zh": label, "unit": unit,
                                                                     "description": label}))
    out_schema = pa.schema(out_fields, metadata=plan.schema.metadata)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            arrays = []
            for f in out_fields:
                idx = batch.schema.get_field_index(f.name)
                if idx < 0:
                    arrays.append(pa.nulls(batch.num_rows, f.type))
                else:
                    col = batch.column(idx)
                    arrays.append(col if col.type == f.type else col.cast(f.type))
            yield pa.RecordBatch.from_arrays(arrays, schema=out_schema)

    return pa.RecordBatchReader.from_batches(out_schema, batches())


# ---------------------------------------------------------------------------------------------
# Writing


def _month_filters(con: duckdb.DuckDBPyConnection, plan: _Plan) -> list[tuple[str | None, str]]:
    """(partition key value, ``WHERE`` condition) per month present in the plan's period column,
    in month order (rows without a period last). Ranges rather than ``strftime`` so that DuckDB's
    min/max index skips the rest of the table: exports arrive in time order, a month is a few
    row groups."""
    column = quote(plan.key_from)
    rel = ".".join(quote(part) for part in plan.source.split(".", 1))
    months = con.execute(f"SELECT DISTINCT date_trunc('month', {column})::TIMESTAMP AS m FROM {rel} "
                         f"ORDER BY m NULLS LAST").fetchall()
    return [(None, f"{column} IS NULL") if m is None
            else (f"{m:%Y-%m}", f"{column} >= TIMESTAMP '{m:%Y-%m-%d}' "
                                f"AND {column} < TIMESTAMP '{m:%Y-%m-%d}' + INTERVAL 1 MONTH")
            for (m,) in months]


def _rows(con: duckdb.DuckDBPyConnection, plan: _Plan) -> pa.RecordBatchReader:
    """The rows to write, grouped by partition.

    Small tables: one query ordered by the key. A large table (``by_month``): one query per
    month, chained, so that nothing sorts the whole table (46.5 million reviews at full volume:
    15 s, 1.5 GiB peak for the whole export); months in ``plan.reused`` are skipped.
    """
    if not plan.by_month:
        return con.sql(plan.select).to_arrow_reader(BATCH_ROWS)
    schema = con.sql(f"{plan.select} LIMIT 0").to_arrow_table().schema
    filters = [where for value, where in _month_filters(con, plan) if value not in plan.reused]

    def batches() -> Iterator[pa.RecordBatch]:
        for where in filters:  # each result is read to its end before the next query starts
            yield from con.sql(f"{plan.select} WHERE {where}").to_arrow_reader(BATCH_ROWS)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _fingerprint_partitions(con: duckdb.DuckDBPyConnection, plan: _Plan, previous: dict | None,
                            exports_dir: Path) -> None:
    """Fill ``plan.partitions`` (each month's fingerprint, see the module docstring) and
    ``plan.reused`` (the months the previous export already holds, file for file)."""
    schema = hashlib.sha1(plan.schema.serialize()).hexdigest()[:16]
    period = quote(plan.key_from)
    before = (previous or {}).get("partitions") or {}
    files = (previous or {}).get("files") or []
    for value, rows, digest, lo, hi in con.execute(
            f"SELECT {quote(plan.key)}, count(*), sum(hash(r))::VARCHAR, min({period}), max({period}) "
            f"FROM ({plan.select}) AS r GROUP BY 1").fetchall():
        folder = _hive_folder(plan.key, value)
        fingerprint = f"{schema}:{rows}:{digest}"
        plan.partitions[folder] = {"fingerprint": fingerprint, "rows": rows, "period": (lo, hi)}
        if before.get(folder) != fingerprint:
            continue
        kept = [f for f in files if f["path"].startswith(f"{plan.table}/{folder}/")]
        if kept and sum(f["rows"] for f in kept) == rows and all((exports_dir / f["path"]).is_file() for f in kept):
            plan.reused[value] = kept


class _PartitionWriter:
    """Writes a table's batches, grouped by partition key, as ``[<key>=<value>/]part-<n>.parquet``.

    Synchronous on purpose: it holds at most one row group (``MAX_ROWS_PER_GROUP`` rows) before
    writing it. pyarrow's ``write_dataset`` queues up to 64Mi rows ahead of its writer threads,
    and the batches it queued were DuckDB's memory: at full volume the export ran the writer
    out of memory while the process grew to 3.6 GiB.
    """

    def __init__(self, target: Path, schema: pa.Schema, key: str | None, period: str | None = None) -> None:
        self.target, self.schema, self.key, self.period = target, schema, key, period
        self.period_range: tuple[object, object] | None = None  # (min, max) of ``period`` as written
        self.files: list[tuple[Path, int]] = []  # in writing order
        self._writer: pq.ParquetWriter | None = None
        self._folder: Path | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._file_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if self.period in batch.schema.names:
            self._widen(pc.min_max(batch.column(self.period)))
        if not self.key:
            self._append(self.target, batch)
            return
        data = batch.drop_columns([self.key])
        # The input is grouped by key: one run of equal keys per partition in the batch (most
        # batches are a single run).
        runs = pc.run_end_encode(batch.column(self.key))
        start = 0
        for end, value in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
            self._append(self.target / _hive_folder(self.key, value), data.slice(start, end - start))
            start = end

    def _widen(self, found: pa.StructScalar) -> None:
        lo, hi = found["min"].as_py(), found["max"].as_py()
        if lo is None:  # no value in this batch
            return
        if self.period_range is not None:
            lo, hi = min(lo, self.period_range[0]), max(hi, self.period_range[1])
        self.period_range = (lo, hi)

    def close(self, placeholder: bool = True) -> list[tuple[Path, int]]:
        """Finish the last file; with ``placeholder``, an empty table still gets one (empty)
        file, so that its schema is there."""
        self._close_file()
        if placeholder and not self.files:
            self.target.mkdir(parents=True, exist_ok=True)
            path = self.target / "part-0.parquet"
            pq.write_table(self.schema.empty_table(), path, compression=COMPRESSION)
            self.files.append((path, 0))
        return self.files

    def _append(self, folder: Path, batch: pa.RecordBatch) -> None:
        if folder != self._folder:
            self._close_file()
            self._folder = folder
        while batch.num_rows:
            if self._writer is None:
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"part-{sum(1 for p, _ in self.files if p.parent == folder)}.parquet"
                self._writer = pq.ParquetWriter(path, self.schema, compression=COMPRESSION)
                self.files.append((path, 0))
            room = MAX_ROWS_PER_FILE - self._file_rows
            part, batch = batch.slice(0, room), batch.slice(room)
            self._pending.append(part)
            self._pending_rows += part.num_rows
            self._file_rows += part.num_rows
            if self._pending_rows >= MAX_ROWS_PER_GROUP:
                self._flush()
            if self._file_rows >= MAX_ROWS_PER_FILE:
                self._close_file()

    def _flush(self) -> None:
        if self._writer is not None and self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending, schema=self.schema),
                                     row_group_size=MAX_ROWS_PER_GROUP)
        self._pending, self._pending_rows = [], 0

    def _close_file(self) -> None:
        if self._writer is None:
            return
        self._flush()
        self._writer.close()
        path, _ = self.files[-1]
        self.files[-1] = (path, self._file_rows)
        self._writer, self._file_rows = None, 0


def _hive_folder(key: str, value: str | None) -> str:
    """``key=value`` as hive writes it (pyarrow, DuckDB and Spark read it back): URI-escaped, a
    missing value as ``__HIVE_DEFAULT_PARTITION__``."""
    return f"{key}={HIVE_NULL if value is None else urllib.parse.quote(value, safe='')}"


def _write_table(con: duckdb.DuckDBPyConnection, plan: _Plan, target: Path, exports_dir: Path
                 ) -> tuple[list[dict], tuple[object, object] | None]:
    """Write the plan's rows and link its reused months from ``exports_dir``; returns the files
    (paths relative to ``target``, in partition order) and the (min, max) of the period column."""
    writer = _PartitionWriter(target, plan.schema, plan.key, period_column(plan.table, plan.source))
    for batch in _aligned(_rows(con, plan), plan):
        writer.write(batch)
    files = [{"path": p.relative_to(target).as_posix(), "rows": rows, "bytes": p.stat().st_size}
             for p, rows in writer.close(placeholder=not plan.reused)]
    period_range = writer.period_range
    for value, kept in plan.reused.items():
        for f in kept:
            relative = f["path"].split("/", 1)[1]
            link(exports_dir / f["path"], target / relative)
            files.append({**f, "path": relative})
        lo, hi = plan.partitions[_hive_folder(plan.key, value)]["period"]
        if lo is not None:
            period_range = (lo, hi) if period_range is None else (min(lo, period_range[0]), max(hi, period_range[1]))
    if plan.reused:
        files.sort(key=_in_partition_order)
    return files, period_range


def _in_partition_order(file: dict) -> tuple[str, int]:
    """``period_month=2023-01/part-10.parquet`` -> (``period_month=2023-01``, 10)."""
    folder, name = file["path"].rsplit("/", 1)
    return folder, int(re.sub(r"\D", "", name))


def _swap_in(new: Path, dest: Path, trash: Path) -> None:
    """Put directory ``new`` at ``dest``; the previous ``dest`` (if any) ends up under ``trash``."""
    if dest.exists():
        if exchange(new, dest):
            return  # ``new`` now holds the old table; the caller removes the staging dir
        trash.mkdir(parents=True, exist_ok=True)
        os.rename(dest, trash / dest.name)
    os.rename(new, dest)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:60]


def export_parquet(con: duckdb.DuckDBPyConnection, exports_dir: Path, run_id: str, keep_runs: int = 10) -> dict:
    """Write ``exports/<table>/...parquet`` and ``exports/_manifest.json`` (see the module doc).

    Returns ``{"run_id", "written_at", "tables": {table: {"rows", "files", "partitioning",
    "columns_added", "columns_kept"}}, "files": n, "rows": n, "removed": [tables],
    "manifest": path}``.
    Raises :class:`SchemaChangeError` (before writing anything) when a column would change type.
    """
    exports_dir = Path(exports_dir)
    exports_dir.mkdir(parents=True, exist_ok=True)
    written_at = datetime.now(UTC).isoformat(timespec="seconds")
    previous = _read_manifest(exports_dir)
    prev_tables: dict = previous.get("tables", {})
    pii = pii_column_names()

    plans = _plans(con)
    for plan in plans:  # every schema is settled before a single file is written
        current = con.sql(f"SELECT * FROM ({plan.select}) LIMIT 0").to_arrow_table().schema
        _resolve_schema(plan, current, prev_tables.get(plan.table), exports_dir)
        plan.schema = describe(con, plan.source, plan.schema)
        leaked = pii & set(plan.schema.names)
        if leaked:
            raise RuntimeError(
                f"personal data column(s) {sorted(leaked)} would be exported in {plan.table}"
            )
        if plan.by_month:
            _fingerprint_partitions(con, plan, prev_tables.get(plan.table), exports_dir)

    tag = f"{_safe(run_id)}-{uuid.uuid4().hex[:8]}"
    staging = exports_dir.parent / f".{exports_dir.name}.staging-{tag}"
    trash = exports_dir.parent / f".{exports_dir.name}.trash-{tag}"
    tables: dict[str, dict] = {}
    try:
        staging.mkdir(parents=True)
        for plan in plans:
            try:
                files, period_range = _write_table(con, plan, staging / plan.table, exports_dir)
            except duckdb.Error as exc:  # say which table: the engine's message does not
                raise RuntimeError(f"exporting {plan.source} to exports/{plan.table} failed: "
                                   f"{type(exc).__name__}: {exc}") from exc
            prev = prev_tables.get(plan.table) or {}
            history = list(prev.get("columns_added", []))
            history += [
                {
                    "column": c,
                    "type": type_string(plan.schema.field(c).type),
                    "run_id": run_id,
                    "written_at": written_at,
                }
                for c in plan.added
            ]
            tables[plan.table] = {
                "source": plan.source,
                "description": plan.schema.metadata[b"description"].decode(),
                **coverage(con, plan.table, plan.source, period_range),
                "columns": {f.name: {k.decode(): v.decode() for k, v in f.metadata.items()} for f in plan.schema},
                "run_id": run_id,
                "written_at": written_at,
                "rows": sum(f["rows"] for f in files),
                "compression": COMPRESSION,
                "partitioning": {
                    "flavor": "hive",
                    "key": plan.key,
                    "type": "string",
                    "derived_from": plan.key_from,
                    "format": "YYYY-MM" if plan.key == "period_month" else None,
                }
                if plan.key
                else None,
                "schema": {f.name: type_string(f.type) for f in plan.schema},
                "columns_added": history,
                "columns_kept": plan.kept,
                "files": [{**f, "path": f"{plan.table}/{f['path']}"} for f in files],
            }
            if plan.by_month:
                tables[plan.table]["partitions"] = {k: v["fingerprint"] for k, v in plan.partitions.items()}
                tables[plan.table]["partitions_reused"] = len(plan.reused)
        for plan in plans:  # swap table by table: a reader sees the old table or the new one
            _swap_in(staging / plan.table, exports_dir / plan.table, trash)
        removed = []
        for name in prev_tables:
            if (
                name not in tables
                and (exports_dir / name).is_dir()
                and "/" not in name
                and name not in ("", ".", "..")
            ):
                trash.mkdir(parents=True, exist_ok=True)
                os.rename(exports_dir / name, trash / name)
                removed.append(name)
        manifest = {
            "format_version": MANIFEST_VERSION,
            "run_id": run_id,
            "written_at": written_at,
            "tables": tables,
            "removed_tables": removed,
        }
        tmp = exports_dir / f".{MANIFEST}.{tag}.tmp"
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, exports_dir / MANIFEST)
        stamp = f"{datetime.fromisoformat(written_at):%Y%m%dT%H%M%SZ}_{_safe(run_id)[:8]}"
        run_dir = keep_run(exports_dir, manifest, exports_dir / MANIFEST, stamp, keep_runs)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(trash, ignore_errors=True)

    return {
        "run_id": run_id,
        "written_at": written_at,
        "tables": {
            t: {
                "rows": e["rows"],
                "files": len(e["files"]),
                "partitioning": e["partitioning"]["key"] if e["partitioning"] else None,
                "columns_added": [h["column"] for h in e["columns_added"] if h["run_id"] == run_id],
                "columns_kept": e["columns_kept"],
                "partitions_reused": e.get("partitions_reused", 0),
            }
            for t, e in tables.items()
        },
        "files": sum(len(e["files"]) for e in tables.values()),
        "rows": sum(e["rows"] for e in tables.values()),
        "removed": removed,
        "manifest": str(exports_dir / MANIFEST),
        "run_folder": str(run_dir),
    }


# ---------------------------------------------------------------------------------------------
# Reading (for report generators and tests)


def dataset(exports_dir: Path, table: str) -> ds.Dataset:
    """The exported table as a pyarrow dataset, partition key typed as the manifest says."""
    entry = _read_manifest(Path(exports_dir))["tables"][table]
    part = entry.get("partitioning")
    partitioning = (
        ds.partitioning(pa.schema([(part["key"], pa.string())]), flavor="hive") if part else None
    )
    return ds.dataset(Path(exports_dir) / table, format="parquet", partitioning=partitioning)


def duckdb_source(exports_dir: Path, table: str) -> str:
    """A ``read_parquet(...)`` expression reading the exported table in DuckDB."""
    path = (Path(exports_dir) / table).as_posix().replace("'", "''")
    return f"read_parquet('{path}/**/*.parquet', hive_partitioning = true, union_by_name = true)"
