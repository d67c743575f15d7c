"""Which rows each expectation of a suite has to read this run: the whole table, or only the
rows this run's batches touched.

A monthly delivery adds 2,000,000 cases to 70,854,000; re-checking every row of both record
tables took 79.5 s of such a run, against ~8 s to load the month. An expectation that held on
the table's rows before the run still holds on them unless something they depend on changed,
so it needs to read again only the rows that could break it:

* the **scope** of a run is every current row (``latest.<dataset>``) whose key is the key of a
  row this run's batches loaded: the new rows, and any older current row they would duplicate.
  A row-local expectation (not null, in set, between, pattern, a contract rule) can only fail
  on a new row, and ``keys_unique`` only on a key a new row carries: both see the whole
  failure in the scope. A run that loaded nothing for the dataset has an empty scope. Rows
  flagged as naming a record not loaded yet (``on_missing_reference: flag``: a review of a
  case not yet exported) are in the scope of that reference check too (:func:`reads_flagged`):
  they are the rows it fails on, so it keeps reading only its scope while it fails for them
  (the loader clears a flag when the record arrives, ``refresh_reference_flags``). The other
  expectations were checked on those rows when they were loaded and do not read them again;
* an expectation reads the **whole table** instead when its newest recorded outcome does not
  vouch for the rows already there: none is recorded, it failed (the table still holds the
  rows that broke it: it is re-checked whole until they are gone), or it was recorded for
  another definition (``expectation_digest``: a contract changed its values, bounds, pattern
  or severity). A reference check (``<col>_references_<dataset>``) also reads the whole table
  when the referenced values changed under the rows already there: the referenced dataset
  has lost a value since (a register that drops a code can leave old rows dangling), or it
  had no current row then (the check is vacuous while the referenced dataset is not loaded:
  its first delivery must be checked against every row). New referenced values cannot break
  an old row. ``row_count_positive`` always counts the whole table (one count), and so does
  every expectation that reads other datasets (``needs``).

``quality.check_results`` records each outcome with its scope and digest, and Dagster's check
metadata says which rows were read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import duckdb

from expectations.contract import Column, Contract
from expectations.sql import literal, quote
from expectations.suites import ExpectationSpec, named_in, reference_check_name
from warehouse.ddl import NEWEST_CHECK_FIRST

WHOLE = "whole"  # every current row of the dataset
NEW_ROWS = "new_rows"  # the rows this run's batches touched (see the module docstring)
ALWAYS_WHOLE = frozenset({"row_count_positive"})


@dataclass(frozen=True)
class Plan:
    """The suite split by the rows each part reads; ``reasons`` says why a spec reads them all."""

    whole: list[ExpectationSpec]
    new_rows: list[ExpectationSpec]
    reasons: dict[str, str]


def digest(spec: ExpectationSpec) -> str:
    """What an outcome was recorded for: the expectation's type, arguments and severity."""
    text = json.dumps([spec.gx_type, spec.kwargs, spec.severity], sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def plan(con: duckdb.DuckDBPyConnection, contract: Contract, specs: list[ExpectationSpec]) -> Plan:
    """Split ``specs`` into those that must read the whole table and those that may read the
    scope only, from the dataset's newest recorded outcomes (see the module docstring)."""
    previous = {name: (recorded, success, checked_at) for name, recorded, success, checked_at in con.execute(
        f"""SELECT expectation, expectation_digest, success, checked_at FROM quality.check_results
            WHERE dataset = ?
            QUALIFY row_number() OVER (PARTITION BY expectation ORDER BY {NEWEST_CHECK_FIRST}) = 1""",
        [contract.name]).fetchall()}
    whole: list[ExpectationSpec] = []
    new_rows: list[ExpectationSpec] = []
    reasons: dict[str, str] = {}
    for spec in specs:
        reason = _why_whole(con, contract, spec, previous.get(spec.name))
        if reason:
            whole.append(spec)
            reasons[spec.name] = reason
        else:
            new_rows.append(spec)
    return Plan(whole, new_rows, reasons)


def _why_whole(con: duckdb.DuckDBPyConnection, contract: Contract, spec: ExpectationSpec, previous) -> str | None:
    if spec.name in ALWAYS_WHOLE or spec.needs:
        return "a whole-table figure"
    if previous is None:
        return "never checked"
    recorded, success, checked_at = previous
    if recorded != digest(spec):
        return "its definition changed"
    column = _checked_reference(contract, spec)
    if not success and not (column and column.flag_column):  # flagged rows are in its scope
        return "it failed last time"
    return _reference_moved(con, *column.reference, checked_at) if column else None


def _reference_moved(con: duckdb.DuckDBPyConnection, dataset: str, column: str, since) -> str | None:
    """Why the values of ``dataset.column`` no longer vouch for rows checked at ``since``, if they do not.

    Both questions are asked so that the referenced table (74 million cases) is scanned, never
    hashed: the first stops at one current row; the second looks up only the values of rows
    closed since, as the build side of an inner join (``NOT IN (SELECT … FROM latest)`` built a
    hash of every current value: 8 s per run at full volume).
    """
    core, latest, c = f"core.{quote(dataset)}", f"latest.{quote(dataset)}", quote(column)
    current_then = con.execute(
        f"SELECT 1 FROM {core} WHERE valid_from <= ? AND (valid_to IS NULL OR valid_to >= ?) LIMIT 1",
        [since, since]).fetchall()
    if not current_then:
        return f"{dataset} had no current rows at the last check"
    (lost,), = con.execute(
        f"""WITH closed AS (SELECT DISTINCT {c} AS v FROM {core} WHERE valid_to >= ? AND {c} IS NOT NULL)
            SELECT (SELECT count(*) FROM closed)
                   - (SELECT count(DISTINCT closed.v) FROM closed JOIN {latest} AS r ON r.{c} = closed.v)""",
        [since]).fetchall()
    return f"{dataset} no longer has {lost:,} value(s) of {column} it had" if lost else None


SCHEMA = "quality"
PREFIX = "gx_scope_"


def _checked_reference(contract: Contract, spec: ExpectationSpec) -> Column | None:
    """The column whose references ``spec`` checks, if it is a reference check."""
    return next((c for c in contract.columns if c.reference and spec.name == reference_check_name(c)), None)


def reads_flagged(contract: Contract, spec: ExpectationSpec) -> bool:
    """Whether ``spec`` is the reference check of a column whose missing references are flagged:
    the one expectation whose scope holds the flagged rows."""
    column = _checked_reference(contract, spec)
    return bool(column and column.flag_column)


def _table_name(dataset: str, flagged: bool) -> str:
    return PREFIX + dataset + ("_flagged" if flagged else "")


def scope_table(dataset: str, flagged: bool = False) -> str:
    """Where a run's scope of ``dataset`` (``flagged``: with the flagged rows) is written while its
    suite reads it (unquoted: the dataset names are identifiers, and ``gx_runner.run_suite`` takes
    ``schema.table``)."""
    return f"{SCHEMA}.{_table_name(dataset, flagged)}"


def create_scope(con: duckdb.DuckDBPyConnection, contract: Contract, batch_ids: list[str],
                 flagged: bool = False, specs: list[ExpectationSpec] | None = None) -> int:
    """Write the run's scope of ``contract`` (current rows sharing a key with a row of
    ``batch_ids``, and with ``flagged`` the flagged rows) to :func:`scope_table`, for GX to read;
    returns its row count.

    Only the keys and the columns ``specs`` (the expectations that will read the scope) name
    are written (all of them without ``specs``): the personal-data hashes (64 hex digits each,
    compressed) were more than half of writing a month's 2,000,000 cases (2.1 s against 0.9 s
    without them), and the reference check of a flagged column reads two of the twelve columns
    of the 1.9 million flagged reviews it scopes every month.

    Built in parts so that only the rows of the scope are read whole: a semi join that keeps
    every column reads all of them for the whole table (13 s against 1 s for a 2,000,000-row
    month in 72 million cases). The older rows sharing a key with a new one are found from the
    key columns alone, among the rows whose keys lie between the new keys' least and greatest
    (DuckDB skips the row groups outside from their min/max: a month's new case numbers follow
    the older ones, 4.9 s → 0.07 s in 74 million cases); there are none unless the loader's
    invariant broke.
    """
    latest = f"latest.{quote(contract.name)}"
    keys = ", ".join(quote(k) for k in contract.keys)
    new = f"batch_id IN ({', '.join(literal(b) for b in batch_ids)})" if batch_ids else "false"
    flags = " OR ".join(quote(f) for f in contract.flag_columns) if flagged else ""
    if specs is None:
        columns = "*"
    else:  # the keys (where a sampled row is) and what the expectations name
        named = named_in(contract, json.dumps([s.kwargs for s in specs]))
        columns = ", ".join(quote(c) for c in dict.fromkeys([*contract.keys, *named]))
    parts = [f"SELECT {columns} FROM {latest} WHERE {new}"]
    if flags:
        parts.append(f"SELECT {columns} FROM {latest} WHERE ({flags}) AND NOT ({new})")
    bounds = con.execute(f"SELECT {', '.join(f'min({quote(k)}), max({quote(k)})' for k in contract.keys)} "
                         f"FROM {latest} WHERE {new}").fetchone()
    in_range = " AND ".join(f"{quote(k)} BETWEEN ? AND ?" for k in contract.keys)
    (shared,), = con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gx_scope_keys AS SELECT {keys} FROM {latest}
            SEMI JOIN (SELECT {keys} FROM {latest} WHERE {new}) USING ({keys})
            WHERE NOT ({new}) AND {in_range}""", list(bounds)).fetchall()
    if shared:
        parts.append(f"SELECT {columns} FROM {latest} SEMI JOIN gx_scope_keys USING ({keys}) WHERE NOT ({new})"
                     + (f" AND NOT coalesce({flags}, false)" if flags else ""))
    table = _quoted(contract.name, flagged)
    con.execute(f"CREATE OR REPLACE TABLE {table} AS " + "\nUNION ALL\n".join(parts))
    con.execute("DROP TABLE gx_scope_keys")
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def drop_scope(con: duckdb.DuckDBPyConnection, dataset: str) -> None:
    for flagged in (False, True):
        con.execute(f"DROP TABLE IF EXISTS {_quoted(dataset, flagged)}")


def _quoted(dataset: str, flagged: bool = False) -> str:
    return f"{quote(SCHEMA)}.{quote(_table_name(dataset, flagged))}"
