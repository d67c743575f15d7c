"""Benchmark: a whole ``govmetrics refresh`` against bare DuckDB and a pandas + GX script.

``make bench`` (1M case rows), ``make bench ROWS=10M``, ``make bench ROWS=full`` (70,854,000
cases and 46,522,000 reviews, the bureau's cumulative volume), ``ENCODING=gbk``,
``INCREMENTAL=1`` (two 2,000,000-row monthly deliveries into the warehouse the base run built,
the second the steady state, then ``govmetrics refresh`` run twice more with nothing new). Not
part of the tests.

Every side runs in its own subprocess on the same generated files, so each peak memory is its own:

- bare: ``CREATE TABLE AS SELECT * FROM read_csv(...)`` of every file of the landing folder into
  a fresh DuckDB file (a GBK file is transcoded to UTF-8 first, inside the timing: this DuckDB
  cannot load its ``encodings`` extension offline).
- pipeline: the ``refresh`` job in process (load, GX suites, marts, Parquet exports, bulletin,
  analysts' snapshot), exactly what ``govmetrics refresh`` runs, on an ephemeral Dagster instance.
  Reports seconds and peak memory per step and per loading phase (read, normalise, judge, merge,
  gx, publish), and checks that every row read is accounted for.
- peer: ``bench/peer_pandas_gx.py`` on the case file (skipped above 10M rows: pandas holds the
  whole frame, about 40 GB at full volume, more than this machine has).

Results are printed and written to ``bench/results/<UTC time>-<git sha>-<label>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import generate  # noqa: E402  (bench/generate.py, beside this file)

INCREMENT = 2_000_000
MONTHS = 2  # incremental deliveries: the first publish after the full load is a full copy
PEER_MAX_ROWS = 10_000_000
EXPORTS = ("service_cases", "service_reviews")  # the generated exports, in the encoding asked for


# --------------------------------------------------------------------------------------------------
# sides (each runs in a subprocess: ``--side NAME``)


class RssSampler(threading.Thread):
    """Samples this process's resident memory every 0.2 s, for per-step peaks."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            with open("/proc/self/statm") as f:
                pages = int(f.read().split()[1])
            self.samples.append((time.time(), pages * os.sysconf("SC_PAGE_SIZE") / 2**20))

    def peak(self, start: float, end: float) -> float:
        return max((rss for t, rss in self.samples if start <= t <= end), default=0.0)


def side_bare(landing: Path, work: Path, encoding: str) -> dict:
    import codecs

    import duckdb

    from assets.ingest.batch import peak_rss_mib

    started = time.perf_counter()
    rows = 0
    with duckdb.connect(str(work / "bare.duckdb")) as con:
        for i, csv in enumerate(sorted(landing.rglob("*.csv"))):
            if encoding != "utf-8" and csv.parent.name in EXPORTS:  # the registers are UTF-8 (generate.py)
                decoder, utf8 = codecs.getincrementaldecoder(encoding)(), work / f"bare{i}.utf8.csv"
                with csv.open("rb") as fin, utf8.open("wb") as fout:
                    while block := fin.read(16 << 20):
                        fout.write(decoder.decode(block).encode("utf-8"))
                csv = utf8
            con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv(?)", [str(csv)])
            rows += con.execute(f"SELECT count(*) FROM t{i}").fetchall()[0][0]
    return {"seconds": time.perf_counter() - started, "rows": rows, "peak_mib": peak_rss_mib()}


def side_pipeline(landing: Path, work: Path) -> dict:
    os.environ.update({"GOVMETRICS_LANDING": str(landing), "GOVMETRICS_WAREHOUSE": str(work / "wh" / "gm.duckdb"),
                       "GOVMETRICS_EXPORTS": str(work / "exports"), "GOVMETRICS_PII_KEY": "bench"})
    sampler = RssSampler()
    sampler.start()
    started = time.perf_counter()
    import dagster as dg

    from assets.ingest.batch import peak_rss_mib
    from pipelines.definitions import defs

    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("refresh").execute_in_process(instance=instance, raise_on_error=False,
                                                                    run_config=quiet)
        seconds = time.perf_counter() - started
        steps, phases, peaks, snapshot = _run_profile(instance, result.run_id, sampler)
    sampler.stop.set()
    return {"seconds": seconds, "success": result.success, "peak_mib": peak_rss_mib(), "steps": steps,
            "phase_seconds": phases, "phase_peak_mib": peaks, "snapshot": snapshot, "rows": _accounting(work)}


