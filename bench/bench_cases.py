"""Benchmark: the real pipeline on a 1,000,000-row case export against bare DuckDB.

Run with ``make bench`` (not part of the tests). Each side runs in its own subprocess so that
its peak memory (ru_maxrss) is its own. Results are printed and written to
``bench/results/<UTC timestamp>-<git sha>.json`` so runs can be compared.

- bare: ``CREATE TABLE t AS SELECT * FROM read_csv('<file>')`` in a fresh DuckDB file.
- pipeline: Dagster materialisation of core/org_units, core/service_items and
  core/service_cases (read, normalise, pseudonymise, judge every row, merge with history,
  then the GX suite as asset checks) into a fresh warehouse.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent


def generate(landing: Path, rows: int, encoding: str) -> Path:
    """Registers plus a case export of ``rows`` rows, built with vectorised polars expressions."""
    (landing / "org_units").mkdir(parents=True)
    (landing / "service_items").mkdir(parents=True)
    (landing / "service_cases").mkdir(parents=True)
    depts = [f"D{i:03d}" for i in range(50)]
    regions = [f"2101{i:02d}" for i in range(2, 16)]
    pl.DataFrame({
        "编码": depts + regions, "名称": [f"单位{c}" for c in depts + regions],
        "类型": ["市级部门"] * len(depts) + ["区县"] * len(regions),
        "是否接入平台": ["是"] * (len(depts) + len(regions)),
    }).write_csv(landing / "org_units" / "org_units.csv")
    items = pl.DataFrame({"事项编码": [f"I{i:04d}" for i in range(500)]}).with_columns(
        pl.lit("事项").alias("事项名称"),
        pl.format("D{}", (pl.int_range(0, 500) % 50).cast(pl.String).str.zfill(3)).alias("实施部门编码"),
        pl.lit("即办件").alias("办理类型"), pl.lit("是").alias("是否可网办"), pl.lit("是").alias("是否全程网办"),
        pl.lit("5").alias("承诺办结时限（工作日）"), pl.lit("1").alias("版本号"), pl.lit("在用").alias("事项状态"))
    items.write_csv(landing / "service_items" / "items.csv")

    n = pl.int_range(0, rows, eager=True)
    applied = pl.datetime(2023, 1, 1) + pl.duration(minutes=n * 7 % (90 * 24 * 60))
    frame = pl.select(
        办件编号=pl.format("SY{}", n + 10_000_000),
        事项编码=pl.format("I{}", (n * 7919 % 500).cast(pl.String).str.zfill(4)),
        实施部门编码=pl.format("D{}", (n % 50).cast(pl.String).str.zfill(3)),
        行政区划代码=pl.format("2101{}", (n % 14 + 2).cast(pl.String).str.zfill(2)),
        申办渠道=pl.when(n % 17 == 0).then(pl.lit("窗口办理"))
        .when(n % 3 == 0).then(pl.lit("移动端"))
        .otherwise(pl.lit("网上办理")),
        申请时间=applied.dt.strftime("%Y-%m-%d %H:%M:%S"),
        受理时间=(applied + pl.duration(minutes=30)).dt.strftime("%Y-%m-%d %H:%M:%S"),
        办结时间=(applied + pl.duration(hours=n % 72)).dt.strftime("%Y/%m/%d %H:%M"),
        办理状态=pl.lit("已办结"),
        是否全程网办=pl.when(n % 5 == 0).then(pl.lit("否")).otherwise(pl.lit("是")),
        申请人证件号码=pl.format("2101{}", (n * 104729 % 10**14).cast(pl.String).str.zfill(14)),
        联系电话=pl.format("13{}", (n * 7 % 10**9).cast(pl.String).str.zfill(9)),
    )
    path = landing / "service_cases" / f"cases_{rows}.csv"
    if encoding == "utf-8":
        frame.write_csv(path)
    else:
        path.write_bytes(frame.write_csv().encode(encoding))
    return path


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_bare(csv: Path, work: Path, encoding: str) -> dict:
    """``CREATE TABLE AS SELECT * FROM read_csv``; a GBK file needs DuckDB's ``encodings``
    extension, and where that cannot be loaded (it is downloaded on first use) the file is first
    transcoded to UTF-8 in 16 MiB blocks, inside the timing: the least a bare load has to do."""
    import codecs

    import duckdb

    started = time.perf_counter()
    with duckdb.connect(str(work / "bare.duckdb")) as con:
        method = "read_csv"
        if encoding != "utf-8":
            try:
                con.execute("LOAD encodings")
                method = f"read_csv(encoding='{encoding}')"
            except duckdb.Error:
                decoder = codecs.getincrementaldecoder(encoding)()
                utf8 = work / "bare.utf8.csv"
                with csv.open("rb") as fin, utf8.open("wb") as fout:
                    while block := fin.read(16 << 20):
                        fout.write(decoder.decode(block).encode("utf-8"))
                    fout.write(decoder.decode(b"", final=True).encode("utf-8"))
                csv, encoding, method = utf8, "utf-8", "python transcode to utf-8 + read_csv"
        con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?, encoding = ?)", [str(csv), encoding])
        rows = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
    return {"seconds": time.perf_counter() - started, "rows": rows, "peak_mib": peak_mib(), "method": method}


def phase_pipeline(landing: Path, work: Path) -> dict:
    import dagster as dg
    import duckdb

    from assets.core import core_assets, landing_specs
    from pipelines.resources import ExportsFolder, LandingFolder, PersonalDataKey, Warehouse

    wanted = {"core/org_units", "core/service_items", "core/service_cases"}
    selected = [a for a in core_assets if a.key.to_user_string() in wanted]
    started = time.perf_counter()
    result = dg.materialize(
        [*landing_specs, *selected],
        resources={"landing": LandingFolder(path=str(landing)),
                   "warehouse": Warehouse(path=str(work / "wh" / "gm.duckdb")),
                   "exports": ExportsFolder(path=str(work / "exports")),
                   "personal_data_key": PersonalDataKey(key="bench")},
    )
    seconds = time.perf_counter() - started
    with duckdb.connect(str(work / "wh" / "gm.writer.duckdb"), read_only=True) as con:
        loaded = con.execute("SELECT sum(rows_loaded) FROM quality.load_batches "
                             "WHERE dataset = 'service_cases'").fetchall()[0][0]
    return {"seconds": seconds, "rows": loaded, "peak_mib": peak_mib(), "success": result.success}


def run_conditions() -> dict:
    """What else shapes the numbers: machine load, and whether Python can cache bytecode.

    Great Expectations is imported inside the measured run (~5 s from cached bytecode); with
    ``PYTHONDONTWRITEBYTECODE`` set and no precompiled ``.pyc`` files it is compiled from
    source on every run, which adds ~6 s to the pipeline side.
    """
    from pipelines.resources import Warehouse

    return {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
            "writer_memory_limit": Warehouse.model_fields["memory_limit"].default,
            **{v: os.environ.get(v) for v in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}}


def run_phase(name: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", name, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{name} phase failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--encoding", default="utf-8", choices=["utf-8", "gbk"])
    parser.add_argument("--phase", choices=["bare", "pipeline"])
    parser.add_argument("--landing")
    parser.add_argument("--csv")
    parser.add_argument("--work")
    args = parser.parse_args()
    if args.phase == "bare":
        print(json.dumps(phase_bare(Path(args.csv), Path(args.work), args.encoding)))
        return 0
    if args.phase == "pipeline":
        print(json.dumps(phase_pipeline(Path(args.landing), Path(args.work))))
        return 0

    conditions = run_conditions()
    with tempfile.TemporaryDirectory(prefix="govmetrics-bench-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        csv = generate(tmp / "landing", args.rows, args.encoding)
        print(f"generated {args.rows:,} rows ({csv.stat().st_size / 2**20:.0f} MiB, {args.encoding}) "
              f"in {time.perf_counter() - t:.1f}s")
        (tmp / "bare").mkdir()
        bare = run_phase("bare", "--csv", str(csv), "--work", str(tmp / "bare"), "--encoding", args.encoding)
        pipe = run_phase("pipeline", "--landing", str(tmp / "landing"), "--work", str(tmp / "pipe"))
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=HERE).stdout.strip() or "unknown"
    report = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "git": sha, "rows": args.rows,
              "encoding": args.encoding, "bare_duckdb": bare, "pipeline": pipe,
              "ratio": pipe["seconds"] / bare["seconds"], "conditions": conditions}
    print(f"{'':<12}{'seconds':>10}{'rows':>12}{'peak MiB':>10}")
    print(f"{'bare duckdb':<12}{bare['seconds']:>10.2f}{bare['rows']:>12,}{bare['peak_mib']:>10.0f}"
          f"  ({bare['method']})")
    print(f"{'pipeline':<12}{pipe['seconds']:>10.2f}{pipe['rows']:>12,}{pipe['peak_mib']:>10.0f}")
    print(f"ratio pipeline / bare DuckDB: {report['ratio']:.1f}x")
    print(f"conditions: {conditions}")
    out = HERE / "results" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{sha}-{args.encoding}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written {out.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
