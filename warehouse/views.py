"""Views for people who read the warehouse: rejected rows by department, marts with names.

Kept apart from the tables the pipeline writes (``ddl.py``, ``marts.py``): these are views
over them, recreated before each publish (:func:`create_reader_views`), so the marts SQL can
change without touching them and a view never holds data of its own.

``quality.rejected_rows``
    ``quality.quarantine`` with the department that sent each row. The department is not a
    column of the quarantine (its raw values are keyed by the headers of each file, which
    differ per department), so it is resolved from the raw values through the contract's
    header aliases: the first present of the department column's name, Chinese name and
    aliases (``dept_code``, ``实施部门编码``, ``部门编码`` ...). ``indicators`` names its
    department (``报送单位``) instead of coding it; a review has no department of its own and
    takes that of the case it reviews (``service_reviews.case_no`` -> ``service_cases``). A row
    whose department cannot be read is filed under ``未注明部门``. Rows resolved by a returned correction workbook
    (``quality.corrections``) say so.

``marts.kpi_values_named`` / ``marts.service_volume_monthly_named``
    The marts with the Chinese names of scope, department and district beside the codes.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from expectations.contract import Contract, all_contracts
from expectations.sql import literal, quote

# The column that says which department a row comes from: a code, or (indicators) a name.
DEPARTMENT_CODE_COLUMNS = ("dept_code",)
DEPARTMENT_NAME_COLUMNS = ("reporter",)
UNKNOWN_DEPARTMENT = "未注明部门"

CORRECTIONS_DDL = """
CREATE TABLE IF NOT EXISTS quality.corrections (
    batch_id VARCHAR NOT NULL, source_sheet VARCHAR, source_row BIGINT,
    corrected_by_batch VARCHAR NOT NULL, corrected_at TIMESTAMP NOT NULL, outcome VARCHAR NOT NULL)
"""
CORRECTIONS_COMMENTS = {
    None: "更正记录：部门退回清单改正后重新报送，被取代的隔离行一行",
    "batch_id": "原批次编号（被隔离行所在批次）",
    "source_sheet": "原工作表",
    "source_row": "原文件行号",
    "corrected_by_batch": "更正批次编号（改正后的退回清单载入的批次）",
    "corrected_at": "更正载入时间",
    "outcome": "结果：loaded 已载入, quarantined 仍未通过（见更正批次的隔离行）",
}


def _raw_lookup(contract: Contract, names: tuple[str, ...]) -> str | None:
    """``coalesce(raw->>'<header>', ...)`` over every header the department column may carry."""
    col = next((c for c in contract.columns if c.name in names), None)
    if col is None:
        return None
    headers = list(dict.fromkeys((col.name, col.zh, *col.aliases)))
    return "coalesce(" + ", ".join(f"nullif(trim(q.raw_values->>{literal(h)}), '')" for h in headers) + ")"


def _via_reference(contract: Contract) -> tuple[str, str, str] | None:
    """(referenced dataset, its key column, raw lookup of our column) when the department is
    only known through a referenced row: a review names its case, the case its department."""
    contracts = all_contracts()
    for col in contract.columns:
        if col.reference and any(c.name in DEPARTMENT_CODE_COLUMNS for c in contracts[col.reference[0]].columns):
            return col.reference[0], col.reference[1], _raw_lookup(contract, (col.name,))
    return None


def department_sql(quarantine: str = "quality.quarantine") -> tuple[str, str, str]:
    """(code expression, name-as-sent expression, joins) over ``<quarantine> AS q``, by dataset.

    ``quarantine`` is the table or parenthesised query of quarantined rows: the whole
    ``quality.quarantine`` by default, or some batches' rows (see ``rejected_rows_sql``)."""
    codes, names, joins = [], [], []
    dept = DEPARTMENT_CODE_COLUMNS[0]
    for i, contract in enumerate(all_contracts().values()):
        code = _raw_lookup(contract, DEPARTMENT_CODE_COLUMNS)
        name = _raw_lookup(contract, DEPARTMENT_NAME_COLUMNS)
        via = None if code or name else _via_reference(contract)
        if via:
            ref_ds, ref_col, ours = via
            alias = f"ref{i}"
            # Only the referenced rows some quarantined row names (a semi-join built on the
            # quarantine): a plain join would hash the whole referenced table (70M cases).
            wanted = (f"SELECT {ours} FROM {quarantine} AS q "
                      f"WHERE q.dataset = {literal(contract.name)}")
            joins.append(f"LEFT JOIN (SELECT {quote(ref_col)}, {quote(dept)} FROM latest.{quote(ref_ds)} "
                         f"WHERE {quote(ref_col)} IN ({wanted})) AS {alias} "
                         f"ON q.dataset = {literal(contract.name)} AND {alias}.{quote(ref_col)} = {ours}")
            code = f"{alias}.{quote(dept)}"
        if code:
            codes.append(f"WHEN {literal(contract.name)} THEN {code}")
        if name:
            names.append(f"WHEN {literal(contract.name)} THEN {name}")
    case = "CASE q.dataset {} ELSE NULL END"
    return (case.format(" ".join(codes)) if codes else "NULL",
            case.format(" ".join(names)) if names else "NULL", "\n".join(joins))


