"""Safe to run unattended: one writer at a time, preflight refusals, the key bound to the warehouse.

Every test runs the real ``govmetrics`` command in a subprocess on a small departmental landing
folder and reads what an operator sees (exit status, stderr) and what the warehouse holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import dagster as dg
import pytest

from pipelines.instance import MARKER, PG_URL_VAR, dagster_home, instance_yaml
from pipelines.lock import WriterBusy, current_holder, writer_lock
from tests import departments as dep
from tests.cli_runs import ROOT, cli, instance_at, no_traceback, setup, start
from warehouse.keyring import fingerprint


@pytest.fixture
def site(tmp_path):
    s = setup(tmp_path)
    dep.registers(s.landing)
    dep.cases_json(s.landing)
    return s


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_a_refresh_while_another_writes_exits_at_once_naming_it(site):
    with writer_lock(site.warehouse, "run-that-is-writing"):
        started = time.monotonic()
        proc = cli(site.env(), "refresh")
        assert time.monotonic() - started < 120
    assert proc.returncode == 75
    assert one_line(proc.stderr) == f"govmetrics: 另一个刷新正在运行（run run-that-is-writing, pid {os.getpid()}）"
    assert no_traceback(proc.stdout + proc.stderr)
    assert not site.work.exists()  # the loser touched nothing
    assert current_holder(site.warehouse) is None  # and the holder's clean release emptied the file


def test_lock_is_exclusive_and_reports_the_holder(tmp_path):
    published = tmp_path / "wh" / "g.duckdb"
    with writer_lock(published, "first"):
        holder = current_holder(published)
        assert holder.run_id == "first" and holder.pid == os.getpid()
        child = subprocess.run(
            ["python3", "-c", "import fcntl,sys; f=open(sys.argv[1],'a'); fcntl.flock(f, fcntl.LOCK_EX|fcntl.LOCK_NB)",
             str(published.with_name("g.duckdb.lock"))], capture_output=True, text=True)
        assert child.returncode != 0 and "BlockingIOError" in child.stderr
    with writer_lock(published, "second") as dead:
        assert dead is None  # the first ended cleanly: nothing to recover


def test_two_refreshes_started_together_on_a_new_home_one_loads_the_other_waits(site, tmp_path):
    env = site.env()
    procs = [start(env, "refresh", "--wait", "900", log=tmp_path / f"run{i}.log") for i in (1, 2)]
    codes = [p.wait(timeout=1200) for p in procs]
    logs = [(tmp_path / f"run{i}.log").read_text() for i in (1, 2)]
    assert codes == [0, 0], logs
    assert all(no_traceback(text) for text in logs)
    # Every file loaded exactly once, by whichever ran first; the other found nothing new.
    assert site.query("SELECT source_path, count(*) FROM quality.load_batches GROUP BY 1 HAVING count(*) > 1") == []
    assert site.query("SELECT count(*) FROM core.service_cases")[0][0] == 2
    # The instance is healthy afterwards (no double alembic head): a third refresh succeeds.
    third = cli(env, "refresh")
    assert third.returncode == 0, third.stderr[-2000:]
    with instance_at(site.home) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="refresh"))
        # The later two found nothing new and started no run.
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS


@pytest.mark.parametrize("change, expected", [
    ({"GOVMETRICS_LANDING": "{tmp}/no-such-folder"}, "落地目录不存在"),
    ({"GOVMETRICS_WAREHOUSE": "{tmp}/a-file/govmetrics.duckdb"}, "仓库目录不是文件夹"),
    ({"GOVMETRICS_PII_KEY": ""}, "个人信息密钥为空"),
    ({"GOVMETRICS_ENV": "production", "GOVMETRICS_PII_KEY": None}, "未设置 GOVMETRICS_PII_KEY"),
    ({"GOVMETRICS_ENV": "production", "GOVMETRICS_PII_KEY": "DEVELOPMENT-ONLY-KEY-not-for-production"},
     "不能使用开发用个人信息密钥"),
])
def test_misconfiguration_is_one_line_before_any_work(site, tmp_path, change, expected):
    (tmp_path / "a-file").write_text("not a folder")
    env = site.env()
    for k, v in change.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v.format(tmp=tmp_path)
    proc = cli(env, "refresh")
    assert proc.returncode == 2
    assert expected in one_line(proc.stderr) and no_traceback(proc.stderr)
    assert proc.stdout == ""
    assert not site.warehouse.parent.exists() and not site.exports.exists() and not site.home.exists()


def test_the_development_key_warns_on_every_run(site):
    env = site.env()
    env.pop("GOVMETRICS_PII_KEY")
    for _ in range(2):
        proc = cli(env, "refresh")
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stderr.splitlines()[0].startswith("警告：正在使用开发用个人信息密钥")


def test_the_key_is_part_of_the_warehouse_and_rotation_is_deliberate(site):
    first = cli(site.env(GOVMETRICS_PII_KEY="key-A"), "refresh")
    assert first.returncode == 0, first.stderr[-2000:]
    assert site.query("SELECT value FROM quality.warehouse_settings WHERE name = 'pii_key_fingerprint'") == [
        (fingerprint(b"key-A"),)]
    applicants = site.query("SELECT applicant_id_no FROM core.service_cases ORDER BY 1")

    refused = cli(site.env(GOVMETRICS_PII_KEY="key-B"), "refresh")
    assert refused.returncode == 2 and no_traceback(refused.stderr)
    line = one_line(refused.stderr)
    assert "个人信息密钥与仓库不一致" in line and "rotate-key" in line
    assert "key-A" not in line and "key-B" not in line

    assert cli(site.env(GOVMETRICS_PII_KEY="key-B"), "rotate-key").returncode == 2  # without --yes: explains
    rotated = cli(site.env(GOVMETRICS_PII_KEY="key-B"), "rotate-key", "--yes")
    assert rotated.returncode == 0, rotated.stderr[-2000:]
    assert "旧仓库已保留为" in rotated.stderr
    assert site.query("SELECT value FROM quality.warehouse_settings") == [(fingerprint(b"key-B"),)]
    rehashed = site.query("SELECT applicant_id_no FROM core.service_cases ORDER BY 1")
    assert len(rehashed) == len(applicants) and set(rehashed).isdisjoint(applicants)
    kept = sorted(site.warehouse.parent.glob("*.before-key-rotation-*.duckdb"))
    assert len(kept) == 2  # the working copy and the published file, both kept


def test_a_run_with_another_key_fails_in_dagster_too(site):
    """A daemon-launched run has no CLI preflight: the core assets compare the key themselves."""
    from pipelines.definitions import defs

    job = defs.resolve_job_def("refresh")
    env = site.env(GOVMETRICS_PII_KEY="key-A")
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            assert job.execute_in_process(instance=instance).success
            os.environ["GOVMETRICS_PII_KEY"] = "key-B"
            result = job.execute_in_process(instance=instance, raise_on_error=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert not result.success
    messages = [e.event_specific_data.error.message for e in result.get_step_failure_events()]
    assert messages and all("个人信息密钥与仓库不一致" in m for m in messages)


def test_instance_yaml_selects_postgres_by_configuration(tmp_path):
    assert "postgres" not in instance_yaml({})
    pg = instance_yaml({PG_URL_VAR: "postgresql://u@127.0.0.1:5432/db"})
    assert f"env: {PG_URL_VAR}" in pg and "u@127.0.0.1" not in pg  # the URL (a password) stays in the env
    env = {"DAGSTER_HOME": str(tmp_path / "home")}
    home = dagster_home(env)
    assert (home / "dagster.yaml").read_text().startswith(MARKER)
    (home / "dagster.yaml").write_text("# the operator's own\n")
    dagster_home(env)
    assert (home / "dagster.yaml").read_text() == "# the operator's own\n"  # never overwritten


def test_writer_busy_message_names_run_and_pid():
    from pipelines.lock import Holder

    assert str(WriterBusy(Holder("abc", 42))) == "另一个刷新正在运行（run abc, pid 42）"


def test_an_empty_key_loads_nothing_and_the_fixed_run_loads_every_file(site):
    """Issue 8: with GOVMETRICS_PII_KEY="" every case file used to become a failed batch, never retried."""
    dep.cases_gbk(site.landing)
    broken = cli(site.env(GOVMETRICS_PII_KEY=""), "refresh")
    assert broken.returncode == 2 and "个人信息密钥为空" in one_line(broken.stderr)
    assert not site.work.exists()  # refused before any file became a batch
    fixed = cli(site.env(), "refresh")
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert site.query("SELECT count(*), count(*) FILTER (status = 'failed') FROM quality.load_batches "
                      "WHERE dataset = 'service_cases'") == [(2, 0)]
    assert site.query("SELECT count(*) FROM latest.service_cases") == [(3 + 2,)]


def test_a_dagster_run_takes_the_writer_lock_too(site):
    """Runs the daemon launches (or the UI) have no CLI in front: their Warehouse resource takes the lock."""
    from assets.core import core_assets, landing_specs
    from pipelines.resources import LandingFolder, PersonalDataKey, Warehouse

    def materialize():
        return dg.materialize([*landing_specs, *core_assets], raise_on_error=False, resources={
            "landing": LandingFolder(path=str(site.landing)),
            "warehouse": Warehouse(path=str(site.warehouse), lock_wait_seconds=1),
            "personal_data_key": PersonalDataKey(key="k")})

    holder = subprocess.Popen(  # another process writing (in this one the lock is re-entrant)
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from pipelines.lock import writer_lock\n"
         "with writer_lock(Path(sys.argv[1]), 'cli-run'):\n    print('held', flush=True); time.sleep(600)",
         str(site.warehouse)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = materialize()
    finally:
        holder.kill()  # not terminate(): a shell that ignores SIGTERM passes that on
        holder.wait()
    assert not busy.success and not site.work.exists()
    failure = [e for e in busy.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE
               or e.is_failure or e.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert any("另一个刷新正在运行（run cli-run" in str(e.event_specific_data) for e in failure), failure
    assert materialize().success  # free again: the same run goes through