def _run_profile(instance, run_id: str, sampler: RssSampler):
    """Seconds and peak memory per step, loading phases summed over core assets, the snapshot."""
    starts: dict[str, float] = {}
    steps: dict[str, dict] = {}
    phases: dict[str, float] = {}
    peaks: dict[str, float] = {}
    snapshot: dict = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        kind = event.event_type_value
        if kind == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
            begin = starts[event.step_key]
            steps[event.step_key] = {"seconds": round(entry.timestamp - begin, 2), "status": kind[5:].lower(),
                                     "peak_mib": round(sampler.peak(begin, entry.timestamp))}
            if kind == "STEP_FAILURE":  # the innermost error: what actually went wrong
                error = event.event_specific_data.error
                while error is not None and (error.cause or error.context):
                    error = error.cause or error.context
                steps[event.step_key]["error"] = (error.message.strip().splitlines() or [""])[0] if error else ""
        elif kind == "ASSET_MATERIALIZATION":
            meta = {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
            for phase, s in (meta.get("phase_seconds") or {}).items():
                phases[phase] = round(phases.get(phase, 0.0) + s, 2)
            for phase, p in (meta.get("phase_peak_mib") or {}).items():
                peaks[phase] = max(peaks.get(phase, 0), p)
            if "seconds" in meta and "bytes" in meta:
                snapshot = {k: meta[k] for k in ("seconds", "bytes", "bytes_written", "from_spare") if k in meta}
    if snapshot:
        phases["publish"] = snapshot["seconds"]
        publish = next((s for k, s in steps.items() if "snapshot" in k), None)
        peaks["publish"] = publish["peak_mib"] if publish else 0
    return steps, phases, peaks, snapshot


def _accounting(work: Path) -> dict:
    """Rows per dataset from quality.load_batches, and whether every batch's rows add up."""
    import duckdb

    with duckdb.connect(str(work / "wh" / "gm.writer.duckdb"), read_only=True) as con:
        rows = con.execute("""
            SELECT dataset, sum(rows_read)::BIGINT, sum(rows_loaded)::BIGINT, sum(rows_quarantined)::BIGINT,
                   sum(rows_skipped)::BIGINT, bool_and(rows_read = rows_loaded + rows_quarantined + rows_skipped),
                   list(DISTINCT status ORDER BY status), list(reason) FILTER (WHERE status = 'failed')
            FROM quality.load_batches GROUP BY ALL ORDER BY ALL""").fetchall()
    return {d: {"read": r, "loaded": lo, "quarantined": q, "skipped": s, "adds_up": ok, "statuses": st,
                "failures": failed or []}
            for d, r, lo, q, s, ok, st, failed in rows}


def side_peer(csv: Path, work: Path, encoding: str) -> dict:
    import peer_pandas_gx

    return peer_pandas_gx.main(str(csv), str(work), encoding)


# --------------------------------------------------------------------------------------------------
# the driver


def run_side(name: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--side", name, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{name} side failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{name}: {result.get('seconds', 0):.1f} s, peak {result.get('peak_mib', 0):.0f} MiB", flush=True)
    return result


def parse_rows(text: str) -> int:
    if text == "full":
        return generate.FULL_CASES
    text = text.upper().replace("_", "")
    return int(float(text[:-1]) * 1_000_000) if text.endswith("M") else int(text)


def prepare(base: Path, cases: int, reviews: int, encoding: str) -> Path:
    """Generate the landing folder once per (rows, reviews, encoding); reused by later runs in ``base``."""
    landing = base / f"landing-{cases}-{reviews}-{encoding}"
    done = landing / ".complete"
    if done.exists():
        print(f"reusing {landing}")
        return landing
    started = time.perf_counter()
    generate.registers(landing)
    generate.cases(landing, cases, encoding)
    if reviews:
        generate.reviews(landing, reviews, cases, encoding)
    done.touch()
    size = sum(p.stat().st_size for p in landing.rglob("*.csv"))
    print(f"generated {cases:,} cases + {reviews:,} reviews ({size / 2**30:.2f} GiB, {encoding}) "
          f"in {time.perf_counter() - started:.0f} s")
    return landing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1M", help="case rows: 1M (default), 10M, full, or a number")
    parser.add_argument("--reviews", default=None, help="review rows (default: 46,522,000 with --rows full, else 0)")
    parser.add_argument("--encoding", default="utf-8", choices=["utf-8", "gbk"])
    parser.add_argument("--incremental", action="store_true",
                        help="then load two 2,000,000-row monthly deliveries and rerun with nothing new")
    parser.add_argument("--workdir", help="keep generated files here and reuse them (default: a temp folder)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the run's warehouses and exports (under the workdir) after a successful run, "
                             "e.g. to profile queries on them")
    parser.add_argument("--side", choices=["bare", "pipeline", "peer"])
    parser.add_argument("--landing")
    parser.add_argument("--work")
    parser.add_argument("--csv")
    args = parser.parse_args()

    if args.side:
        work = Path(args.work)
        if args.side == "bare":
            out = side_bare(Path(args.landing), work, args.encoding)
        elif args.side == "pipeline":
            out = side_pipeline(Path(args.landing), work)
        else:
            out = side_peer(Path(args.csv), work, args.encoding)
        print(json.dumps(out, default=str))
        return 0

    cases = parse_rows(args.rows)
    reviews = parse_rows(args.reviews) if args.reviews else (generate.FULL_REVIEWS if args.rows == "full" else 0)
    base = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="govmetrics-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    landing = prepare(base, cases, reviews, args.encoding)
    run = base / f"run-{os.getpid()}"
    for sub in ("bare", "pipe", "peer"):
        (run / sub).mkdir(parents=True)
    conditions = {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
                  "memory_limit": _writer_memory_limit()}

    report: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "git": _git_sha(),
                    "cases": cases, "reviews": reviews, "encoding": args.encoding, "conditions": conditions}
    report["bare"] = run_side("bare", "--landing", str(landing), "--work", str(run / "bare"),
                              "--encoding", args.encoding)
    report["pipeline"] = run_side("pipeline", "--landing", str(landing), "--work", str(run / "pipe"))
    case_csv = next((landing / "service_cases").glob("*.csv"))
    if cases <= PEER_MAX_ROWS:
        report["peer"] = run_side("peer", "--csv", str(case_csv), "--work", str(run / "peer"),
                                  "--encoding", args.encoding)
    else:
        report["peer"] = {"skipped": f"pandas holds the whole frame: ~40 GB at {cases:,} rows, more than this "
                                     f"machine's memory"}
    if args.incremental:
        report["incremental"] = incremental(landing, run, cases, args.encoding)
    _print(report)
    label = f"{args.rows}-{args.encoding}" + ("-incremental" if args.incremental else "")
    out = HERE / "results" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{report['git']}-{label}.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n")
    print(f"written {out.relative_to(ROOT)}")
    if report["pipeline"]["success"]:
        if args.keep:
            print(f"kept: {run}")
        else:
            _cleanup(run)
        return 0
    print(f"the pipeline failed: its warehouse is kept in {run / 'pipe'}")
    return 1


