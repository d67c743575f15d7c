"""The warehouse writer: batch bookkeeping, quarantine and history-keeping merges.

The pipeline writes a private working file next to the published warehouse and publishes a
checkpointed copy atomically (``publish``). Analysts open the published file, so they never
meet the writer's lock, and a run that dies half-way publishes nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb

from expectations.contract import Contract
from expectations.sql import quote
from warehouse.ddl import create_all
from warehouse.stages import stage


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


def publish(published: Path) -> Path:
    """Atomically replace the analysts' file with a checkpointed copy of the working file."""
    work = writer_path(published)
    with duckdb.connect(str(work)) as con:
        con.execute("CHECKPOINT")
    tmp = published.with_name(f".{published.name}.{os.getpid()}.tmp")
    shutil.copyfile(work, tmp)
    stage("publishing")
    os.replace(tmp, published)  # readers holding the old file keep reading it until they reopen
    return published


def now() -> datetime:
    return datetime.now().replace(microsecond=0)


def merge_into_core(con: duckdb.DuckDBPyConnection, contract: Contract, incoming: str,
                    loaded_at: datetime) -> dict[str, int]:
    """Merge the rows of table ``incoming`` into ``core.<dataset>`` by key, keeping history.

    A row equal to the current version is left alone; a changed row closes the current
    version (``valid_to``) and opens a new one; a new key opens its first version.
    ``incoming`` has unique keys and exactly the core table's columns.
    """
    core = f"core.{quote(contract.name)}"
    keys = " AND ".join(f"c.{quote(k)} = i.{quote(k)}" for k in contract.keys)
    tracked = [c.name for c in contract.columns] + [f for f in contract.flag_columns]
    changed = " OR ".join(f"c.{quote(n)} IS DISTINCT FROM i.{quote(n)}" for n in tracked)
    counts = {}
    counts["changed"] = con.execute(
        f"UPDATE {core} AS c SET valid_to = ? FROM {incoming} AS i "
        f"WHERE c.valid_to IS NULL AND {keys} AND ({changed})", [loaded_at]).fetchall()[0][0]
    counts["inserted"] = con.execute(
        f"INSERT INTO {core} BY NAME SELECT i.* FROM {incoming} AS i "
        f"WHERE NOT EXISTS (SELECT 1 FROM {core} AS c WHERE c.valid_to IS NULL AND {keys})"
    ).fetchall()[0][0]
    counts["new"] = counts["inserted"] - counts["changed"]
    return counts


def mark_superseded(con: duckdb.DuckDBPyConnection, dataset: str, by_batch: str) -> int:
    """A batch none of whose rows is current any more has been superseded by a corrected file."""
    core = f"core.{quote(dataset)}"
    return con.execute(
        f"""UPDATE quality.load_batches AS b
            SET status = 'superseded',
                reason = concat_ws('；', nullif(b.reason, ''), '已被更正批次 ' || ? || ' 取代，历史版本仍可查询')
            WHERE b.dataset = ? AND b.status IN ('loaded', 'partially_loaded') AND b.rows_loaded > 0
              AND b.batch_id <> ?
              AND NOT EXISTS (SELECT 1 FROM {core} c WHERE c.batch_id = b.batch_id AND c.valid_to IS NULL)""",
        [by_batch, dataset, by_batch]).fetchall()[0][0]
