"""Run the real ``govmetrics`` command in a subprocess, against folders under tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

ROOT = Path(__file__).resolve().parents[1]
KEY = "operations-test-key"


@dataclass
class Setup:
    landing: Path
    warehouse: Path
    exports: Path
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVMETRICS_", "DAGSTER_"))}
        env.update({"GOVMETRICS_LANDING": str(self.landing), "GOVMETRICS_WAREHOUSE": str(self.warehouse),
                    "GOVMETRICS_EXPORTS": str(self.exports), "GOVMETRICS_PII_KEY": KEY,
                    "DAGSTER_HOME": str(self.home), "PYTHONUNBUFFERED": "1"})
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    @property
    def work(self) -> Path:
        return self.warehouse.with_name(self.warehouse.stem + ".writer.duckdb")

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.work), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()


def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path / "landing", tmp_path / "wh" / "govmetrics.duckdb", tmp_path / "exports",
                 tmp_path / "dagster_home")


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def cli(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def start(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen:
    """A refresh in the background, its stdout and stderr into ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen(command(*args), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def no_traceback(text: str) -> bool:
    return "Traceback" not in text


@contextmanager
def instance_at(home: Path) -> Iterator[dg.DagsterInstance]:
    """The instance under ``home``, disposed afterwards. Not ``with instance:``: that also sets
    Dagster's current defs-state storage, and a later test in this process would find it dead."""
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        yield instance
    finally:
        instance.dispose()