def incremental(landing: Path, run: Path, base_cases: int, encoding: str) -> dict:
    """MONTHS monthly deliveries of INCREMENT new cases each into the warehouse the base run built,
    then a rerun with nothing new. The last month is the steady state: the first publish after
    the full load has no spare snapshot yet and copies the whole file (``warehouse.snapshot``)."""
    months, delivered = [], []
    try:
        for month in range(1, MONTHS + 1):
            csv = generate.cases(run / "delivery", INCREMENT, encoding,
                                 first_case=base_cases + (month - 1) * INCREMENT, name=f"cases_month_{month}.csv")
            target = landing / "service_cases" / csv.name
            os.replace(csv, target)
            delivered.append(target)
            bare_work, only = run / f"bare-inc-{month}", run / f"only-{month}"
            bare_work.mkdir()
            (only / "service_cases").mkdir(parents=True)
            os.link(target, only / "service_cases" / target.name)
            bare = run_side("bare", "--landing", str(only), "--work", str(bare_work), "--encoding", encoding)
            pipe = run_side("pipeline", "--landing", str(landing), "--work", str(run / "pipe"))
            months.append({"month": month, "rows": INCREMENT, "bare": bare, "pipeline": pipe})
        rerun = cli_rerun(landing, run / "pipe")
    finally:
        for target in delivered:
            target.unlink(missing_ok=True)
    return {**months[-1], "earlier_months": months[:-1], "rerun": rerun}


