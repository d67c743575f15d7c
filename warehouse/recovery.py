"""Clean up after a refresh that was killed (``kill -9``, power loss) at any stage.

Loading is already safe: each file's quarantine, merge and batch row commit in one DuckDB
transaction (the WAL replays or drops it on the next open), and a file without a batch row is
simply loaded again. What a killed run leaves behind is bookkeeping, found by the next process
to take the writer lock (``pipelines.lock`` names the dead holder):

* its Dagster run still says STARTED: it is marked failed in the run storage;
* its ``quality.check_results`` rows, possibly only some of a suite: deleted (the checks run
  again on the next materialisation), and the copies of rows its suites were reading
  (``quality.gx_scope_<dataset>[_flagged]``, ``expectations.scope``): dropped;
* temp files: the interrupted publish's ``.<warehouse>.<pid>.tmp`` (and its block manifest's),
  DuckDB's spill directory next to the working file, and the readers' transcoded
  ``govmetrics-<pid>-*.utf8.csv``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from expectations import scope
from expectations.sql import quote
from warehouse.writer import writer_path

NOT_FINISHED = (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED,
                dg.DagsterRunStatus.CANCELING)
DEAD_MESSAGE = "运行进程已意外终止（kill -9、断电或内存不足被系统终止）；下一次刷新已清理其残留并重新载入未完成的文件"


@dataclass
class Recovered:
    run_id: str | None = None
    marked_failed: bool = False
    check_results_removed: int = 0
    files_removed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"已清理被终止的运行 {self.run_id}：标记为失败={self.marked_failed}，"
                f"删除校验结果 {self.check_results_removed} 行，删除临时文件 {len(self.files_removed)} 个")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PUBLISH_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")
_TRANSCODE_TMP = re.compile(r"^govmetrics-(?P<pid>\d+)-.*\.utf8\.csv$")


def leftover_files(published: Path) -> list[Path]:
    """Temp files of writers that are no longer running (the caller holds the writer lock)."""
    found = []
    if published.parent.is_dir():
        for p in published.parent.iterdir():
            m = _PUBLISH_TMP.match(p.name)  # the new file, or its block manifest (warehouse.snapshot)
            if m and m["name"] in (published.name, f"{published.name}.blocks") and not alive(int(m["pid"])):
                found.append(p)
    spill = writer_path(published).with_name(writer_path(published).name + ".tmp")
    if spill.is_dir():
        found.extend(sorted(spill.iterdir()))
    tmp = Path(tempfile.gettempdir())
    found.extend(p for p in tmp.glob("govmetrics-*.utf8.csv")
                 if (m := _TRANSCODE_TMP.match(p.name)) and not alive(int(m["pid"])))
    return found


def recover(published: Path, dead_run_id: str | None, instance: dg.DagsterInstance | None) -> Recovered:
    """Undo what ``dead_run_id`` (a run whose process died holding the lock) left behind."""
    published = published.resolve()
    done = Recovered(run_id=dead_run_id)
    if dead_run_id and instance is not None:
        run = instance.get_run_by_id(dead_run_id)
        if run is not None and run.status in NOT_FINISHED:
            instance.report_run_failed(run, message=DEAD_MESSAGE)
            done.marked_failed = True
    work = writer_path(published)
    if dead_run_id and work.exists():
        with duckdb.connect(str(work)) as con:
            present = con.execute("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_schema = 'quality' AND table_name = 'check_results'").fetchall()[0][0]
            if present:
                done.check_results_removed = con.execute(
                    "DELETE FROM quality.check_results WHERE run_id = ?", [dead_run_id]).fetchall()[0][0]
            for (table,) in con.execute(  # the rows its suites were reading (expectations.scope)
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                    "AND starts_with(table_name, ?)", [scope.SCHEMA, scope.PREFIX]).fetchall():
                con.execute(f"DROP TABLE IF EXISTS {quote(scope.SCHEMA)}.{quote(table)}")
    for p in leftover_files(published):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        done.files_removed.append(p.name)
    return done  # the caller reports it (CLI: stderr; a run: its Dagster log)
