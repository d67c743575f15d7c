"""Small helpers that turn results into Dagster metadata an engineer reads in the UI."""

from __future__ import annotations

import polars as pl


def md_table(frame: pl.DataFrame, limit: int = 20) -> str:
    """A Markdown table of the first ``limit`` rows (no extra dependency, pipes escaped)."""
    if frame.height == 0:
        return "(empty)"
    head = frame.head(limit)

    def cell(value) -> str:
        return "" if value is None else str(value).replace("|", "/").replace("\n", " ")

    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * head.width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.iter_rows()]
    if frame.height > limit:
        lines.append(f"\n… {frame.height - limit} more rows")
    return "\n".join(lines)


def query_frame(con, sql: str, params: list | None = None) -> pl.DataFrame:
    """Run a query and return a polars frame (DuckDB's relation API, via Arrow)."""
    return con.sql(sql, params=params).pl()
