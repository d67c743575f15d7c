"""The sensor, the schedule, and the promise that analysts never meet the writer's lock."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from pipelines.automation import landing_sensor, monthly_refresh
from pipelines.resources import LandingFolder, Warehouse, apply_defaults
from tests import departments as dep


def evaluate(landing: Path, cursor: str | None):
    context = dg.build_sensor_context(cursor=cursor, resources={"landing": LandingFolder(path=str(landing))})
    return landing_sensor(context), context.cursor


def test_sensor_requests_a_run_only_when_files_arrive_or_change(tmp_path):
    landing = tmp_path / "landing"
    result, cursor = evaluate(landing, None)
    assert isinstance(result, dg.SkipReason)

    dep.registers(landing)
    result, cursor = evaluate(landing, cursor)
    assert isinstance(result, dg.RunRequest) and result.run_key

    again, same_cursor = evaluate(landing, cursor)
    assert isinstance(again, dg.SkipReason) and same_cursor == cursor

    dep.cases_json(landing)
    result, _ = evaluate(landing, cursor)
    assert isinstance(result, dg.RunRequest)


def test_monthly_schedule_runs_the_refresh_job_in_beijing_time():
    assert monthly_refresh.job_name == "refresh"
    assert monthly_refresh.execution_timezone == "Asia/Shanghai"
    assert monthly_refresh.cron_schedule == "0 6 5 * *"


def test_defaults_fill_only_unset_variables():
    env = {"GOVMETRICS_LANDING": "/srv/landing"}
    apply_defaults(env)
    assert env["GOVMETRICS_LANDING"] == "/srv/landing"
    assert env["GOVMETRICS_WAREHOUSE"].endswith(".duckdb") and env["GOVMETRICS_PII_KEY"]


def test_readers_are_never_blocked_by_the_writer(tmp_path):
    warehouse = Warehouse(path=str(tmp_path / "wh" / "gm.duckdb"))
    with warehouse.writer() as con:
        con.execute("CREATE TABLE marts.probe AS SELECT 1 AS v")
    warehouse.publish()

    analyst = duckdb.connect(str(warehouse.published), read_only=True)  # an analyst's open session
    try:
        with warehouse.writer() as con:  # the pipeline writes meanwhile ...
            con.execute("UPDATE marts.probe SET v = 2")
        warehouse.publish()  # ... and publishes over the file the analyst has open
        assert analyst.execute("SELECT v FROM marts.probe").fetchall() == [(1,)]  # consistent old view
    finally:
        analyst.close()
    with duckdb.connect(str(warehouse.published), read_only=True) as fresh:
        assert fresh.execute("SELECT v FROM marts.probe").fetchall() == [(2,)]
