"""The warehouse DDL: applied once, left alone while complete, grown when a contract grows."""

from __future__ import annotations

import duckdb

from warehouse.ddl import _complete, create_all


def columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    return [r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = ? "
                                      "AND table_name = ? ORDER BY column_index", [schema, table]).fetchall()]


def test_a_complete_warehouse_is_left_alone_and_an_older_one_grows(tmp_path):
    with duckdb.connect(str(tmp_path / "gm.duckdb")) as con:
        assert not _complete(con)
        create_all(con)
        assert _complete(con)
        before = columns(con, "quality", "load_batches")
        # a warehouse made before a column and a comment existed (an older contract)
        con.execute("ALTER TABLE quality.load_batches DROP COLUMN source_mtime_ns")
        con.execute("COMMENT ON COLUMN core.service_cases.case_no IS NULL")
        assert not _complete(con)
        create_all(con)
        assert _complete(con)
        assert columns(con, "quality", "load_batches") == before
        comment = con.execute("SELECT comment FROM duckdb_columns() WHERE schema_name = 'core' "
                              "AND table_name = 'service_cases' AND column_name = 'case_no'").fetchall()
        assert comment == [("办件编号",)]
