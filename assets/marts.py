"""Marts: monthly service volume and every KPI of the catalogue, rebuilt from the current core rows."""


import dagster as dg

from assets.core import CONTRACTS, OWNERS, core_key
from assets.metadata import md_table, query_frame
from assets.quality import QUALITY_SUMMARY
from pipelines.resources import Warehouse
from warehouse.shared_counts import SCHEMA as SHARED_STATE

SERVICE_VOLUME = dg.AssetKey(["marts", "service_volume_monthly"])
KPI_VALUES = dg.AssetKey(["marts", "kpi_values"])
DEPS = [core_key(name) for name in CONTRACTS] + [QUALITY_SUMMARY]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(SERVICE_VOLUME, deps=DEPS, group_name="marts", owners=OWNERS, kinds={"duckdb"},
                     description="办件与好差评月度汇总（月份 × 部门 × 区县）：办件量、网上办件、全程网办、"
                                 "有效评价、好评、差评、默认评价；明细月份取明细，其他月份取月报。"),
        dg.AssetSpec(KPI_VALUES, deps=DEPS, group_name="marts", owners=OWNERS, kinds={"duckdb"},
                     description="指标值：每个指标（见 marts.kpi_catalogue 的口径）每个月、每个范围"
                                 "（全市、区县或部门）一行：流量为当月，累计和登记表指标为截至月末"
                                 "（取不晚于月末的最近一期登记表），as_of 为数字所述的日期；"
                                 "附分子、分母和来源批次。"),
    ],
)
def marts(context: dg.AssetExecutionContext, warehouse: Warehouse):
    from warehouse.marts import build_marts

    with warehouse.writer() as con:
        counts = build_marts(con, context.run.run_id)
        latest = query_frame(con, """SELECT kpi_code, name_zh, period_grain, period_start, as_of, value, unit
               FROM marts.kpi_values WHERE scope = 'city'
               QUALIFY row_number() OVER (PARTITION BY kpi_code ORDER BY period_start DESC) = 1
               ORDER BY kpi_code""")
        counted = con.execute(f"SELECT mode, changed_rows FROM {SHARED_STATE}.watermark").fetchone()
    yield dg.MaterializeResult(asset_key=SERVICE_VOLUME,
                               metadata={"dagster/row_count": counts.get("service_volume_monthly", 0),
                                         # the shared counts: updated from the rows changed since the
                                         # last build, or rebuilt from every current row
                                         "shared_counts": f"{counted[0]}: {counted[1]:,} rows read"})
    yield dg.MaterializeResult(asset_key=KPI_VALUES,
                               metadata={"dagster/row_count": counts.get("kpi_values", 0),
                                         "latest_city_values": dg.MetadataValue.md(md_table(latest, 60))})
