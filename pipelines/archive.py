"""``make bulletins``: the bulletin archive in process, one ``bulletin`` run per month.

What a backfill of the ``bulletin`` job does in ``make dev`` (Materialize -> partitions), without
the daemon: one run per month partition, recorded in the instance under ``DAGSTER_HOME``, from
the first month the published warehouse has KPI or volume figures for to the latest.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg
import duckdb

from assets.exports import BULLETIN_MONTHS

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def months_with_data(warehouse: Path) -> list[str]:
    """The archive's months (partition keys) from the first month with figures to the latest."""
    from warehouse.bulletin import latest_month

    with duckdb.connect(str(warehouse), read_only=True) as con:
        first = con.execute(
            "SELECT min(period_start) FROM marts.kpi_values WHERE scope = 'city' AND period_grain = 'month'"
        ).fetchone()[0]
        last = latest_month(con)
    if first is None or last is None:
        return []
    return [k for k in BULLETIN_MONTHS.get_partition_keys() if f"{first:%Y-%m}" <= k <= f"{last:%Y-%m}"]


def backfill(instance: dg.DagsterInstance, months: list[str], run_config: dict | None = None) -> dict:
    """Run the ``bulletin`` job for each month; {month: result}."""
    from pipelines.definitions import defs

    job = defs.resolve_job_def("bulletin")
    return {
        m: job.execute_in_process(instance=instance, partition_key=m, raise_on_error=False, run_config=run_config)
        for m in months
    }


def main() -> int:
    from pipelines.instance import dagster_home
    from pipelines.resources import apply_defaults

    apply_defaults()
    dagster_home()
    warehouse = Path(os.environ["GOVMETRICS_WAREHOUSE"]).resolve()
    if not warehouse.exists():
        print(f"no published warehouse at {warehouse}: run `make run` first")
        return 1
    months = months_with_data(warehouse)
    with dg.DagsterInstance.get() as instance:
        results = backfill(instance, months, QUIET)
    for month, result in results.items():
        print(f"{month}  {'ok' if result.success else 'FAILED'}  run {result.run_id}")
    print(f"index: {Path(os.environ['GOVMETRICS_EXPORTS']).resolve() / 'bulletin' / 'index.html'}")
    return 0 if all(r.success for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
