"""``govmetrics``: the command engineers, analysts and the README use.

``govmetrics refresh`` materialises everything pending for what is in the landing folder
(the ``refresh`` job, in process, recorded in the Dagster instance under ``DAGSTER_HOME``),
drawing one bar per file and per step, then prints a summary. It exits non-zero only when
the run itself fails or when it refuses to start (misconfiguration, another refresh writing:
``pipelines.guard``), not because a department sent bad rows or a check blocked publishing
(both are reported). With nothing new in the landing folder it starts no run at all: no
empty materialisations, and an answer in about a second (``--force`` runs anyway, e.g. after
changing KPI SQL). ``--verbose`` prints Dagster's full event log instead of the bars.

Why the process ends with ``os._exit``: Great Expectations validates through SQLAlchemy and
duckdb-engine, whose engine, dialect and reflection caches (``functools.lru_cache`` on
dialect methods) stay referenced until interpreter teardown. When the DuckDB 2.0 extension
module is torn down, its nanobind bindings find DuckDB type objects still referenced from
those caches and print a 40-line "nanobind: leaked …" report. Nothing leaks while the
program runs; the report is about teardown order. Every connection and the Dagster instance
are closed and the output flushed before the command exits without that teardown.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from pipelines.resources import apply_defaults


def _warehouse() -> Path:
    return Path(os.environ["GOVMETRICS_WAREHOUSE"]).resolve()


def _quiet() -> None:
    """A normal run shows bars and a summary, not the loader's log lines in between.

    They are in the Dagster event log (``--verbose``, the UI); failures are in the summary.
    Warnings are not filtered: a normal run raises none, and a new one should be seen and fixed.
    """
    logging.getLogger("govmetrics").setLevel(logging.CRITICAL)


def nothing_new() -> bool:
    """True when the published warehouse has already seen every file in the landing folder."""
    import duckdb

    from assets.ingest.batch import SeenFiles, landed_files
    from expectations.contract import all_contracts

    warehouse = _warehouse()
    if not warehouse.exists():
        return False
    landing = Path(os.environ["GOVMETRICS_LANDING"]).resolve()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        seen = SeenFiles(con)  # a file whose load failed for a pipeline reason is not seen: retried
    return all(seen.has(name, p, landing) for name in all_contracts() for p in landed_files(landing, name))


def refresh(args: argparse.Namespace) -> int:
    apply_defaults()
    from pipelines.guard import guarded_refresh
    from pipelines.report import console, print_status

    out = console()
    # preflight, writer lock, instance, recovery, key check: one line and a non-zero exit on refusal
    with guarded_refresh(args.wait, rotate_key=getattr(args, "yes", False)) as guard:
        if not args.force and nothing_new():
            out.print("落地目录没有新文件或改动的文件：未启动运行（--force 强制重算）。\n")
            print_status(_warehouse(), out)
            return 0
        return _run_refresh(args, out, guard.instance, guard.run_id)


def _run_refresh(args: argparse.Namespace, out, instance, run_id: str) -> int:
    """The refresh job in process (bars or the full log), then the latest month's bulletin."""
    if not args.verbose:
        _quiet()
    from pipelines.definitions import defs, run_bulletin_after
    from pipelines.report import print_summary

    job = defs.resolve_job_def("refresh")
    level = "DEBUG" if args.verbose else "CRITICAL"
    run_config = {"loggers": {"console": {"config": {"log_level": level}}}}
    started = time.time()
    if args.verbose:
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config,
                                        run_id=run_id)
        seconds = {}
    else:
        from pipelines.live import showing

        with showing(out, instance, run_id) as display:
            result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config,
                                            run_id=run_id)
        seconds = {source: t.seconds for source, t in display.timings.items()}
    with out.status("正在生成本月公报（公开版、内部版；HTML、Markdown、PDF）…"):
        bulletin = run_bulletin_after(result, instance, run_config)  # the latest month's bulletin
    out.print()
    blocked_only = print_summary(result, seconds, out, started, bulletin)
    return 0 if (result.success or blocked_only) and (bulletin is None or bulletin.success) else 1


def rotate_key(args: argparse.Namespace) -> int:
    if not args.yes:
        from warehouse.keyring import ROTATION_NOTE

        print(ROTATION_NOTE, file=sys.stderr)
        return 2
    args.force = True
    return refresh(args)


def kpis(args: argparse.Namespace) -> int:
    apply_defaults()
    from pipelines.report import print_kpis

    return print_kpis(_warehouse())


def status(args: argparse.Namespace) -> int:
    apply_defaults()
    from pipelines.report import print_status

    return print_status(_warehouse())


def quarantine(args: argparse.Namespace) -> int:
    apply_defaults()
    from pipelines.report import print_quarantine

    return print_quarantine(_warehouse(), args.dataset, args.department, args.since, args.limit)


def sql(args: argparse.Namespace) -> int:
    apply_defaults()
    from pipelines.report import console
    from pipelines.shell import shell

    return shell(Path(args.database).resolve() if args.database else _warehouse(), args.command, console())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="govmetrics", description="沈阳市政务数据指标流水线 (govmetrics)")
    sub = p.add_subparsers(dest="command_name", required=True)
    r = sub.add_parser("refresh", help="load pending landed files and rebuild everything downstream")
    r.add_argument("--verbose", action="store_true", help="print Dagster's full event log instead of progress bars")
    r.add_argument("--force", action="store_true", help="run even when the landing folder has nothing new")
    r.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                   help="wait this long for a running refresh to finish instead of exiting at once")
    r.set_defaults(func=refresh)
    k = sub.add_parser("rotate-key", help="rebuild the warehouse with a new GOVMETRICS_PII_KEY (see README)")
    k.add_argument("--yes", action="store_true", help="set the old warehouse aside and reload every landed file")
    k.add_argument("--wait", type=float, default=0, metavar="SECONDS")
    k.add_argument("--verbose", action="store_true")
    k.set_defaults(func=rotate_key)
    sub.add_parser("kpis", help="print the latest KPI values from the published warehouse").set_defaults(func=kpis)
    sub.add_parser("status", help="freshness per dataset and department, last batches, failing checks"
                   ).set_defaults(func=status)
    q = sub.add_parser("quarantine", help="rejected rows with department, reason and correction status")
    q.add_argument("--dataset", help="e.g. service_cases")
    q.add_argument("--department", help="department code, or part of its name (e.g. 公安)")
    q.add_argument("--since", help="received on or after this date, e.g. 2026-12-01")
    q.add_argument("--limit", type=int, default=50)
    q.set_defaults(func=quarantine)
    s = sub.add_parser("sql", help="read-only SQL shell on the published warehouse")
    s.add_argument("-c", dest="command", help="run these statements and exit")
    s.add_argument("database", nargs="?", help="DuckDB file (default: GOVMETRICS_WAREHOUSE)")
    s.set_defaults(func=sql)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


def entry_point() -> None:
    """The ``govmetrics`` console script: run, flush, exit without interpreter teardown (see above)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    entry_point()
