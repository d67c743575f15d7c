"""The data-quality summary of a month's internal edition: batches, rows, quarantine, checks.

It covers the batches whose data starts by the month's end, plus registers and unreadable files,
which carry no period. Check results are the latest of each expectation (checks are not kept
per month).
"""

from __future__ import annotations

import re
from datetime import date

import duckdb

from warehouse.ddl import NEWEST_CHECK_FIRST


def _period_key(text: str | None) -> str | None:
    """A batch's first period as ``YYYY-MM`` (``'2023'`` -> ``2023-01``, ``'2023-Q2'`` ->
    ``2023-04``, ``'2023-03-01 08:00:00'`` -> ``2023-03``)."""
    if not text:
        return None
    text = str(text).strip()
    if m := re.match(r"^(\d{4})-(\d{2})", text):
        return f"{m[1]}-{m[2]}"
    if m := re.match(r"^(\d{4})-?Q([1-4])", text, re.I):
        return f"{m[1]}-{3 * int(m[2]) - 2:02d}"
    if m := re.match(r"^(\d{4})$", text):
        return f"{m[1]}-01"
    return None


def quality(con: duckdb.DuckDBPyConnection, month: date | None) -> dict:
    batches = con.execute(
        "SELECT batch_id, dataset, source_path, status, reason, rows_read, rows_loaded, "
        "rows_quarantined, rows_skipped, period_min FROM quality.load_batches "
        "ORDER BY received_at, batch_id"
    ).fetchall()
    bound = f"{month:%Y-%m}" if month else None
    selected = [
        b for b in batches if bound is None or (start := _period_key(b[9])) is None or start <= bound
    ]
    ids = [b[0] for b in selected]
    by_status: dict[str, int] = {}
    for b in selected:
        by_status[b[3]] = by_status.get(b[3], 0) + 1
    totals = {
        k: sum(b[i] or 0 for b in selected)
        for k, i in (("rows_read", 5), ("rows_loaded", 6), ("rows_quarantined", 7), ("rows_skipped", 8))
    }
    problems = [
        {"dataset": b[1], "source_path": b[2], "status": b[3], "reason": b[4] or "",
         "rows_read": b[5], "rows_quarantined": b[7]}
        for b in selected
        if b[3] in ("failed", "partially_loaded")
    ]
    rules = []
    if ids:
        rules = [
            {"dataset": d, "rule": r, "message": msg, "rows": n, "files": f}
            for d, r, msg, n, f in con.execute(
                """
            SELECT dataset, rule, mode(message) AS message, count(*) AS n,
                   count(DISTINCT batch_id) AS files
            FROM quality.quarantine WHERE list_contains(?::VARCHAR[], batch_id)
            GROUP BY dataset, rule ORDER BY n DESC, dataset, rule""",
                [ids],
            ).fetchall()
        ]
    checks = con.execute(f"""
        SELECT dataset, suite, expectation, severity, success, CAST(observed_value AS VARCHAR),
               unexpected_count
        FROM quality.check_results
        QUALIFY row_number() OVER (PARTITION BY dataset, suite, expectation
                                   ORDER BY {NEWEST_CHECK_FIRST}) = 1
        ORDER BY dataset, suite, expectation""").fetchall()
    failed = [
        {"dataset": d, "suite": s, "expectation": e, "severity": sev, "observed": obs, "unexpected": n}
        for d, s, e, sev, ok, obs, n in checks
        if not ok
    ]
    return {
        "batches": len(selected),
        "by_status": by_status,
        "totals": totals,
        "problems": problems,
        "rules": rules,
        "checks_run": len(checks),
        "checks_failed": failed,
    }


