"""What ``govmetrics`` prints, read back from the warehouse: run summary, KPIs, status, quarantine.

Tables are ``rich`` tables: they measure display width, so Chinese names line up, and they
fold long messages instead of pushing columns out. Everything fits :data:`pipelines.live.WIDTH`.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from rich import box
from rich.console import Console
from rich.table import Table

from expectations.contract import all_contracts
from expectations.sql import literal, quote
from warehouse.ddl import NEWEST_CHECK_FIRST
from warehouse.writer import writer_path

BLOCKED = "DagsterAssetCheckFailedError"
WIDTH = 120  # what `make run` promises to fit in
STATUS_ZH = {"loaded": "[green]已载入[/]", "partially_loaded": "[yellow]部分载入[/]", "failed": "[red]失败[/]",
             "superseded": "已被取代", "duplicate": "重复报送"}

LATEST_KPIS = """
    SELECT v.kpi_code, v.name_zh, v.period_grain, v.period_start, v.as_of, v.value, v.unit, c.reference
    FROM marts.kpi_values v JOIN marts.kpi_catalogue c USING (kpi_code)
    WHERE v.scope = 'city'
    QUALIFY row_number() OVER (PARTITION BY v.kpi_code ORDER BY v.period_start DESC, v.period_grain) = 1
