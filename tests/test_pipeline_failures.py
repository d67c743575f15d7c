"""A failure that is not the department's fails the run loudly, keeps what it read, and is retried.

Real Dagster runs into a real DuckDB file: the key left empty, DuckDB's memory limit set
absurdly low, and a load killed half-way (its ``loading`` batch left behind) are each followed
by a run with the cause fixed, which loads every file exactly once.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.core import core_assets, landing_specs
from assets.ingest.batch import describe_error
from pipelines.resources import ExportsFolder, LandingFolder, PersonalDataKey, Warehouse
from tests import departments as dep

SELECTED = {"core/org_units", "core/service_items", "core/service_cases"}


def run(root: Path, key: str = "test-key", memory_limit: str = "1GB") -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*landing_specs, *(a for a in core_assets if a.key.to_user_string() in SELECTED)],
        resources={
            "landing": LandingFolder(path=str(root / "landing")),
            "warehouse": Warehouse(path=str(root / "wh" / "gm.duckdb"), memory_limit=memory_limit),
            "exports": ExportsFolder(path=str(root / "exports")),
            "personal_data_key": PersonalDataKey(key=key),
        },
        raise_on_error=False,
    )


def batches(root: Path) -> list[tuple]:
    with duckdb.connect(str(root / "wh" / "gm.writer.duckdb"), read_only=True) as con:
        return con.execute("""SELECT dataset, source_path, status, failure_kind, rows_read, rows_loaded,
                                     rows_quarantined, reason
                              FROM quality.load_batches ORDER BY received_at""").fetchall()


def case_rows(root: Path) -> int:
    with duckdb.connect(str(root / "wh" / "gm.writer.duckdb"), read_only=True) as con:
        return con.execute("SELECT count(*) FROM core.service_cases").fetchall()[0][0]


def staged_parts(root: Path) -> Path:
    """Where a load stages its good rows (``assets.ingest.batch.StagedParts``): gone after every load."""
    return root / "wh" / "gm.writer.duckdb.staging"


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """Each failed step's error message, with the messages of the errors that caused it."""
    messages = []
    for event in result.get_step_failure_events():
        error, text = event.event_specific_data.error, []
        while error is not None:
            text.append(error.message)
            error = error.cause or error.context
        messages.append("\n".join(text))
    return messages


@pytest.fixture
def landing(tmp_path):
    dep.registers(tmp_path / "landing")
    facts = dep.cases_gbk(tmp_path / "landing")
    return tmp_path, facts


def test_an_empty_key_fails_the_run_and_the_fixed_run_loads_every_case_file(landing):
    root, facts = landing
    first = run(root, key="")
    assert not first.success
    (message,) = [m for m in failure_messages(first) if "service_cases" in m]
    assert "service_cases/办件明细_202303.csv" in message and "系统错误" in message
    failed = [b for b in batches(root) if b[0] == "service_cases"]
    assert [(b[2], b[3]) for b in failed] == [("failed", "pipeline")]
    assert case_rows(root) == 0
    assert not staged_parts(root).exists()  # the failed load's staged rows are removed too
    # registers carry no personal data: they loaded in the same run
    assert {b[0] for b in batches(root) if b[2] == "loaded"} == {"org_units", "service_items"}

    second = run(root)
    assert second.success
    cases = [b for b in batches(root) if b[0] == "service_cases"]
    assert [b[2] for b in cases] == ["failed", "partially_loaded"]
    assert cases[1][4:7] == (8, 3, 5)
    assert case_rows(root) == 3  # loaded exactly once

    third = run(root)  # nothing new, nothing failed: nothing retried
    assert third.success
    assert len(batches(root)) == len(cases) + 2


def test_out_of_memory_fails_the_run_and_the_next_run_loads_everything_once(landing):
    root, _ = landing
    first = run(root, memory_limit="1MB")
    assert not first.success
    assert any("Out of Memory" in m for m in failure_messages(first))
    second = run(root)
    assert second.success
    cases = [b for b in batches(root) if b[0] == "service_cases"]
    assert cases[-1][2] == "partially_loaded"
    assert case_rows(root) == 3


def test_a_load_killed_half_way_is_rolled_back_and_loaded_again(landing):
    root, _ = landing
    assert run(root).success
    with duckdb.connect(str(root / "wh" / "gm.writer.duckdb")) as con:
        # what a killed run leaves: a batch still 'loading' and the rows it had appended
        con.execute("""UPDATE quality.load_batches SET status = 'loading', failure_kind = NULL
                       WHERE dataset = 'service_cases'""")
        con.execute("""INSERT INTO core.service_cases BY NAME
                       SELECT * REPLACE ('half-way' AS batch_id) FROM core.service_cases""")
        con.execute("UPDATE core.service_cases SET batch_id = 'half-way' WHERE batch_id <> 'half-way'")
        con.execute("UPDATE quality.load_batches SET batch_id = 'half-way' WHERE dataset = 'service_cases'")
        con.execute("UPDATE quality.quarantine SET batch_id = 'half-way' WHERE dataset = 'service_cases'")
    left = staged_parts(root) / "half-way" / "part-000000.parquet"  # and the rows it had staged
    left.parent.mkdir(parents=True)
    left.write_bytes(b"PAR1")
    assert run(root).success
    assert not staged_parts(root).exists()
    cases = [b for b in batches(root) if b[0] == "service_cases"]
    assert [(b[2], b[3]) for b in cases] == [("failed", "pipeline"), ("partially_loaded", None)]
    assert "中断" in cases[0][7]
    assert case_rows(root) == 3
    with duckdb.connect(str(root / "wh" / "gm.writer.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM quality.quarantine WHERE batch_id = 'half-way'").fetchall() == [(0,)]


def test_error_descriptions_quote_no_numbers_or_paths():
    exc = ValueError("Could not convert '210102199001011234' at /srv/landing/service_cases/x.csv line 3\nmore")
    text = describe_error(exc)
    assert "210102199001011234" not in text and "/srv/landing" not in text and "more" not in text
    assert text.startswith("ValueError: ")
