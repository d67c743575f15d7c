"""Quality asset: the data-quality summary of everything loaded so far, for engineers and the bulletin."""


import dagster as dg

from assets.core import CONTRACTS, OWNERS, core_key
from assets.metadata import md_table, query_frame
from pipelines.resources import Warehouse

QUALITY_SUMMARY = dg.AssetKey(["quality", "load_summary"])


@dg.asset(
    key=QUALITY_SUMMARY,
    deps=[core_key(name) for name in CONTRACTS],
    group_name="quality",
    owners=OWNERS,
    kinds={"duckdb"},
    description="数据质量汇总：quality.load_batches（批次）、quality.quarantine（隔离行）与 "
                "quality.check_results（校验结果）的汇总，按数据集和规则统计。",
)
def load_summary(warehouse: Warehouse) -> dg.MaterializeResult:
    with warehouse.writer() as con:
        by_status = query_frame(con, """SELECT dataset, status, count(*) AS batches, sum(rows_read) AS rows_read,
                      sum(rows_loaded) AS rows_loaded, sum(rows_quarantined) AS rows_quarantined,
                      sum(rows_skipped) AS rows_skipped
               FROM quality.load_batches GROUP BY ALL ORDER BY ALL""")
        by_rule = query_frame(con, """SELECT dataset, rule, count(*) AS rows, any_value(message) AS example_message
               FROM quality.quarantine GROUP BY ALL ORDER BY rows DESC""")
        failed_checks = query_frame(con, """SELECT dataset, expectation, severity, unexpected_count
               FROM quality.check_results
               WHERE NOT success AND checked_at = (SELECT max(checked_at) FROM quality.check_results r
                                                   WHERE r.dataset = check_results.dataset)
               GROUP BY ALL ORDER BY ALL""")
        unbalanced = con.execute(
            """SELECT count(*) FROM quality.load_batches
               WHERE status <> 'duplicate' AND rows_read <> rows_loaded + rows_quarantined + rows_skipped"""
        ).fetchall()[0][0]
    return dg.MaterializeResult(
        metadata={
            "batches": int(by_status["batches"].sum()) if by_status.height else 0,
            "rows_quarantined": int(by_rule["rows"].sum()) if by_rule.height else 0,
            "failed_checks": failed_checks.height,
            "unbalanced_batches": unbalanced,
            "by_status": dg.MetadataValue.md(md_table(by_status, 50)),
            "quarantine_by_rule": dg.MetadataValue.md(md_table(by_rule, 50)),
            "failed_checks_latest": dg.MetadataValue.md(md_table(failed_checks, 50)),
        }
    )
