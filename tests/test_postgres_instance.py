"""The production instance: run, event-log and schedule storage on a real PostgreSQL server.

``.ci/run`` starts one on loopback and sets ``GOVMETRICS_TEST_PG_URL``; on a laptop start
one with ``export GOVMETRICS_TEST_PG_URL=$(.ci/start-postgres /tmp/govmetrics-pg 55432)``.
Without it these tests skip, except under ``CI=true``, where a missing server is a failure.
Each test gets its own database.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import pytest

from pipelines.automation import landing_sensor, monthly_refresh
from pipelines.instance import PG_URL_VAR, WRITER_TAG, dagster_home, with_driver
from pipelines.resources import LandingFolder
from tests import departments as dep
from tests.cli_runs import cli, instance_at, setup
from tests.test_recovery import kill_at

SERVER = os.environ.get("GOVMETRICS_TEST_PG_URL")
if not SERVER and not os.environ.get("CI"):
    pytest.skip("no PostgreSQL server: set GOVMETRICS_TEST_PG_URL (see .ci/start-postgres); "
                ".ci/run starts one", allow_module_level=True)


@pytest.fixture
def database():
    assert SERVER, "CI=true but GOVMETRICS_TEST_PG_URL is not set: .ci/run must start PostgreSQL"
    import psycopg2

    name = f"govmetrics_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(SERVER)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(SERVER)
    admin.close()
    # Not dropped afterwards: storage threads of a closed instance may still reconnect, and the
    # server is a throw-away one (.ci/run removes it, as should .ci/start-postgres's users).
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def site(tmp_path, database, monkeypatch):
    s = setup(tmp_path)
    dep.registers(s.landing)
    dep.cases_json(s.landing)
    monkeypatch.setenv(PG_URL_VAR, with_driver(database))  # read by dagster.yaml when the instance loads
    dagster_home({"DAGSTER_HOME": str(s.home), PG_URL_VAR: database})
    s.pg_url = with_driver(database)
    return s


def test_refresh_is_recorded_in_postgres(site):
    proc = cli(site.env(**{PG_URL_VAR: site.pg_url}), "refresh")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with instance_at(site.home) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        [run] = instance.get_runs(filters=dg.RunsFilter(job_name="refresh"))
        assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags[WRITER_TAG] == "warehouse"
        materialized = instance.get_latest_materialization_event(dg.AssetKey(["core", "service_cases"]))
        assert materialized is not None and materialized.run_id == run.run_id
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert limits == [{"key": WRITER_TAG, "limit": 1}]


def test_sensor_and_schedule_launch_refreshes_on_postgres(site, monkeypatch):
    for k, v in site.env(**{PG_URL_VAR: site.pg_url}).items():
        monkeypatch.setenv(k, v)
    from pipelines.definitions import defs

    job = defs.resolve_job_def("refresh")
    with instance_at(site.home) as instance:
        landing = {"landing": LandingFolder(path=str(site.landing))}
        context = dg.build_sensor_context(instance=instance, resources=landing)
        request = landing_sensor(context)
        assert isinstance(request, dg.RunRequest)
        first = job.execute_in_process(instance=instance,
                                       tags={**request.tags, "dagster/sensor_name": "landing_sensor"})
        assert first.success
        again = landing_sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor, resources=landing))
        assert isinstance(again, dg.SkipReason)  # nothing new landed

        tick = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 12, 5, 6, 0))
        [scheduled] = monthly_refresh.evaluate_tick(tick).run_requests
        second = job.execute_in_process(instance=instance, tags={**scheduled.tags,
                                                                  "dagster/schedule_name": "monthly_refresh"})
        assert second.success
        runs = instance.get_runs()
        assert {r.tags.get("dagster/sensor_name") or r.tags.get("dagster/schedule_name") for r in runs} == {
            "landing_sensor", "monthly_refresh"}
        assert monthly_refresh.default_status == dg.DefaultScheduleStatus.RUNNING
        assert landing_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert site.query("SELECT count(*) FROM latest.service_cases") == [(2,)]


def test_a_killed_run_is_marked_failed_in_postgres(site, tmp_path, monkeypatch):
    monkeypatch.setattr(site, "env", lambda _env=site.env, **extra: _env(**{PG_URL_VAR: site.pg_url, **extra}))
    dead_run, _ = kill_at(site, "merging", tmp_path)
    proc = cli(site.env(), "refresh")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with instance_at(site.home) as instance:
        assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
    # Every file loaded once (the interrupted load stays as a failed 'pipeline' batch).
    assert site.query("SELECT source_path FROM quality.load_batches GROUP BY 1 "
                      "HAVING count(*) FILTER (status <> 'failed') <> 1") == []
