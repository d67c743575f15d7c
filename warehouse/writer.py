"""The warehouse writer: batch bookkeeping, quarantine and history-keeping merges.

The pipeline writes a private working file next to the published warehouse and publishes it
atomically (``warehouse.snapshot``). Analysts open the published file, so they never meet the
writer's lock, and a run that dies half-way publishes nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb

from expectations.contract import Contract
from expectations.sql import quote
from warehouse.ddl import create_all


def writer_path(published: Path) -> Path:
    return published.with_name(published.stem + ".writer" + (published.suffix or ".duckdb"))


@contextmanager
def open_writer(published: Path, memory_limit: str = "1GB") -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the working copy (creating it, or resuming from the published file) with all DDL applied."""
    published.parent.mkdir(parents=True, exist_ok=True)
    work = writer_path(published)
    if not work.exists() and published.exists():
        shutil.copyfile(published, work)
    con = duckdb.connect(str(work), config=writer_config(work, memory_limit))
    try:
        create_all(con)
        yield con
    finally:
        con.close()


def writer_config(work: Path, memory_limit: str) -> dict[str, str]:
    """Settings of the writer connection.

    DuckDB's default memory limit is 80 % of RAM, and a big batch (staged rows, the merge)
    grew the writer by about 1.5 GiB per million rows. With a limit it spills to its temp
    directory instead, so a file of any size loads in bounded memory.
    """
    return {"memory_limit": memory_limit, "temp_directory": str(work.with_name(work.name + ".tmp"))}


def now() -> datetime:
    return datetime.now().replace(microsecond=0)


MATCHED = "govmetrics_matched"


def match_current(con: duckdb.DuckDBPyConnection, contract: Contract, staged: str) -> None:
    """Fill TEMP table ``MATCHED`` with (``__seq``, keys, ``__same``) for every row of the query
    ``staged`` whose key has a current version, ``__same`` when it equals that version in every
    contract column (a re-delivered row: nothing to append).

    A separate step, so that the append never reads the table it writes (an ``INSERT`` whose
    ``SELECT`` reads its own target is materialised whole before the first row is written,
    which made a 10-million-row load spill 12 GB), and the closing ``UPDATE`` joins a small
    table, not the batch. A first load joins against an empty table.
    """
    keys = ", ".join(f"s.{quote(k)}" for k in contract.keys)
    on = " AND ".join(f"c.{quote(k)} = s.{quote(k)}" for k in contract.keys)
    same = " AND ".join(f"c.{quote(c.name)} IS NOT DISTINCT FROM s.{quote(c.name)}" for c in contract.columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {MATCHED} AS SELECT s.__seq, {keys}, {same} AS __same "
                f"FROM ({staged}) AS s JOIN core.{quote(contract.name)} AS c ON c.valid_to IS NULL AND {on}")


def append_new_versions(con: duckdb.DuckDBPyConnection, contract: Contract, rows_sql: str, params: list) -> int:
    """Append the rows of the query ``rows_sql`` (new or changed keys, exactly the core table's
    columns, one ``batch_id``) to ``core.<dataset>``.

    A plain append, outside any explicit transaction: DuckDB writes a big append to the database
    file as it goes instead of holding it in memory until commit. Until
    ``close_replaced_versions`` runs, a changed key has two current versions; ``discard_batch``
    and ``recover_interrupted`` remove the appended rows of a load that did not finish.
    """
    return con.execute(f"INSERT INTO core.{quote(contract.name)} BY NAME {rows_sql}", params).fetchall()[0][0]


def close_replaced_versions(con: duckdb.DuckDBPyConnection, contract: Contract, batch_id: str,
                            loaded_at: datetime) -> int:
    """Close (``valid_to``) the current versions that batch ``batch_id`` appended a changed version of
    (the keys ``match_current`` found not ``__same``).

    Touches only the changed keys, so it is short enough for the transaction that records the
    batch's outcome.
    """
    on = " AND ".join(f"m.{quote(k)} = c.{quote(k)}" for k in contract.keys)
    return con.execute(
        f"UPDATE core.{quote(contract.name)} AS c SET valid_to = ? "
        f"WHERE c.valid_to IS NULL AND c.batch_id <> ? "
        f"AND EXISTS (SELECT 1 FROM {MATCHED} AS m WHERE NOT m.__same AND {on})", [loaded_at, batch_id]
    ).fetchall()[0][0]


def mark_superseded(con: duckdb.DuckDBPyConnection, dataset: str, by_batch: str) -> int:
    """A batch none of whose rows is current any more has been superseded by a corrected file.

    The batches that still have current rows are found with an aggregate (a handful of groups),
    not a correlated ``NOT EXISTS``: DuckDB planned that as a join building on the core table,
    which asked for 1 GiB at once over 70 million cases and failed under the writer's limit.
    """
    core = f"core.{quote(dataset)}"
    return con.execute(
        f"""UPDATE quality.load_batches AS b
            SET status = 'superseded',
                reason = concat_ws('；', nullif(b.reason, ''), '已被更正批次 ' || ? || ' 取代，历史版本仍可查询')
            WHERE b.dataset = ? AND b.status IN ('loaded', 'partially_loaded') AND b.rows_loaded > 0
              AND b.batch_id <> ?
              AND b.batch_id NOT IN (SELECT DISTINCT batch_id FROM {core} WHERE valid_to IS NULL)""",
        [by_batch, dataset, by_batch]).fetchall()[0][0]


def close_absent(con: duckdb.DuckDBPyConnection, contract: Contract, delivered: str, incoming: str,
                 loaded_at: datetime) -> int:
    """A register delivery is the full snapshot of its as-of date: close what it no longer lists.

    For each as-of date the batch loaded rows for, a current row of that date whose key is not
    in the delivered file (``delivered``: every row read, loaded or quarantined) is closed, so a
    corrected February register that drops a node drops it from February, and from nothing
    else. Rows the file still lists, even quarantined ones, keep their last good version.
    """
    as_of = contract.as_of_column
    if as_of is None:
        return 0
    core = f"core.{quote(contract.name)}"
    keys = " AND ".join(f"c.{quote(k)} = d.{quote(k)}" for k in contract.keys)
    return con.execute(
        f"UPDATE {core} AS c SET valid_to = ? "
        f"WHERE c.valid_to IS NULL AND c.{quote(as_of)} IN (SELECT {quote(as_of)} FROM {incoming}) "
        f"AND NOT EXISTS (SELECT 1 FROM {delivered} AS d WHERE {keys})", [loaded_at]).fetchall()[0][0]
