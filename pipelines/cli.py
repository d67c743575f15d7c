"""``govmetrics``: the command engineers and the README use.

``govmetrics refresh`` materialises everything pending for what is in the landing folder
(the ``refresh`` job, in process, recorded in the Dagster instance under ``DAGSTER_HOME``)
and prints a summary. It exits non-zero when the run itself fails or when it refuses to start
(misconfiguration, another refresh writing: ``pipelines.guard``), not because a department
sent bad rows or a check blocked publishing (both are reported).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipelines.resources import apply_defaults

# Progress (one line per file and check failure) without Dagster's per-event debug lines.
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def refresh(args: argparse.Namespace) -> int:
    apply_defaults()
    from pipelines.definitions import defs
    from pipelines.guard import guarded_refresh

    job = defs.resolve_job_def("refresh")
    # preflight, writer lock, recovery (one line and a non-zero exit on refusal)
    with guarded_refresh(args.wait, rotate_key=getattr(args, "yes", False)) as guard:
        result = job.execute_in_process(instance=guard.instance, run_id=guard.run_id,
                                        raise_on_error=False, run_config=QUIET)
    from pipelines.report import print_summary

    blocked_only = print_summary(result)
    if result.success or blocked_only:
        return 0
    return 1


def rotate_key(args: argparse.Namespace) -> int:
    if not args.yes:
        from warehouse.keyring import ROTATION_NOTE

        print(ROTATION_NOTE, file=sys.stderr)
        return 2
    return refresh(args)


def kpis(args: argparse.Namespace) -> int:
    apply_defaults()
    from pipelines.report import print_kpis

    return print_kpis(Path(os.environ["GOVMETRICS_WAREHOUSE"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="govmetrics", description="沈阳市政务数据指标流水线 (govmetrics)")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("refresh", help="load pending landed files and rebuild everything downstream")
    cmd.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                     help="wait this long for a running refresh to finish instead of exiting at once")
    cmd.set_defaults(func=refresh)
    cmd = sub.add_parser("rotate-key", help="rebuild the warehouse with a new GOVMETRICS_PII_KEY (see README)")
    cmd.add_argument("--yes", action="store_true", help="set the old warehouse aside and reload every landed file")
    cmd.add_argument("--wait", type=float, default=0, metavar="SECONDS")
    cmd.set_defaults(func=rotate_key)
    sub.add_parser("kpis", help="print the latest KPI values from the published warehouse").set_defaults(func=kpis)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