def cli_rerun(landing: Path, work: Path) -> dict:
    """``govmetrics refresh`` with nothing new, as an operator runs it (a new process each time):
    twice, the first creating the Dagster instance, the second the steady state."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GOVMETRICS_LANDING": str(landing),
           "GOVMETRICS_WAREHOUSE": str(work / "wh" / "gm.duckdb"), "GOVMETRICS_EXPORTS": str(work / "exports"),
           "GOVMETRICS_PII_KEY": "bench", "DAGSTER_HOME": str(work / "dagster-home")}
    (work / "dagster-home").mkdir(exist_ok=True)
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "pipelines.cli", "refresh"], cwd=ROOT, env=env,
                             capture_output=True, text=True)
        runs.append({"seconds": round(time.perf_counter() - started, 2), "exit": out.returncode,
                     "started_a_run": "未启动运行" not in out.stdout})
    print(f"govmetrics refresh with nothing new: {runs[0]['seconds']:.1f} s, then {runs[1]['seconds']:.1f} s",
          flush=True)
    return {**runs[1], "first": runs[0]}


def _print(report: dict) -> None:
    bare, pipe, peer = report["bare"], report["pipeline"], report["peer"]
    print(f"\n{report['cases']:,} cases + {report['reviews']:,} reviews, {report['encoding']}, "
          f"git {report['git']}, {report['conditions']}")
    print(f"{'side':<34}{'seconds':>10}{'ratio':>8}{'peak MiB':>10}")
    print(f"{'bare DuckDB read_csv':<34}{bare['seconds']:>10.1f}{1:>8.1f}{bare['peak_mib']:>10.0f}")
    print(f"{'govmetrics refresh (whole job)':<34}{pipe['seconds']:>10.1f}{pipe['seconds'] / bare['seconds']:>8.1f}"
          f"{pipe['peak_mib']:>10.0f}  success={pipe['success']}")
    if "seconds" in peer:
        print(f"{'pandas + GX script':<34}{peer['seconds']:>10.1f}{peer['seconds'] / bare['seconds']:>8.1f}"
              f"{peer['peak_mib']:>10.0f}  (pipeline is {peer['seconds'] / pipe['seconds']:.1f}x faster)")
    else:
        print(f"{'pandas + GX script':<34}  skipped: {peer['skipped']}")
    print("pipeline phases (s / peak MiB): " + ", ".join(
        f"{k} {v:.1f}/{pipe['phase_peak_mib'].get(k, 0):.0f}" for k, v in pipe["phase_seconds"].items()))
    print("pipeline steps (s / peak MiB): " + ", ".join(
        f"{k} {v['seconds']:.1f}/{v['peak_mib']}" for k, v in pipe["steps"].items()))
    for step, v in pipe["steps"].items():
        if v.get("error"):
            print(f"  step {step} failed: {v['error']}")
    for dataset, r in pipe["rows"].items():
        print(f"  {dataset:<20} read {r['read']:>12,} loaded {r['loaded']:>12,} quarantined {r['quarantined']:>9,} "
              f"skipped {r['skipped']:>5,} adds up: {r['adds_up']}  {r['statuses']}")
        for reason in r["failures"]:
            print(f"    failed: {reason}")
    if inc := report.get("incremental"):
        for month in [*inc["earlier_months"], inc]:
            b, p = month["bare"], month["pipeline"]
            snap = p["snapshot"]
            publish = snap.get("seconds", 0.0)
            print(f"incremental month {month['month']}, {month['rows']:,} rows: bare {b['seconds']:.1f} s; "
                  f"pipeline {p['seconds']:.1f} s ({p['seconds'] / b['seconds']:.1f}x bare, "
                  f"{p['seconds'] / (b['seconds'] + publish):.1f}x bare+publish), success={p['success']}, "
                  f"peak {p['peak_mib']:.0f} MiB; publish {publish:.1f} s, wrote "
                  f"{snap.get('bytes_written', 0) / 2**20:,.0f} of {snap.get('bytes', 0) / 2**20:,.0f} MiB "
                  f"({'the spare brought up to date' if snap.get('from_spare') else 'a full copy'})")
            print("  steps (s): " + ", ".join(f"{k} {v['seconds']:.1f}" for k, v in p["steps"].items()))
        r = inc["rerun"]
        print(f"govmetrics refresh with nothing new: {r['seconds']:.1f} s (exit {r['exit']}, "
              f"started a run: {r['started_a_run']}; first call, creating the instance: {r['first']['seconds']:.1f} s)")


def _cleanup(run: Path) -> None:
    import shutil

    shutil.rmtree(run, ignore_errors=True)


def _writer_memory_limit() -> str:
    from pipelines.resources import Warehouse

    return Warehouse.model_fields["memory_limit"].default


def _git_sha() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
