"""Profile the loader alone: one generated case file into a fresh warehouse, under cProfile.

    .venv/bin/python bench/profile_load.py [ROWS] [--workdir DIR] [--top N] [--plain]

Loads the registers the case rules reference, then the case export, with ``load_file`` (what
the core assets call per file), and prints the loader's phases (read, normalise, judge, merge)
and the functions with the most cumulative time. The generated files are reused from
``--workdir`` (``make bench`` keeps them there too). Not part of the tests.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import duckdb  # noqa: E402
from bench_refresh import parse_rows, prepare  # noqa: E402

from assets.ingest.batch import load_file  # noqa: E402
from expectations.contract import all_contracts  # noqa: E402
from pipelines.resources import Warehouse  # noqa: E402
from warehouse.ddl import create_all  # noqa: E402
from warehouse.writer import writer_config  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", default="1M", help="case rows: 1M (default), 10M, or a number")
    parser.add_argument("--workdir", help="reuse generated files here (default: a temp folder)")
    parser.add_argument("--top", type=int, default=30, help="functions listed (by cumulative time)")
    parser.add_argument("--plain", action="store_true", help="time the load without cProfile (for A/B runs)")
    args = parser.parse_args()

    base = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="govmetrics-profile-"))
    landing = prepare(base, parse_rows(args.rows), 0, "utf-8")
    with tempfile.TemporaryDirectory(prefix="govmetrics-profile-wh-") as tmp:
        path = Path(tmp) / "wh.duckdb"
        con = duckdb.connect(str(path), config=writer_config(path, Warehouse.model_fields["memory_limit"].default))
        create_all(con)
        contracts = all_contracts()
        for dataset in ("org_units", "service_items"):
            for f in sorted((landing / dataset).iterdir()):
                load_file(con, contracts[dataset], f, landing, b"profile", progress=lambda _: None)
        case_file = next((landing / "service_cases").glob("*.csv"))
        profiler = cProfile.Profile()
        started = time.perf_counter()
        if not args.plain:
            profiler.enable()
        result = load_file(con, contracts["service_cases"], case_file, landing, b"profile", progress=lambda _: None)
        profiler.disable()
        seconds = time.perf_counter() - started
        con.close()
    print(f"{case_file.name}: {result.status}, read {result.rows_read:,}, loaded {result.rows_loaded:,}, "
          f"quarantined {result.rows_quarantined:,} in {seconds:.1f} s")
    print("phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
    if not args.plain:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
