"""When the pipeline runs: on new files in the landing folder, on the monthly refresh, and the
month's bulletin after every refresh that published the warehouse."""


import hashlib
import json
from pathlib import Path

import dagster as dg

from assets.exports import BULLETIN, BULLETIN_MONTH_METADATA, BULLETIN_MONTHS, SNAPSHOT
from pipelines.instance import WRITER_TAG
from pipelines.resources import LandingFolder

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("landing") - dg.AssetSelection.assets(BULLETIN),
    description="Load every pending landed file, check it, rebuild marts, Parquet exports and the "
    "analysts' snapshot (the bulletin of the latest month follows, see bulletin_sensor).",
    # dagster.yaml (pipelines.instance) limits runs with this tag to one at a time.
    tags={WRITER_TAG: "warehouse"},
)

# One run per month; a backfill over the months writes the bulletin archive.
bulletin_job = dg.define_asset_job(
    "bulletin",
    selection=dg.AssetSelection.assets(BULLETIN),
    description="Write the bulletin of one month (public and internal editions, HTML, Markdown, PDF) "
    "from the published snapshot, and update the archive's index page.",
)

# Departments report the previous month in the first days of the next one.
monthly_refresh = dg.ScheduleDefinition(
    name="monthly_refresh",
    job=refresh_job,
    cron_schedule="0 6 5 * *",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.RUNNING,  # runs wherever a daemon runs (make serve, deploy/)
    description="每月5日06:00（北京时间）全量刷新：月报截止后重算全部指标并发布公报。",
)


def landing_fingerprint(root: Path) -> dict[str, list[float]]:
    """(size, mtime) of every file under the landing folder: cheap to compute, changes on delivery."""
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): [p.stat().st_size, p.stat().st_mtime]
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")}


@dg.sensor(job=refresh_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="新文件落地即触发刷新：落地目录中文件新增或变化时启动 refresh 作业。")
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingFolder):
    current = landing_fingerprint(landing.root)
    previous = json.loads(context.cursor) if context.cursor else {}
    changed = sorted(k for k, v in current.items() if previous.get(k) != v)
    if not changed:
        return dg.SkipReason(f"no new or changed files under {landing.root}")
    context.update_cursor(json.dumps(current))
    digest = hashlib.sha1(json.dumps(current, sort_keys=True).encode()).hexdigest()[:12]
    return dg.RunRequest(run_key=f"landing-{digest}",
                         tags={"govmetrics/changed_files": str(len(changed))})


def bulletin_partition(metadata: dict) -> str | None:
    """The partition for the month a snapshot materialisation announces: that month, or the last
    complete month when the data already reaches into the current one (not a partition yet)."""
    value = metadata.get(BULLETIN_MONTH_METADATA)
    month = getattr(value, "value", value)
    keys = BULLETIN_MONTHS.get_partition_keys()
    if not month or not keys or month < keys[0]:
        return None
    return month if month in keys else min(month, keys[-1])


@dg.asset_sensor(asset_key=SNAPSHOT, job=bulletin_job, minimum_interval_seconds=60,
                 default_status=dg.DefaultSensorStatus.STOPPED,
                 description="快照发布后生成最新一期公报：按快照中最新的统计月份启动 bulletin 作业的对应分区。")
def bulletin_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    materialization = asset_event.asset_materialization
    month = bulletin_partition(dict(materialization.metadata) if materialization else {})
    if month is None:
        return dg.SkipReason("the published snapshot has no month the bulletin archive covers")
    return dg.RunRequest(run_key=f"bulletin-{month}-{asset_event.run_id}", partition_key=month)
