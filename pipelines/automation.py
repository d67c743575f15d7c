"""When the pipeline runs: on new files in the landing folder, and on the monthly refresh."""


import hashlib
import json
from pathlib import Path

import dagster as dg

from pipelines.instance import WRITER_TAG
from pipelines.resources import LandingFolder

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("landing"),
    description="Load every pending landed file, check it, rebuild marts, exports, bulletin "
    "and the analysts' snapshot.",
    # dagster.yaml (pipelines.instance) limits runs with this tag to one at a time.
    tags={WRITER_TAG: "warehouse"},
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
