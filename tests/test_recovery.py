"""kill -9 at every stage of a real refresh, then a normal refresh: clean and exactly once.

Each case starts ``govmetrics refresh`` in a subprocess that stops at a named stage
(``warehouse.stages``), kills it with SIGKILL there, checks that the kill really left
something behind, and then runs the next refresh and checks the recovery.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import dagster as dg
import pytest

from pipelines.lock import current_holder
from tests import departments as dep
from tests.cli_runs import cli, instance_at, no_traceback, setup, start
from warehouse.stages import STAGES


def kill_at(site, stage: str, tmp_path: Path) -> tuple[str, int]:
    """Run a refresh until it reaches ``stage``, SIGKILL it; (its run id, its pid)."""
    marker = tmp_path / f"reached-{stage}"
    log = tmp_path / f"killed-{stage}.log"
    proc = start(site.env(GOVMETRICS_PAUSE_AT=stage, GOVMETRICS_PAUSE_MARKER=str(marker)), "refresh", log=log)
    deadline = time.monotonic() + 900
    while not marker.exists():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{stage} never reached"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    holder = current_holder(site.warehouse)
    assert holder is not None and holder.pid == proc.pid  # the dead writer is named in the lock file
    return holder.run_id, proc.pid


def leftovers(site, pid: int) -> list[Path]:
    published = site.warehouse.parent.glob(f".{site.warehouse.name}.{pid}.tmp")
    transcoded = Path(tempfile.gettempdir()).glob(f"govmetrics-{pid}-*.utf8.csv")
    return [*published, *transcoded]


@pytest.mark.parametrize("stage", STAGES)
def test_kill_9_at_any_stage_then_the_next_run_recovers(tmp_path, stage):
    site = setup(tmp_path)
    dep.registers(site.landing)
    gbk = dep.cases_gbk(site.landing)  # GBK: read through a transcoded temp file
    js = dep.cases_json(site.landing)

    dead_run, pid = kill_at(site, stage, tmp_path)
    # The kill really left something to clean up at this stage.
    if stage == "checking":
        assert site.query("SELECT count(*) FROM quality.check_results WHERE run_id = ?", [dead_run])[0][0] > 0
    if stage == "publishing":
        assert leftovers(site, pid)
    if stage == "reading":
        assert any(p.name.endswith(".utf8.csv") for p in leftovers(site, pid))

    proc = cli(site.env(), "refresh")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert no_traceback(proc.stdout + proc.stderr)
    assert f"已清理被终止的运行 {dead_run}" in proc.stderr

    with instance_at(site.home) as instance:
        assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.FAILURE
    assert site.query("SELECT count(*) FROM quality.check_results WHERE run_id = ?", [dead_run]) == [(0,)]
    assert leftovers(site, pid) == []
    assert current_holder(site.warehouse) is None
    # Exactly once: per file one batch that loaded; a load the kill interrupted is kept as a
    # failed 'pipeline' batch (its rows removed), and each current key is there once.
    batches = site.query("SELECT source_path, count(*) FILTER (status <> 'failed'), "
                         "count(*) FILTER (status = 'failed' AND failure_kind IS DISTINCT FROM 'pipeline') "
                         "FROM quality.load_batches GROUP BY 1")
    assert all(loaded == 1 and bad == 0 for _, loaded, bad in batches), batches
    landed = {p.relative_to(site.landing).as_posix() for p in site.landing.rglob("*") if p.is_file()}
    assert {b[0] for b in batches} == landed
    assert site.query("SELECT count(*), count(DISTINCT case_no) FROM latest.service_cases") == [
        (gbk["loaded"] + js["loaded"],) * 2]
    assert site.query("SELECT count(*) FROM quality.quarantine") == [(gbk["quarantined"],)]
    # The published file is the recovered warehouse, readable by analysts.
    import duckdb

    with duckdb.connect(str(site.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM latest.service_cases").fetchall() == [(gbk["loaded"] + js["loaded"],)]


def test_recovery_drops_the_scope_tables_a_dead_run_left(tmp_path):
    """The copies of rows a killed run's suites were reading, with and without flagged rows."""
    import duckdb

    from expectations import scope
    from warehouse.recovery import recover
    from warehouse.writer import writer_path

    published = tmp_path / "gm.duckdb"
    with duckdb.connect(str(writer_path(published))) as con:
        con.execute("CREATE SCHEMA quality")
        for flagged in (False, True):
            con.execute(f"CREATE TABLE {scope.scope_table('service_reviews', flagged)} AS SELECT 1 AS x")
        con.execute("CREATE TABLE quality.load_batches AS SELECT 1 AS x")
    recover(published, "dead-run", None)
    with duckdb.connect(str(writer_path(published)), read_only=True) as con:
        assert [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()] \
            == ["load_batches"]