def rejected_rows_sql(batch_ids: Sequence[str] | None = None) -> str:
    """The rejected rows with their department and correction status (``quality.rejected_rows``).

    ``batch_ids`` restricts them to those batches' rows before anything is joined: a review's
    department is its case's, looked up in the cases (74 million at full volume) for every
    quarantined review the rows include. Listing the rows of one run's batches read the whole
    quarantine (1.5 million rows) that way: 9.5 s against 0.7 s for a month's 27,777.
    """
    quarantine = "quality.quarantine"
    if batch_ids is not None:
        listed = ", ".join(literal(b) for b in batch_ids) or "NULL"
        quarantine = f"(SELECT * FROM quality.quarantine WHERE batch_id IN ({listed}))"
    code, sent_name, joins = department_sql(quarantine)
    # The department is a column of an inner SELECT, not a LATERAL subquery: DuckDB decorrelates
    # a LATERAL with a join on every column it reads, raw values included, and such a plan ran
    # out of memory listing a full-volume run's 1.5 million rows.
    return f"""
        SELECT q.batch_id, q.dataset, b.source_path, b.received_at, q.source_sheet, q.source_row,
               q.department_code,
               coalesce(o.name, q.department_sent,
                        CASE WHEN q.department_code IS NOT NULL
                             THEN '未知部门' || q.department_code END,
                        {literal(UNKNOWN_DEPARTMENT)}) AS department,
               q.rule, q.rules, q.message, q.raw_values,
               c.corrected_by_batch, c.corrected_at,
               CASE WHEN c.outcome = 'loaded' THEN '已更正' WHEN c.outcome IS NOT NULL THEN '更正仍有误'
                    ELSE '待更正' END AS correction_status
        FROM (SELECT q.batch_id, q.dataset, q.source_sheet, q.source_row, q.rule, q.rules, q.message,
                     q.raw_values, {code} AS department_code, {sent_name} AS department_sent
              FROM {quarantine} AS q
              {joins}) AS q
        JOIN quality.load_batches AS b USING (batch_id)
        LEFT JOIN latest.org_units AS o ON o.code = q.department_code
        LEFT JOIN (SELECT * FROM quality.corrections
                   QUALIFY row_number() OVER (PARTITION BY batch_id, source_sheet, source_row
                                              ORDER BY corrected_at DESC, outcome = 'loaded' DESC) = 1) AS c
               ON c.batch_id = q.batch_id AND c.source_row = q.source_row
              AND c.source_sheet IS NOT DISTINCT FROM q.source_sheet
    """