"""


def console() -> Console:
    """The terminal, never wider than :data:`WIDTH` columns."""
    probe = Console()
    return Console(width=min(probe.width if probe.is_terminal else WIDTH, WIDTH), highlight=False)


def _table(title: str, *columns: str) -> Table:
    """A compact table; a header ending in '>' is a right-aligned (number) column."""
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
                  show_edge=False)
    for header in columns:
        table.add_column(header.rstrip(">"), justify="right" if header.endswith(">") else "left", overflow="fold")
    return table


def _checks_table(title: str, rows: list[tuple]) -> Table:
    """Failed expectations: (dataset, expectation, severity, unexpected count)."""
    table = _table(title, "数据集", "期望", "严重程度", "不符行数>")
    for dataset, expectation, severity, n in rows:
        table.add_row(_title(dataset), expectation, "阻断" if severity == "error" else "提示",
                      "" if n is None else f"{n:,}")
    return table


def _title(dataset: str) -> str:
    contract = all_contracts().get(dataset)
    return contract.title_zh if contract else dataset


def step_failures(result) -> list[tuple[str, str, str]]:
    """(step, error class, message) of every failed step of a run."""
    out = []
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error
        out.append((event.step_key, error.cls_name if error else "", error.message.strip() if error else ""))
    return out


def print_summary(result, seconds: dict[str, float | None] | None = None, out: Console | None = None,
                  started: float = 0.0, bulletin=None) -> bool:
    """Print the run summary (with where the ``bulletin`` run wrote the month's bulletin); True when
    the only failures of the refresh are blocking checks (not a run failure)."""
    out = out or console()
    warehouse = Path(os.environ["GOVMETRICS_WAREHOUSE"]).resolve()
    failures = step_failures(result)
    work = writer_path(warehouse)
    if work.exists():
        with duckdb.connect(str(work), read_only=True) as con:
            print_run(con, result.run_id, seconds or {}, out)
    for step, cls, message in failures:
        kind = "[yellow]已阻断发布[/]" if cls == BLOCKED else "[red]失败[/]"
        out.print(f"{kind} {step}: {message.splitlines()[0] if message else cls}")
    if warehouse.exists() and (result.success or not failures):
        print_kpis(warehouse, out)
    exports = Path(os.environ["GOVMETRICS_EXPORTS"]).resolve()
    returned = sorted(p.name for p in (exports / "returns").glob("*.xlsx") if p.stat().st_mtime >= started)
    where = Table.grid(padding=(0, 2))
    where.add_column(no_wrap=True)
    where.add_column(overflow="fold")
    where.add_row("分析库（只读打开）", str(warehouse))
    where.add_row("Parquet 导出与清单", f"{exports}（每次运行另存 runs/，latest 指向最新）")
    _bulletin_rows(where, bulletin, exports / "bulletin", out)
    where.add_row("退回清单", f"{exports / 'returns'}" + (
        f"（本次 {len(returned)} 份：{'、'.join(returned)}）" if returned else ""))
    out.print()
    out.print(where)
    state = "[green]成功[/]" if result.success else "[yellow]有阻断的校验[/]" if failures and all(
        cls == BLOCKED for _, cls, _ in failures) else "[red]失败[/]"
    out.print(f"Dagster 运行 {result.run_id}：{state}（完整事件日志：govmetrics refresh --verbose，或 make dev）")
    return bool(failures) and all(cls == BLOCKED for _, cls, _ in failures)


def _bulletin_rows(where: Table, bulletin, root: Path, out: Console) -> None:
    if bulletin is None:
        where.add_row("公报", "未生成（本次运行没有发布分析库）")
        return
    for step, _, message in step_failures(bulletin):
        out.print(f"[red]失败[/] {step}: {message.splitlines()[0] if message else ''}")
    month = bulletin.dagster_run.tags.get("dagster/partition", "")
    folder = root / month
    where.add_row(f"公报 {month}（公开版）", f"{folder / 'bulletin.html'}，{folder / 'bulletin.pdf'}")
    where.add_row("  内部版", f"{folder / 'internal.html'}，internal.pdf")
    where.add_row("  历期公报", str(root / "index.html"))


def print_run(con: duckdb.DuckDBPyConnection, run_id: str, seconds: dict[str, float | None], out: Console) -> None:
    """Per file and per rule: what this run did."""
    rows = con.execute(
        """SELECT dataset, source_path, status, rows_read, rows_loaded, rows_quarantined, rows_skipped, reason
           FROM quality.load_batches WHERE run_id = ? ORDER BY dataset, received_at""", [run_id]).fetchall()
    files = _table("本次载入的文件", "数据集", "文件", "状态", "读取>",
                   "载入>", "隔离>", "跳过>", "秒>")
    for dataset, source, status, read, loaded, quarantined, skipped, _ in rows:
        took = seconds.get(source)
        files.add_row(_title(dataset), source.removeprefix(dataset + "/"), STATUS_ZH.get(status, status),
                      f"{read or 0:,}", f"{loaded or 0:,}", f"{quarantined or 0:,}", f"{skipped or 0:,}",
                      "" if took is None else f"{took:.1f}")
    if rows:
        out.print(files)
    else:
        out.print("没有新文件：无需载入。")
    for _, source, status, *_, reason in rows:
        if status in ("failed", "duplicate") and reason:
            out.print(f"  {source}：{reason}")
    rules = con.execute(
        """SELECT q.dataset, q.rule, count(*) AS n, any_value(q.message ORDER BY q.source_row) AS message
           FROM quality.quarantine q JOIN quality.load_batches b USING (batch_id)
           WHERE b.run_id = ? GROUP BY ALL ORDER BY n DESC, q.dataset, q.rule""", [run_id]).fetchall()
    if rules:
        table = _table("隔离行（按规则）", "数据集", "规则", "行数>", "说明（示例）")
        for dataset, rule, n, message in rules:
            table.add_row(_title(dataset), rule, f"{n:,}", message)
        out.print(table)
    failed = con.execute(
        """SELECT DISTINCT dataset, expectation, severity, unexpected_count FROM quality.check_results
           WHERE run_id = ? AND NOT success ORDER BY ALL""", [run_id]).fetchall()
    if failed:
        out.print(_checks_table("未通过的校验", failed))


def print_kpis(warehouse: Path, out: Console | None = None) -> int:
    from warehouse.formatting import format_kpi
    from warehouse.marts import load_catalogue

    out = out or console()
    order = {k["code"]: i for i, k in enumerate(load_catalogue())}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(LATEST_KPIS).fetchall()
    rows.sort(key=lambda r: order.get(r[0], len(order)))
    table = _table("最新指标（全市）", "指标", "名称", "统计期", "数值>",
                   "公开数>", "")
    for code, name, grain, start, as_of, value, unit, reference in rows:
        shown = format_kpi(value, unit)
        ref = "" if reference is None else format_kpi(reference, unit)
        mark = "" if reference is None else ("[green]✓[/]" if shown == ref else "[red]≠[/]")
        period = f"{grain} {start:%Y-%m}" if start else grain
        if as_of is not None:  # the date the figure is true for (a register's own date)
            period += f"（截至{as_of:%Y-%m-%d}）"
        table.add_row(code, name, period, shown, ref, mark)
    out.print(table)
    out.print("公开数：大数据局公开答复（沈数管建议〔2022〕4号、〔2023〕7号）中的数字；"
              "✓ 一致，≠ 不一致，空白：无公开数。")
    return 0


def print_status(warehouse: Path, out: Console | None = None) -> int:
    """Freshness per dataset and department, the last batches, the checks failing now."""
    out = out or console()
    contracts = all_contracts()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        last = {r[0]: r[1:] for r in con.execute(
            """SELECT dataset, max(received_at), max(period_max), count(*) FILTER (WHERE status <> 'duplicate')
               FROM quality.load_batches GROUP BY dataset""").fetchall()}
        table = _table("数据新鲜度（按数据集）", "数据集", "最近接收", "最新统计期",
                       "批次>", "时限>", "状态")
        now = datetime.now()
        for name, contract in contracts.items():
            received, period, batches = last.get(name, (None, None, 0))
            limit = contract.freshness_days
            if received is None:
                state = "[red]无数据[/]"
            elif limit and now - received > timedelta(days=limit):
                state = f"[red]已超期 {(now - received).days} 天[/]"
            else:
                state = "[green]正常[/]"
            table.add_row(contract.title_zh, f"{received:%Y-%m-%d %H:%M}" if received else "—", (period or "—")[:10],
                          str(batches), f"{limit} 天" if limit else "—", state)
        out.print(table)
        by_dept = [f"""SELECT {literal(name)} AS dataset, dept_code, max({quote(c.period)})::VARCHAR AS latest,
                              count(*) AS n FROM latest.{quote(name)} GROUP BY ALL"""
                   for name, c in contracts.items() if c.period and "dept_code" in c.column_names]
        if by_dept:
            rows = con.execute(
                f"""SELECT coalesce(o.name, '未知部门' || d.dept_code), d.dataset, d.latest, d.n
                    FROM ({' UNION ALL '.join(by_dept)}) d LEFT JOIN latest.org_units o ON o.code = d.dept_code
                    ORDER BY d.latest, 1""").fetchall()
            table = _table("各部门最新数据（最旧的在前）", "部门", "数据集", "最新统计期",
                           "当前行数>")
            for dept, dataset, latest, n in rows[:20]:
                table.add_row(dept, _title(dataset), str(latest)[:10], f"{n:,}")
            out.print(table)
            if len(rows) > 20:
                out.print(f"  … 另有 {len(rows) - 20} 行")
        batches = con.execute(
            """SELECT received_at, dataset, source_path, status, rows_read, rows_loaded, rows_quarantined
               FROM quality.load_batches ORDER BY received_at DESC LIMIT 10""").fetchall()
        table = _table("最近的批次", "接收时间", "数据集", "文件", "状态",
                       "读取>", "载入>", "隔离>")
        for received, dataset, source, status, read, loaded, quarantined in batches:
            table.add_row(f"{received:%m-%d %H:%M}", _title(dataset), source.removeprefix(dataset + "/"),
                          STATUS_ZH.get(status, status), f"{read or 0:,}", f"{loaded or 0:,}", f"{quarantined or 0:,}")
        out.print(table)
        failing = con.execute(
            f"""SELECT dataset, expectation, severity, unexpected_count FROM quality.check_results
               QUALIFY row_number() OVER (PARTITION BY dataset, expectation ORDER BY {NEWEST_CHECK_FIRST}) = 1
                   AND NOT success
               ORDER BY severity, dataset""").fetchall()
        if failing:
            out.print(_checks_table("当前未通过的校验（各期望最近一次）", failing))
        else:
            out.print("全部校验通过。")
    return 0


def print_quarantine(warehouse: Path, dataset: str | None, department: str | None, since: str | None,
                     limit: int, out: Console | None = None) -> int:
    """Rejected rows, newest first, with department, reason and correction status."""
    out = out or console()
    where, params = ["true"], []
    if dataset:
        where.append("dataset = ?")
        params.append(dataset)
    if department:
        where.append("(department_code = ? OR department LIKE '%' || ? || '%')")
        params += [department, department]
    if since:
        where.append("received_at >= ?::TIMESTAMP")
        params.append(since)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        if not con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'quality' "
                           "AND view_name = 'rejected_rows'").fetchall()[0][0]:
            out.print("[red]已发布的仓库还没有 quality.rejected_rows：请先运行 govmetrics refresh --force[/]")
            return 1
        sql = f"FROM quality.rejected_rows WHERE {' AND '.join(where)}"
        total = con.execute(f"SELECT count(*) {sql}", params).fetchall()[0][0]
        rows = con.execute(
            f"""SELECT received_at, dataset, source_path, source_row, department, rule, message, correction_status
                {sql} ORDER BY received_at DESC, source_path, source_row LIMIT {int(limit)}""", params).fetchall()
    table = _table(f"隔离行：{total:,} 行", "接收", "文件", "行>", "部门",
                   "规则", "说明", "状态")
    for received, _, source, row, dept, rule, message, status in rows:
        table.add_row(f"{received:%m-%d}", source, str(row), dept, rule, message, status)
    out.print(table)
    if total > len(rows):
        out.print(f"  … 另有 {total - len(rows):,} 行（--limit 调整；完整明细见 quality.rejected_rows）")
    return 0
