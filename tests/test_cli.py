"""The ``govmetrics`` command as people use it: a real process, real files, the README's own lines."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from rich.cells import cell_len

from tests import departments as dep

ROOT = Path(__file__).resolve().parents[1]
GOVMETRICS = Path(sys.executable).parent / "govmetrics"


def govmetrics(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: int = 600):
    return subprocess.run([str(GOVMETRICS), *args], env={**os.environ, **env}, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def readme_block(heading: str) -> list[str]:
    """The shell lines of the first ```sh block under a README heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.strip().splitlines() if line.strip() and not line.startswith("#")]


def assert_fits(text: str, width: int = 120) -> None:
    wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert not wide, f"{len(wide)} lines wider than {width} columns, e.g. {wide[0]!r}"


@pytest.fixture(scope="module")
def analyst_checkout(sample_run, tmp_path_factory):
    """A folder laid out like a checkout after `make run`: .venv and var/warehouse/govmetrics.duckdb."""
    root = tmp_path_factory.mktemp("checkout")
    (root / "var" / "warehouse").mkdir(parents=True)
    shutil.copyfile(sample_run["warehouse"], root / "var" / "warehouse" / "govmetrics.duckdb")
    (root / ".venv").symlink_to(Path(sys.executable).parents[1])
    return root


def test_the_readme_analyst_section_works_as_written(analyst_checkout):
    lines = readme_block("## For analysts")
    assert any("govmetrics sql" in line for line in lines)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVMETRICS_")}
    outputs = []
    for line in lines:
        done = subprocess.run(["bash", "-c", line], cwd=analyst_checkout, env=env, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        assert "nanobind" not in done.stderr and "Traceback" not in done.stderr, (line, done.stderr)
        assert_fits(done.stdout)
        outputs.append(done.stdout)
    printed = "\n".join(outputs)
    assert "全市" in printed and "累计办件量" in printed  # names beside codes, from marts.kpi_values_named


def test_sql_reports_errors_without_a_traceback(analyst_checkout):
    done = govmetrics("sql", "-c", "SELECT * FROM no_such_table", env={}, cwd=analyst_checkout)
    assert done.returncode == 1 and "CatalogException" in done.stdout and "Traceback" not in done.stderr


def test_the_shell_is_read_only(analyst_checkout):
    done = govmetrics("sql", "-c", "CREATE TABLE x AS SELECT 1", env={}, cwd=analyst_checkout)
    assert done.returncode == 1 and "read-only" in done.stdout


def test_status_and_quarantine_read_the_published_warehouse(sample_run):
    env = {"GOVMETRICS_WAREHOUSE": str(sample_run["warehouse"])}
    status = govmetrics("status", env=env)
    assert status.returncode == 0, status.stderr
    assert "数据新鲜度" in status.stdout and "最近的批次" in status.stdout and "好差评明细" in status.stdout
    assert_fits(status.stdout)
    police = govmetrics("quarantine", "--department", "公安", env=env)
    assert police.returncode == 0, police.stderr
    rows = [line for line in police.stdout.splitlines() if "沈阳市公安局" in line]
    assert rows and "待更正" in police.stdout
    assert not any(name in police.stdout for name in ("沈阳市教育局", "沈阳市农业农村局"))
    cases = govmetrics("quarantine", "--dataset", "case_volume_monthly", "--since", "2000-01-01", env=env)
    assert "out_of_range" in cases.stdout and "not_in_set" not in cases.stdout


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory):
    """`govmetrics refresh` as a process on a small landing folder, with its own DAGSTER_HOME."""
    root = tmp_path_factory.mktemp("cli")
    landing = root / "landing"
    dep.registers(landing)
    dep.cases_gbk(landing)
    env = {"GOVMETRICS_LANDING": str(landing), "GOVMETRICS_WAREHOUSE": str(root / "wh" / "gm.duckdb"),
           "GOVMETRICS_EXPORTS": str(root / "exports"), "GOVMETRICS_PII_KEY": "cli-test-key",
           "DAGSTER_HOME": str(root / "dagster_home"), "COLUMNS": "120"}
    first = govmetrics("refresh", env=env)
    return {"root": root, "env": env, "first": first}


def test_refresh_shows_bars_and_ends_with_the_summary(refreshed):
    first = refreshed["first"]
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert_fits(out)
    assert not first.stderr.strip(), first.stderr  # no warnings, no banner, no nanobind report
    for shown in ["service_cases/办件明细_202303.csv", "载入并校验 办件明细", "本次载入的文件", "隔离行（按规则）",
                  "finished_after_accepted", "办结时间早于受理时间", "最新指标（全市）"]:
        assert shown in out, shown
    row = next(line for line in out.splitlines() if line.startswith("办件明细") and "部分载入" in line)
    assert re.search(r"部分载入\s+8\s+3\s+5\s+0\s+\d+\.\d", row), row
    assert out.rstrip().splitlines()[-1].startswith("Dagster 运行")
    assert not any(i in out for i in dep.ID_NUMBERS + dep.PHONES)


def test_a_rerun_with_nothing_new_is_fast_and_records_nothing(refreshed):
    home = Path(refreshed["env"]["DAGSTER_HOME"])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs_before = len(instance.get_run_records())
    started = time.monotonic()
    again = govmetrics("refresh", env=refreshed["env"])
    took = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert "没有新文件" in again.stdout and took < 5, took
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # the first refresh recorded two runs: the refresh job and the bulletin job for its month
        assert len(instance.get_run_records()) == runs_before == 2