REJECTED_COMMENTS = {
    None: "退回行：隔离行及报送部门（按合同的表头别名从原始值中识别），附更正状态",
    "batch_id": "批次编号", "dataset": "数据集", "source_path": "源文件路径（相对落地目录）",
    "received_at": "接收时间", "source_sheet": "源工作表（XLSX）", "source_row": "源文件行号",
    "department_code": "部门编码（报送文件中所填，未填为空）",
    "department": "报送部门名称（按部门与区划名录；编码不在名录中为“未知部门+编码”）",
    "rule": "违反的第一条规则", "rules": "违反的全部规则", "message": "说明：部门经办人可据此更正的文字",
    "raw_values": "原始值（个人信息为带密钥的哈希值）",
    "corrected_by_batch": "更正批次编号", "corrected_at": "更正载入时间",
    "correction_status": "更正状态：待更正、已更正、更正仍有误",
}

KPI_NAMED_SQL = """
    SELECT v.*, CASE WHEN v.scope = 'city' THEN '全市' ELSE o.name END AS scope_name, c.definition
    FROM marts.kpi_values AS v
    LEFT JOIN latest.org_units AS o ON o.code = v.scope
    LEFT JOIN marts.kpi_catalogue AS c USING (kpi_code)
"""
KPI_NAMED_COMMENTS = {
    None: "指标值（附名称）：marts.kpi_values 加范围名称和口径，免去与名录、目录的连接",
    "scope_name": "范围名称：全市、区县或部门名称", "definition": "口径（见 marts.kpi_catalogue）",
}
VOLUME_NAMED_SQL = """
    SELECT v.*, d.name AS dept_name, r.name AS region_name
    FROM marts.service_volume_monthly AS v
    LEFT JOIN latest.org_units AS d ON d.code = v.dept_code
    LEFT JOIN latest.org_units AS r ON r.code = v.region_code
"""
VOLUME_NAMED_COMMENTS = {
    None: "月度办件与评价量（附名称）：marts.service_volume_monthly 加部门、区县名称",
    "dept_name": "实施部门名称", "region_name": "区县名称",
}


def _comment(con: duckdb.DuckDBPyConnection, relation: str, comments: dict[str | None, str],
             kind: str = "VIEW", inherit_from: str | None = None) -> None:
    """Comment a table or view and its columns; columns not named take ``inherit_from``'s comment."""
    con.execute(f"COMMENT ON {kind} {relation} IS {literal(comments[None])}")
    inherited: dict[str, str] = {}
    if inherit_from:
        inherited = dict(con.execute(
            "SELECT column_name, comment FROM duckdb_columns() WHERE schema_name || '.' || table_name = ? "
            "AND comment IS NOT NULL AND database_name = current_database()", [inherit_from]).fetchall())
    schema, name = relation.split(".")
    for (column,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
            "AND database_name = current_database()", [schema, name]).fetchall():
        text = comments.get(column) or inherited.get(column)
        if text:
            con.execute(f"COMMENT ON COLUMN {schema}.{quote(name)}.{quote(column)} IS {literal(text)}")


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
                            "AND database_name = current_database()", [schema, table]).fetchall()[0][0])


def create_corrections_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(CORRECTIONS_DDL)
    _comment(con, "quality.corrections", CORRECTIONS_COMMENTS, kind="TABLE")


def create_reader_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create the readers' views; the marts views only once the marts exist."""
    create_corrections_table(con)
    con.execute(f"CREATE OR REPLACE VIEW quality.rejected_rows AS {rejected_rows_sql()}")
    _comment(con, "quality.rejected_rows", REJECTED_COMMENTS)
    if _exists(con, "marts", "kpi_values") and _exists(con, "marts", "kpi_catalogue"):
        con.execute(f"CREATE OR REPLACE VIEW marts.kpi_values_named AS {KPI_NAMED_SQL}")
        _comment(con, "marts.kpi_values_named", KPI_NAMED_COMMENTS, inherit_from="marts.kpi_values")
    if _exists(con, "marts", "service_volume_monthly"):
        con.execute(f"CREATE OR REPLACE VIEW marts.service_volume_monthly_named AS {VOLUME_NAMED_SQL}")
        _comment(con, "marts.service_volume_monthly_named", VOLUME_NAMED_COMMENTS,
                 inherit_from="marts.service_volume_monthly")
