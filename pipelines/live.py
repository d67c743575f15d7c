"""What ``govmetrics refresh`` shows while it runs: one bar per file, one line per step.

Written to a file or a pipe (cron, CI, ``| tee``), where bars would only be drawn once the run is
over, the same events are printed as plain lines as they happen: each step starting and ending,
each file's rows every ``PLAIN_EVERY_SECONDS`` while it loads, and its total when it is done.

Two sources feed the display, neither of which knows about the terminal:

* the loader's progress hook (``assets/ingest/progress.py``): rows staged, bytes (estimated
  for CSV) and the stage of each file, reported from the step that loads it;
* the run's own Dagster event log, polled from the instance (``get_records_for_run``): step
  started / succeeded / failed, which gives the per-stage lines (checks, marts, exports).

``rich`` draws both and measures CJK display width, so Chinese file names stay aligned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import dagster as dg
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from assets.ingest import progress as hook
from expectations.contract import all_contracts

POLL_SECONDS = 0.25
PLAIN_EVERY_SECONDS = 15.0
STEP_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
               dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_SKIPPED}
STAGE_ZH = {"read": "读取", "judge": "校验", "done": "完成"}
STEPS_ZH = {"quality__load_summary": "数据质量汇总", "marts": "重算指标（marts）",
            "exports__parquet": "导出 Parquet", "exports__bulletin": "生成公报",
            "exports__returns": "生成退回清单", "exports__warehouse_snapshot": "发布分析快照"}


def step_label(step_key: str) -> str:
    """The bureau's name for a step: 'core__service_cases' -> '载入并校验 办件明细'."""
    if step_key in STEPS_ZH:
        return STEPS_ZH[step_key]
    contracts = all_contracts()
    if step_key.startswith("core__"):
        rest = step_key.removeprefix("core__")
        for name, contract in contracts.items():
            if rest == name:
                return f"载入并校验 {contract.title_zh}"
            if rest.startswith(name + "_"):
                return f"交叉校验 {contract.title_zh}：{rest.removeprefix(name + '_')}"
    return step_key


class RowsColumn(ProgressColumn):
    """Rows staged and their rate, e.g. ``120,000 行 · 41,000 行/秒``."""

    def render(self, task: Task) -> Text:
        rows = task.fields.get("rows")
        if rows is None:
            return Text("")
        elapsed = task.elapsed or 0
        rate = f" · {rows / elapsed:,.0f} 行/秒" if elapsed > 0.5 and rows else ""
        return Text(f"{rows:,} 行{rate}", style="cyan")


class StageColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(task.fields.get("stage", ""), style="magenta")


@dataclass
class Timing:
    started: float
    finished: float | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.finished is None else self.finished - self.started


