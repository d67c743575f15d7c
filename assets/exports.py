"""Exports: Parquet for report generators, the bureau's bulletin, and the analysts' snapshot."""

import time

import dagster as dg

from assets.core import OWNERS
from assets.marts import KPI_VALUES, SERVICE_VOLUME
from assets.quality import QUALITY_SUMMARY
from pipelines.resources import ExportsFolder, Warehouse

PARQUET = dg.AssetKey(["exports", "parquet"])
BULLETIN = dg.AssetKey(["exports", "bulletin"])
SNAPSHOT = dg.AssetKey(["exports", "warehouse_snapshot"])


@dg.asset(key=PARQUET, deps=[SERVICE_VOLUME, KPI_VALUES], group_name="exports", owners=OWNERS,
          kinds={"parquet"},
          description="Parquet 导出（zstd，按统计期 hive 分区）：全部 marts 表和不含个人信息的 core 表，"
                      "附 _manifest.json（文件、行数、结构、运行编号）。")
def parquet(context: dg.AssetExecutionContext, warehouse: Warehouse, exports: ExportsFolder):
    from warehouse.exports import export_parquet

    with warehouse.writer() as con:
        summary = export_parquet(con, exports.root, context.run.run_id)
    return dg.MaterializeResult(metadata={"path": str(exports.root),
                                          "summary": dg.MetadataValue.json(summary)})


@dg.asset(key=BULLETIN, deps=[KPI_VALUES, SERVICE_VOLUME, QUALITY_SUMMARY], group_name="exports",
          owners=OWNERS, kinds={"html"},
          description="政务数据运行公报（HTML 与 Markdown）：按局里的写法陈述各项指标，附月度图表、"
                      "本期数据质量汇总和每个数字的来源批次。")
def bulletin(context: dg.AssetExecutionContext, warehouse: Warehouse, exports: ExportsFolder):
    from warehouse.bulletin import write_bulletin

    with warehouse.writer() as con:
        paths = write_bulletin(con, exports.root / "bulletin", context.run.run_id)
    return dg.MaterializeResult(metadata={k: dg.MetadataValue.path(str(v)) for k, v in paths.items()})


@dg.asset(key=SNAPSHOT, deps=[PARQUET, BULLETIN], group_name="exports", owners=OWNERS, kinds={"duckdb"},
          description="分析用只读快照：把写入副本检查点后原子替换到 GOVMETRICS_WAREHOUSE，"
                      "分析人员查询时不会遇到锁。")
def warehouse_snapshot(warehouse: Warehouse):
    started = time.perf_counter()
    path = warehouse.publish()
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)),
                                          "bytes": path.stat().st_size,
                                          "seconds": round(time.perf_counter() - started, 3)})
