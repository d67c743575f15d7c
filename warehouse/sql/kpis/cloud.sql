-- kpi_codes: cloud_systems_hosted, cloud_rate_nonclassified
--
-- cloud_systems_hosted 政务云承载业务系统（个）
--   口径：已部署在政务云上的业务系统数（“是否上云”为是）。
-- cloud_rate_nonclassified 非涉密系统上云率（%）
--   口径：已上云的非涉密业务系统数 / 非涉密业务系统数（“是否涉密”为否）。
--
-- 计算方法：登记表每期是全量快照，注明它所述的日期（as_of：统计日期/截至日期/标题中的“截至…”）。
-- 统计期 = 月（period_grain = 'month'，period_start = 月首日），取截至月末的最近一期快照：
-- cloud_systems_at_month_end（临时视图，见 warehouse/marts.py）= latest.cloud_systems 中 as_of 为
-- “不晚于月末的最大 as_of”的行；输出的 as_of = 所用快照的截至日期（可能早于月末）。
-- 第一期快照之前的月份不出数；后到的更正文件只改它所述的那一期及沿用它的月份。
--   * 范围：全市（city）、各所属部门（dept_code）。
--   value = 100 × 分子 / 分母（不四舍五入）；非涉密系统数为 0 时上云率不出数。
--   batch_ids：承载系统数为该范围全部系统行的批次；上云率为非涉密系统行的批次。
WITH systems AS (
    SELECT s.month, s.as_of, s.dept_code, s.classified, s.on_cloud, s.batch_id
    FROM cloud_systems_at_month_end AS s
),
counts AS (
    SELECT month, as_of,
           CASE WHEN grouping(dept_code) = 0 THEN dept_code ELSE 'city' END AS scope,
           count(*) FILTER (WHERE on_cloud)::DOUBLE AS systems_on_cloud,
           count(*) FILTER (WHERE NOT classified)::DOUBLE AS nonclassified,
           count(*) FILTER (WHERE NOT classified AND on_cloud)::DOUBLE AS nonclassified_on_cloud,
           list(DISTINCT batch_id) AS all_batch_ids,
           list(DISTINCT batch_id) FILTER (WHERE NOT classified) AS nonclassified_batch_ids
    FROM systems
    GROUP BY GROUPING SETS ((month, as_of), (month, as_of, dept_code))
)
SELECT 'cloud_systems_hosted' AS kpi_code, 'month' AS period_grain, month AS period_start, scope,
       systems_on_cloud AS value, NULL::DOUBLE AS numerator, NULL::DOUBLE AS denominator,
       list_sort(all_batch_ids) AS batch_ids, as_of
FROM counts
WHERE scope IS NOT NULL
UNION ALL
SELECT 'cloud_rate_nonclassified', 'month', month, scope,
       100 * nonclassified_on_cloud / nonclassified, nonclassified_on_cloud, nonclassified,
       list_sort(nonclassified_batch_ids), as_of
FROM counts
WHERE scope IS NOT NULL AND nonclassified > 0
