"""``govmetrics sql``: a read-only SQL shell on the published warehouse, for analysts.

The ``duckdb`` wheel the pipeline uses (DuckDB 2.0) ships no command-line shell, and the
``duckdb-cli`` package on PyPI is an older DuckDB that cannot open a 2.0 database file. This
shell uses the same DuckDB as the pipeline, so the versions always match.

* ``govmetrics sql`` — interactive: statements end with ``;``; ``.tables``, ``.schema <table>``,
  ``.reopen`` (see a newer publish: a connection keeps the snapshot it opened), ``.quit``.
* ``govmetrics sql -c "SELECT ..."`` or ``govmetrics sql < queries.sql`` — run and print.

Results print as tables that measure Chinese display width, at most :data:`MAX_ROWS` rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
from rich.console import Console

from pipelines.report import _table

MAX_ROWS = 200
HELP = ("语句以分号结束。 .tables 列出表和视图  .schema <表> 查看列和中文注释  "
        ".reopen 重新打开（看到最新发布）  .quit 退出")


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def _print_relation(con: duckdb.DuckDBPyConnection, sql: str, out: Console, params: list | None = None) -> None:
    cursor = con.execute(sql, params or [])
    if cursor.description is None:
        out.print("OK")
        return
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchmany(MAX_ROWS + 1)
    if len(rows) > MAX_ROWS:
        cursor.fetchall()  # drain it: DuckDB 2.0 allows one open result per connection
    table = _table("", *names)
    for row in rows[:MAX_ROWS]:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    out.print(table)
    more = f"，只显示前 {MAX_ROWS} 行" if len(rows) > MAX_ROWS else ""
    out.print(f"（{len(rows) if len(rows) <= MAX_ROWS else '多于 ' + str(MAX_ROWS)} 行{more}）")


def _meta(con: duckdb.DuckDBPyConnection, line: str, out: Console, path: Path) -> duckdb.DuckDBPyConnection | None:
    """Run a dot command; returns the (possibly reopened) connection, or None to quit."""
    cmd, _, arg = line.strip().partition(" ")
    if cmd in (".quit", ".exit", "\\q"):
        con.close()
        return None
    if cmd == ".tables":
        _print_relation(con, """SELECT schema_name AS schema, table_name AS name, comment FROM duckdb_tables()
                                UNION ALL SELECT schema_name, view_name, comment FROM duckdb_views() WHERE NOT internal
                                ORDER BY 1, 2""", out)
    elif cmd == ".schema" and arg:
        schema, _, table = arg.strip().rpartition(".")
        _print_relation(con, """SELECT schema_name AS schema, column_name AS "column", data_type AS type, comment
                                FROM duckdb_columns() WHERE table_name = ? AND (? = '' OR schema_name = ?)
                                ORDER BY schema_name, column_index""", out, [table, schema, schema])
    elif cmd == ".reopen":
        con.close()
        con = _connect(path)
        out.print(f"已重新打开 {path}")
    else:
        out.print(HELP)
    return con


def run_statements(con: duckdb.DuckDBPyConnection, text: str, out: Console) -> int:
    """Run every statement of ``text``; returns the number that failed."""
    failed = 0
    try:
        statements = con.extract_statements(text)
    except duckdb.Error as exc:
        out.print(f"[red]{exc}[/]")
        return 1
    for statement in statements:
        try:
            _print_relation(con, statement.query, out)
        except duckdb.Error as exc:
            out.print(f"[red]{type(exc).__name__}: {exc}[/]")
            failed += 1
    return failed


def shell(path: Path, command: str | None, out: Console) -> int:
    if not path.exists():
        out.print(f"[red]{path} 不存在：先运行 make run（或 govmetrics refresh）[/]")
        return 1
    con = _connect(path)
    try:
        if command is not None:
            return 1 if run_statements(con, command, out) else 0
        if not sys.stdin.isatty():
            return 1 if run_statements(con, sys.stdin.read(), out) else 0
        import readline  # noqa: F401 - line editing and history for input()

        out.print(f"govmetrics sql（DuckDB {duckdb.__version__}，只读）：{path}\n{HELP}")
        buffer = ""
        while True:
            try:
                line = input("sql> " if not buffer else "...> ")
            except (EOFError, KeyboardInterrupt):
                out.print()
                return 0
            if not buffer and line.strip().startswith((".", "\\")):
                con = _meta(con, line, out, path)
                if con is None:
                    return 0
                continue
            buffer += line + "\n"
            if buffer.rstrip().endswith(";"):
                run_statements(con, buffer, out)
                buffer = ""
    finally:
        if con is not None:
            con.close()
