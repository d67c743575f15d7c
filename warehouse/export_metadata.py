"""What an exported Parquet file says about itself: Chinese label, unit and description per column,
the table's description, and per table in the manifest its period range and "data as of".

The source is the warehouse's own ``COMMENT ON`` text (one place, also read by the data
dictionary and by analysts in DuckDB) plus the contracts' declared units. Field metadata keys
(UTF-8 bytes, as Parquet stores them): ``label_zh`` (the Chinese name), ``unit`` (``件``,
``%``, …; ``无`` for a column that is not a quantity; for ``kpi_values.value`` the per-row
``unit`` column), ``description`` (the full comment). Schema metadata: ``description``,
``source`` (``schema.table``).
"""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa

from expectations.contract import all_contracts

NO_UNIT = "无"
PER_ROW_UNIT = "见 unit 列（每行的计量单位）"
# Units the bureau writes in a column comment's first brackets: 办件量（件）, 有效评价数（条）.
_UNIT_IN_BRACKETS = re.compile(r"^[^（(]+[（(](件|条|个|家|户|项|类|元|万元|亿元|天|工作日|Mbps|Gbps|%|次)[）)]")
_UNIT_DECLARED = re.compile(r"单位[：:]\s*([^；;，,。）)]+)")
_LABEL_END = re.compile(r"[（(：:；;，,]")
# Value columns whose unit is given row by row.
PER_ROW_UNIT_COLUMNS = {"value", "numerator", "denominator", "reference"}
# The partition key, which exists in the directory names and the manifest, not in the warehouse.
PARTITION_KEYS = {"period_month": ("统计月份（分区键，YYYY-MM）", NO_UNIT), "grain": ("统计期粒度（分区键）", NO_UNIT)}
# What places a row in time, per exported table without a contract period (others: the contract's).
PERIOD_COLUMNS = {"service_volume_monthly": "month", "service_volume_monthly_named": "month",
                  "kpi_values": "period_start", "kpi_values_named": "period_start",
                  "load_batches": "received_at", "quarantine": "received_at", "check_results": "checked_at"}


def comments(con: duckdb.DuckDBPyConnection, source: str) -> tuple[str | None, dict[str, str]]:
    """(table comment, {column: comment}) of ``schema.table`` (a table or a view)."""
    schema, table = source.split(".", 1)
    table_comment = con.execute(
        """SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?
             AND database_name = current_database()
           UNION ALL SELECT comment FROM duckdb_views() WHERE schema_name = ? AND view_name = ?
             AND database_name = current_database()""", [schema, table, schema, table]).fetchall()
    columns = dict(con.execute(
        """SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?
             AND database_name = current_database() AND comment IS NOT NULL""", [schema, table]).fetchall())
    return (table_comment[0][0] if table_comment else None), columns


def label_and_unit(column: str, comment: str | None, declared_unit: str | None) -> tuple[str, str]:
    """The Chinese label and unit of a column, from its comment (and the contract's unit if declared)."""
    if column in PARTITION_KEYS:
        return PARTITION_KEYS[column]
    text = comment or column
    label = _LABEL_END.split(text, maxsplit=1)[0].strip() or text
    if declared_unit:
        return label, declared_unit
    if column in PER_ROW_UNIT_COLUMNS:
        return label, PER_ROW_UNIT
    found = _UNIT_DECLARED.search(text) or _UNIT_IN_BRACKETS.match(text)
    return label, found.group(1).strip() if found else NO_UNIT


def _contract_units(source: str) -> dict[str, str]:
    schema, table = source.split(".", 1)
    contract = all_contracts().get(table) if schema in ("core", "latest") else None
    return {c.name: c.unit for c in contract.columns if c.unit} if contract else {}


def describe(con: duckdb.DuckDBPyConnection, source: str, schema: pa.Schema) -> pa.Schema:
    """``schema`` with Chinese label, unit and description on every field, and the table's description."""
    table_comment, column_comments = comments(con, source)
    units = _contract_units(source)
    fields = []
    for f in schema:
        comment = column_comments.get(f.name) or PARTITION_KEYS.get(f.name, (None,))[0]
        label, unit = label_and_unit(f.name, comment, units.get(f.name))
        fields.append(f.with_metadata({"label_zh": label, "unit": unit, "description": comment or label}))
    return pa.schema(fields, metadata={"description": table_comment or source, "source": source})


def period_column(table: str, source: str) -> str | None:
    schema, name = source.split(".", 1)
    contract = all_contracts().get(name) if schema in ("core", "latest") else None
    return contract.period if contract else PERIOD_COLUMNS.get(table)


def coverage(con: duckdb.DuckDBPyConnection, table: str, source: str,
             written: tuple[object, object] | None) -> dict:
    """Per exported table: the period range of its rows and the time of the newest data behind it.

    The period range is the (min, max) of the period column over the rows as written, which the
    writer kept (``written``): a second query over a view such as ``quality.rejected_rows``
    (1.46 million rows joined to the 70 million cases they name) ran the writer out of memory
    at full volume. "Data as of" is when the newest batch the table depends on was received:
    for a dataset its own loaded batches, for marts and quality tables any batch.
    """
    column = period_column(table, source)
    schema, name = source.split(".", 1)
    period = None
    if column:
        lo, hi = written or (None, None)
        period = {"column": column, "min": None if lo is None else str(lo), "max": None if hi is None else str(hi)}
    dataset = name if schema in ("core", "latest") else None
    as_of = con.execute(
        """SELECT max(received_at)::VARCHAR FROM quality.load_batches
           WHERE status IN ('loaded', 'partially_loaded', 'superseded') AND (? IS NULL OR dataset = ?)""",
        [dataset, dataset]).fetchall()[0][0]
    return {"period_range": period, "data_as_of": as_of}
