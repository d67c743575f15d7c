"""The analyst-facing docs stay true: data dictionary, comments, example queries, README.

* ``docs/data-dictionary.md`` is exactly what :func:`warehouse.dictionary.render_dictionary`
  gives for a freshly built warehouse (and for the warehouse the sample run publishes).
* Every table, view and column of ``core``, ``quality`` and ``marts`` has a Chinese comment.
* Every ```` ```sql ```` block of ``docs/analyst-queries.md`` runs, read-only, against the
  published sample warehouse and returns rows (unless it says ``-- may be empty``).
* The README opens with the two commands.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import duckdb
import pytest

from warehouse.dictionary import (
    REGENERATE,
    reference_warehouse,
    render_dictionary,
    render_reference,
)

ROOT = Path(__file__).resolve().parents[1]
DICTIONARY = ROOT / "docs" / "data-dictionary.md"
QUERIES = ROOT / "docs" / "analyst-queries.md"
README = ROOT / "README.md"

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
COMMENTED_SCHEMAS = ("core", "latest", "quality", "marts")
MAY_BE_EMPTY = "-- may be empty"
EXPORTS_PREFIX = "'var/exports/"  # how the queries page names the exports folder (repo-relative)


def _stale_message(committed: str, fresh: str, what: str) -> str:
    diff = "".join(
        list(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                fresh.splitlines(keepends=True),
                "docs/data-dictionary.md (committed)",
                what,
            )
        )[:60]
    )
    return f"docs/data-dictionary.md is stale; regenerate it with `{REGENERATE}`\n{diff}"


# --- (a) the dictionary cannot go stale -------------------------------------------------------


def test_data_dictionary_is_up_to_date():
    committed = DICTIONARY.read_text(encoding="utf-8")
    fresh = render_reference()
    assert committed == fresh, _stale_message(committed, fresh, "fresh rendering")


def test_data_dictionary_is_deterministic():
    assert render_reference() == render_reference()


def test_data_dictionary_lists_every_public_table_and_kpi():
    text = DICTIONARY.read_text(encoding="utf-8")
    con = reference_warehouse()
    try:
        names = con.execute(
            """SELECT schema_name || '.' || table_name FROM duckdb_tables()
               WHERE schema_name IN ('core', 'quality', 'marts')
               UNION ALL
               SELECT schema_name || '.' || view_name FROM duckdb_views()
               WHERE schema_name = 'latest' AND NOT internal"""
        ).fetchall()
        codes = con.execute("SELECT kpi_code FROM marts.kpi_catalogue").fetchall()
    finally:
        con.close()
    assert len(names) >= 8 + 8 + 3 + 3
    missing = [n for (n,) in names if f"`{n}`" not in text]
    assert not missing, f"not in the data dictionary: {missing}; run `{REGENERATE}`"
    missing = [c for (c,) in codes if f"| `{c}` |" not in text]
    assert not missing, f"KPIs not in the data dictionary: {missing}; run `{REGENERATE}`"


def test_published_warehouse_matches_the_data_dictionary(sample_run):
    """What analysts actually open has the tables, columns and comments the dictionary shows."""
    with duckdb.connect(str(sample_run["warehouse"]), read_only=True) as con:
        published = render_dictionary(con)
    committed = DICTIONARY.read_text(encoding="utf-8")
    assert published == committed, _stale_message(
        committed, published, "published sample warehouse"
    )


# --- (b) every table and column has a Chinese comment ----------------------------------------


def _uncommented(con: duckdb.DuckDBPyConnection) -> list[str]:
    schemas = list(COMMENTED_SCHEMAS)
    rows = con.execute(
        """SELECT schema_name || '.' || table_name, comment FROM duckdb_tables()
           WHERE list_contains(?, schema_name) AND NOT temporary
           UNION ALL
           SELECT schema_name || '.' || view_name, comment FROM duckdb_views()
           WHERE (list_contains(?, schema_name) OR schema_name = 'latest')
             AND NOT internal AND NOT temporary
           UNION ALL
           SELECT schema_name || '.' || table_name || '.' || column_name, comment
           FROM duckdb_columns()
           WHERE list_contains(?, schema_name) AND NOT internal""",
        [schemas, schemas, schemas],
    ).fetchall()
    assert rows, "no tables found"
    return sorted(name for name, comment in rows if not comment or not CJK.search(comment))


def test_every_table_and_column_has_a_chinese_comment():
    con = reference_warehouse()
    try:
        bad = _uncommented(con)
    finally:
        con.close()
    assert not bad, f"no comment with a Chinese name (COMMENT ON) on: {bad}"


def test_published_warehouse_has_chinese_comments(sample_run):
    with duckdb.connect(str(sample_run["warehouse"]), read_only=True) as con:
        bad = _uncommented(con)
    assert not bad, f"published warehouse: no comment with a Chinese name on: {bad}"


# --- (c) the example queries run -------------------------------------------------------------


def _sql_blocks() -> list[tuple[str, str]]:
    """(heading, sql) of every ```sql block of the queries page, in order."""
    text = QUERIES.read_text(encoding="utf-8")
    blocks, heading = [], ""
    for m in re.finditer(r"^(#{2,3} [^\n]+)$|^```sql[ \t]*\n(.*?)^```[ \t]*$", text, re.M | re.S):
        if m.group(1):
            heading = m.group(1).lstrip("# ").strip()
        else:
            blocks.append((heading, m.group(2)))
    return blocks


SQL_BLOCKS = _sql_blocks()


def test_queries_page_has_enough_examples():
    assert 8 <= len(SQL_BLOCKS) <= 18, f"{len(SQL_BLOCKS)} sql blocks in {QUERIES.name}"
    text = QUERIES.read_text(encoding="utf-8")
    assert "govmetrics sql" in text and "connect again" in text  # the shell that exists; snapshot semantics
    assert "relation.fetchone()" in text and "HUGEINT" in text  # DuckDB 2.0 idioms
    assert "read_only=True" in text
    assert "hive_partitioning" in text


@pytest.mark.parametrize(
    "heading, sql", SQL_BLOCKS, ids=[f"q{i + 1:02d}" for i in range(len(SQL_BLOCKS))]
)
def test_example_query_runs_on_published_sample(sample_run, heading, sql):
    warehouse = Path(sample_run["warehouse"])
    assert warehouse.exists(), "the sample run published no warehouse"
    exports = Path(sample_run["exports"]).as_posix()
    runnable = sql.replace(EXPORTS_PREFIX, f"'{exports}/")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        try:
            rows = con.execute(runnable).fetchall()  # several statements: the last one's rows
        except duckdb.Error as exc:
            pytest.fail(f"query '{heading}' in {QUERIES.name} fails: {exc}\n{sql}")
    if MAY_BE_EMPTY not in sql:
        assert rows, (
            f"query '{heading}' in {QUERIES.name} returns no rows on the sample; "
            f"fix it or mark it '{MAY_BE_EMPTY}'\n{sql}"
        )


# --- (d) the README starts with the two commands ---------------------------------------------


def test_readme_first_block_has_make_run_and_make_test():
    text = README.read_text(encoding="utf-8")
    m = re.search(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S)
    assert m, "README.md has no fenced block"
    block = m.group(1)
    assert re.search(r"^\s*make run\b", block, re.M), (
        f"first README block lacks `make run`:\n{block}"
    )
    assert re.search(r"^\s*make test\b", block, re.M), (
        f"first README block lacks `make test`:\n{block}"
    )
