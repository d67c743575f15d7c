"""What ``govmetrics`` prints: the run summary and the KPI table, read back from the warehouse."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from warehouse.writer import writer_path

BLOCKED = "DagsterAssetCheckFailedError"

LATEST_KPIS = """
    SELECT v.kpi_code, v.name_zh, v.period_grain, v.period_start, v.as_of, v.value, v.unit, c.reference
    FROM marts.kpi_values v JOIN marts.kpi_catalogue c USING (kpi_code)
    WHERE v.scope = 'city'
    QUALIFY row_number() OVER (PARTITION BY v.kpi_code ORDER BY v.period_start DESC, v.period_grain) = 1
"""


def step_failures(result) -> list[tuple[str, str, str]]:
    """(step, error class, message) of every failed step of a run."""
    out = []
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error
        out.append((event.step_key, error.cls_name if error else "", error.message.strip() if error else ""))
    return out


def print_summary(result, bulletin=None) -> bool:
    """Print the run summary (and where the bulletin run wrote the month's bulletin); True when the
    only failures of the refresh are blocking checks (not a run failure)."""
    warehouse = Path(os.environ["GOVMETRICS_WAREHOUSE"]).resolve()
    failures = step_failures(result)
    work = writer_path(warehouse)
    if work.exists():
        with duckdb.connect(str(work), read_only=True) as con:
            _print_batches(con, result.run_id)
    for step, cls, message in failures:
        kind = "BLOCKED" if cls == BLOCKED else "FAILED"
        print(f"{kind}: {step}: {message.splitlines()[0] if message else cls}")
    if warehouse.exists() and (result.success or not failures):
        print()
        print_kpis(warehouse)
    exports = Path(os.environ["GOVMETRICS_EXPORTS"]).resolve()
    print()
    print(f"warehouse (analysts open this): {warehouse}")
    print(f"parquet exports + manifest:     {exports}")
    _print_bulletin(bulletin, exports / "bulletin")
    print(f"dagster run: {result.run_id} ({'success' if result.success else 'not successful'})")
    return bool(failures) and all(cls == BLOCKED for _, cls, _ in failures)


def _print_bulletin(bulletin, root: Path) -> None:
    if bulletin is None:
        print("bulletin:                       not written (the warehouse was not published)")
        return
    for step, _, message in step_failures(bulletin):
        print(f"FAILED: {step}: {message.splitlines()[0] if message else ''}")
    month = bulletin.dagster_run.tags.get("dagster/partition", "")
    folder = root / month
    print(f"{'bulletin ' + month + ' (public):':<32}{folder / 'bulletin.html'}")
    print(f"{'  internal edition:':<32}{folder / 'internal.html'}")
    print(f"{'  PDF (A4):':<32}{folder / 'bulletin.pdf'}, internal.pdf")
    print(f"{'  all months:':<32}{root / 'index.html'}")
    print(f"{'  bulletin run:':<32}{bulletin.run_id} ({'success' if bulletin.success else 'not successful'})")


def _print_batches(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    rows = con.execute(
        """SELECT dataset, status, count(*), sum(rows_read), sum(rows_loaded), sum(rows_quarantined), sum(rows_skipped)
           FROM quality.load_batches WHERE run_id = ? GROUP BY ALL ORDER BY ALL""", [run_id]).fetchall()
    print(f"{'dataset':<22}{'status':<18}{'batches':>8}{'read':>10}{'loaded':>10}{'quarant.':>10}{'skipped':>9}")
    for r in rows:
        print(f"{r[0]:<22}{r[1]:<18}{r[2]:>8}{r[3] or 0:>10}{r[4] or 0:>10}{r[5] or 0:>10}{r[6] or 0:>9}")
    if not rows:
        print("(no new files: nothing to load)")
    failed = con.execute(
        """SELECT DISTINCT dataset, expectation, severity, unexpected_count FROM quality.check_results
           WHERE run_id = ? AND NOT success ORDER BY ALL""", [run_id]).fetchall()
    print(f"failed checks: {len(failed)}")
    for d, e, s, n in failed:
        print(f"  {d}.{e} [{s}] unexpected={n}")
    reasons = con.execute(
        """SELECT source_path, status, reason FROM quality.load_batches
           WHERE run_id = ? AND status IN ('failed', 'duplicate') ORDER BY ALL""", [run_id]).fetchall()
    for path, status, reason in reasons:
        print(f"  {status}: {path}: {reason}")


def print_kpis(warehouse: Path) -> int:
    from warehouse.formatting import format_kpi
    from warehouse.marts import load_catalogue

    order = {k["code"]: i for i, k in enumerate(load_catalogue())}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(LATEST_KPIS).fetchall()
    rows.sort(key=lambda r: order.get(r[0], len(order)))
    print(f"{'code':<32}{'名称':<16}{'period (as of)':<26}{'value':>14}{'reference':>16}")
    for code, name, grain, start, as_of, value, unit, reference in rows:
        shown = format_kpi(value, unit)
        ref = "" if reference is None else format_kpi(reference, unit)
        mark = "" if reference is None else ("  ✓" if shown == ref else "  ≠")
        period = f"{grain} {start:%Y-%m}" if start else grain
        if as_of is not None:  # the date the figure is true for (a register's own date)
            period += f" ({as_of:%Y-%m-%d})"
        print(f"{code:<32}{name:<16}{period:<26}{shown:>14}{ref:>16}{mark}")
    return 0
