"""Exports: Parquet for report generators, the analysts' snapshot, and the bureau's monthly bulletin.

The bulletin is partitioned by month and reads the published snapshot (read-only), so a
backfill over many months never waits for the writer and states what analysts see.
"""

import dagster as dg
import duckdb

from assets.core import OWNERS
from assets.marts import KPI_VALUES, SERVICE_VOLUME
from assets.quality import QUALITY_SUMMARY
from pipelines.resources import ExportsFolder, Warehouse

PARQUET = dg.AssetKey(["exports", "parquet"])
BULLETIN = dg.AssetKey(["exports", "bulletin"])
SNAPSHOT = dg.AssetKey(["exports", "warehouse_snapshot"])
RETURNS = dg.AssetKey(["exports", "returns"])


@dg.asset(key=PARQUET, deps=[SERVICE_VOLUME, KPI_VALUES], group_name="exports", owners=OWNERS,
          kinds={"parquet"},
          description="Parquet 导出（zstd，按统计期 hive 分区）：全部 marts 表和不含个人信息的 core 表，"
                      "附 _manifest.json（文件、行数、结构、运行编号）。")
def parquet(context: dg.AssetExecutionContext, warehouse: Warehouse, exports: ExportsFolder):
    from warehouse.exports import export_parquet
    from warehouse.views import create_reader_views

    with warehouse.writer() as con:
        create_reader_views(con)  # the named marts views are exported with the marts
        summary = export_parquet(con, exports.root, context.run.run_id, exports.keep_runs)
    return dg.MaterializeResult(metadata={"path": str(exports.root),
                                          "summary": dg.MetadataValue.json(summary)})


# One bulletin per month, Beijing time: a backfill writes the archive, a re-run reproduces a month.
BULLETIN_MONTHS = dg.MonthlyPartitionsDefinition(start_date="2019-01", fmt="%Y-%m", timezone="Asia/Shanghai")
BULLETIN_MONTH_METADATA = "bulletin_month"  # on the snapshot: the month the latest bulletin is for


@dg.asset(key=RETURNS, deps=[QUALITY_SUMMARY], group_name="exports", owners=OWNERS, kinds={"xlsx"},
          description="退回清单：本次运行有隔离行的每个部门一个 XLSX（退回清单_<部门>_<期间>.xlsx），"
                      "按部门原样列出被拒绝的行（个人信息脱敏）、标出出错的列并写明原因；"
                      "改正后放回落地目录即作为更正载入。")
def returns(context: dg.AssetExecutionContext, warehouse: Warehouse, exports: ExportsFolder):
    from warehouse.returns import write_returns
    from warehouse.views import create_reader_views

    with warehouse.writer() as con:
        create_reader_views(con)
        paths = write_returns(con, exports.root / "returns", context.run.run_id)
    return dg.MaterializeResult(metadata={"workbooks": len(paths),
                                          "files": dg.MetadataValue.json([p.name for p in paths])})


@dg.asset(key=SNAPSHOT, deps=[PARQUET, RETURNS], group_name="exports", owners=OWNERS, kinds={"duckdb"},
          description="分析用只读快照：把写入副本检查点后原子替换到 GOVMETRICS_WAREHOUSE，"
                      "分析人员查询时不会遇到锁；只写入与备用副本（上上次的快照）不同的数据块。")
def warehouse_snapshot(warehouse: Warehouse):
    from warehouse.bulletin import latest_month

    snapshot = warehouse.publish()
    with duckdb.connect(str(snapshot.path), read_only=True) as con:
        month = latest_month(con)
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(snapshot.path)),
                                          "bytes": snapshot.bytes,
                                          "bytes_written": snapshot.bytes_written,
                                          "from_spare": snapshot.from_spare,
                                          "seconds": round(snapshot.seconds, 3),
                                          BULLETIN_MONTH_METADATA: f"{month:%Y-%m}" if month else ""})


@dg.asset(key=BULLETIN, deps=[SNAPSHOT], partitions_def=BULLETIN_MONTHS, group_name="exports",
          owners=OWNERS, kinds={"html", "pdf"},
          description="政务数据运行公报（每月一期，exports/bulletin/YYYY-MM/）：公开版与内部版，"
                      "各有 HTML、Markdown 和 A4 PDF；按局里的写法陈述该月各项指标，附同比、环比和月度图表；"
                      "内部版另附数据质量汇总和每个数字的来源批次。读取分析用只读快照；同时更新历期索引页。")
def bulletin(context: dg.AssetExecutionContext, warehouse: Warehouse, exports: ExportsFolder):
    from warehouse.bulletin import write_month
    from warehouse.bulletin.pdf import find_chromium

    month = context.partition_time_window.start.date()
    if not warehouse.published.exists():
        raise dg.Failure(f"no published warehouse at {warehouse.published}: run the refresh job first")
    chromium = find_chromium()
    if chromium is None:
        context.log.warning("chromium not found: bulletin PDFs skipped (apt-get install chromium fonts-noto-cjk)")
    with duckdb.connect(str(warehouse.published), read_only=True) as con:
        paths = write_month(con, exports.root / "bulletin", month, context.run.run_id, chromium)
    return dg.MaterializeResult(metadata={
        **{k: dg.MetadataValue.path(str(v)) for k, v in paths.items()},
        "pdf": "written" if chromium else "skipped: no chromium",
    })