@dataclass
class RunDisplay:
    """Bars for files and steps of one run; keeps each file's load time for the summary."""

    out: Console
    progress: Progress = field(init=False)
    files: dict[tuple[str, str], TaskID] = field(default_factory=dict)
    steps: dict[str, TaskID] = field(default_factory=dict)
    timings: dict[str, Timing] = field(default_factory=dict)  # by source path
    lock: threading.Lock = field(default_factory=threading.Lock)
    plain: bool = field(init=False)  # not a terminal: lines instead of bars
    said: dict[str, float] = field(default_factory=dict)  # by source path: when its rows were last printed

    def __post_init__(self) -> None:
        self.plain = not self.out.is_terminal
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description}", table_column=Column(width=44, no_wrap=True, overflow="ellipsis")),
            BarColumn(bar_width=22),
            TextColumn("{task.percentage:>3.0f}%", table_column=Column(width=4)),
            RowsColumn(table_column=Column(width=26, no_wrap=True)),
            StageColumn(table_column=Column(width=4)),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.out,
            transient=False,
        )

    # the loader's hook --------------------------------------------------------------------
    def on_progress(self, event: hook.Progress) -> None:
        with self.lock:
            if self.plain:
                self._print_progress(event)
                return
            key = (event.dataset, event.source)
            if key not in self.files:
                name = event.source.removeprefix(event.dataset + "/")
                self.files[key] = self.progress.add_task(f"{event.dataset}/{name}", total=event.bytes_total,
                                                         rows=0, stage="")
                self.timings[event.source] = Timing(time.monotonic())
            task = self.files[key]
            done = event.stage == "done"
            completed = event.bytes_done if event.bytes_done is not None else 0
            if done:
                self.timings[event.source].finished = time.monotonic()
                total = event.bytes_total or 1
                self.progress.update(task, total=total, completed=total, rows=event.rows, stage="")
                self.progress.stop_task(task)
            else:
                self.progress.update(task, completed=completed, rows=event.rows, stage=STAGE_ZH.get(event.stage, ""))

    def _line(self, text: str) -> None:
        """One plain line, as written (a file name is not rich markup)."""
        self.out.print(text, highlight=False, markup=False)

    def _print_progress(self, event: hook.Progress) -> None:
        name = f"{event.dataset}/{event.source.removeprefix(event.dataset + '/')}"
        now = time.monotonic()
        if event.source not in self.timings:
            self.timings[event.source] = Timing(now)
            self.said[event.source] = now
            self._line(f"  {name}：开始读取")
        timing = self.timings[event.source]
        if event.stage == "done":
            timing.finished = now
            self._line(f"  {name}：{event.rows:,} 行，用时 {now - timing.started:.1f} 秒")
        elif now - self.said[event.source] >= PLAIN_EVERY_SECONDS:
            self.said[event.source] = now
            rate = event.rows / max(now - timing.started, 1e-9)
            self._line(f"  {name}：已读 {event.rows:,} 行（{rate:,.0f} 行/秒）")

    # the run's event log ------------------------------------------------------------------
    def on_step(self, step_key: str, event_type: dg.DagsterEventType) -> None:
        with self.lock:
            if self.plain:
                mark = {dg.DagsterEventType.STEP_START: "开始", dg.DagsterEventType.STEP_SUCCESS: "✓ 完成",
                        dg.DagsterEventType.STEP_FAILURE: "✗ 失败", dg.DagsterEventType.STEP_SKIPPED: "跳过"}
                self._line(f"{mark[event_type]} {step_label(step_key)}")
                return
            if event_type == dg.DagsterEventType.STEP_START:
                self.steps[step_key] = self.progress.add_task(f"[bold]{step_label(step_key)}[/]", total=None,
                                                              stage="")
                return
            task = self.steps.get(step_key)
            if task is None:
                return
            failed = event_type == dg.DagsterEventType.STEP_FAILURE
            label = f"[red]✗ {step_label(step_key)}[/]" if failed else f"{step_label(step_key)}"
            self.progress.update(task, total=1, completed=1, description=label)
            self.progress.stop_task(task)

    def watch(self, instance: dg.DagsterInstance, run_id: str, stop: threading.Event) -> None:
        """Poll the run's step events until ``stop`` is set (then drain once more)."""
        cursor = None
        while True:
            finished = stop.is_set()
            try:
                conn = instance.get_records_for_run(run_id, cursor=cursor, of_type=STEP_EVENTS)
            except Exception:  # noqa: BLE001 - the run is not created yet, or storage is busy
                conn = None
            if conn is not None:
                cursor = conn.cursor
                for record in conn.records:
                    event = record.event_log_entry.dagster_event
                    if event is not None and event.step_key:
                        self.on_step(event.step_key, event.event_type)
            if finished:
                return
            stop.wait(POLL_SECONDS)


@contextmanager
def showing(out: Console, instance: dg.DagsterInstance, run_id: str) -> Iterator[RunDisplay]:
    """Draw the run's progress for the duration of the block."""
    display = RunDisplay(out)
    stop = threading.Event()
    watcher = threading.Thread(target=display.watch, args=(instance, run_id, stop), daemon=True)
    with nullcontext() if display.plain else display.progress, hook.listening(display.on_progress):
        watcher.start()
        try:
            yield display
        finally:
            stop.set()
            watcher.join(timeout=5)
