"""The code location: every asset, check, job, schedule and sensor, assembled in one place.

``dagster dev`` (see the Makefile's ``dev`` target) and ``govmetrics refresh`` both load
``defs`` from here. Nothing reads the environment at import: resources take ``EnvVar``s,
resolved when a run starts.
"""

from __future__ import annotations

import dagster as dg

from assets.core import core_assets, cross_checks, landing_specs
from assets.exports import SNAPSHOT, bulletin, parquet, returns, warehouse_snapshot
from assets.marts import marts
from assets.quality import load_summary
from pipelines.automation import (
    bulletin_job,
    bulletin_partition,
    bulletin_sensor,
    landing_sensor,
    monthly_refresh,
    refresh_job,
)
from pipelines.resources import ExportsFolder, LandingFolder, PersonalDataKey, Warehouse


def resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "landing": LandingFolder(path=dg.EnvVar("GOVMETRICS_LANDING")),
        "warehouse": Warehouse(path=dg.EnvVar("GOVMETRICS_WAREHOUSE")),
        "exports": ExportsFolder(path=dg.EnvVar("GOVMETRICS_EXPORTS")),
        "personal_data_key": PersonalDataKey(key=dg.EnvVar("GOVMETRICS_PII_KEY")),
    }


ASSETS = [*landing_specs, *core_assets, load_summary, marts, parquet, bulletin, returns, warehouse_snapshot]

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=cross_checks,
    jobs=[refresh_job, bulletin_job],
    schedules=[monthly_refresh],
    sensors=[landing_sensor, bulletin_sensor],
    resources=resources(),
    # One DuckDB writer at a time: steps run in one process, in dependency order.
    executor=dg.in_process_executor,
)


def run_bulletin_after(refresh: dg.ExecuteInProcessResult, instance: dg.DagsterInstance,
                       run_config: dict | None = None) -> dg.ExecuteInProcessResult | None:
    """In process, what ``bulletin_sensor`` does under ``dagster dev``: when the refresh published
    the warehouse, run the ``bulletin`` job for the month the snapshot announces (``govmetrics
    refresh`` and the tests call this). None when nothing was published."""
    for event in refresh.get_asset_materialization_events():
        if event.asset_key == SNAPSHOT and (month := bulletin_partition(dict(event.materialization.metadata))):
            job = defs.resolve_job_def("bulletin")
            return job.execute_in_process(instance=instance, partition_key=month, raise_on_error=False,
                                          run_config=run_config)
    return None
