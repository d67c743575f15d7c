-- kpi_codes: cloud_systems_hosted, cloud_rate_nonclassified
--
-- cloud_systems_hosted 政务云承载业务系统（个）
--   口径：已部署在政务云上的业务系统数（“是否上云”为是）。
-- cloud_rate_nonclassified 非涉密系统上云率（%）
--   口径：已上云的非涉密业务系统数 / 非涉密业务系统数（“是否涉密”为否）。
--
-- 计算方法：业务系统清单是登记表，统计期为“截至某日”（period_grain = 'snapshot'，period_start = 截至日期）：
--   * 截至日期 = 清单每次载入（或撤下版本）的日期（core.cloud_systems 的 valid_from、valid_to 的日期）；
--   * 截至某日日终有效的版本 = valid_from < 次日零点 且 (valid_to 为空 或 valid_to >= 次日零点)。
--   * 范围：全市（city）、各所属部门（dept_code）。
--   value = 100 × 分子 / 分母（不四舍五入）；非涉密系统数为 0 时上云率不出数。
--   batch_ids：承载系统数为该范围全部系统行的批次；上云率为非涉密系统行的批次。
WITH snapshot_dates AS (
    SELECT DISTINCT valid_from::DATE AS snapshot_date FROM core.cloud_systems
    UNION
    SELECT DISTINCT valid_to::DATE FROM core.cloud_systems WHERE valid_to IS NOT NULL
),
systems AS (
    SELECT d.snapshot_date, s.dept_code, s.classified, s.on_cloud, s.batch_id
    FROM snapshot_dates AS d
    JOIN core.cloud_systems AS s
      ON s.valid_from < d.snapshot_date + INTERVAL 1 DAY
     AND (s.valid_to IS NULL OR s.valid_to >= d.snapshot_date + INTERVAL 1 DAY)
),
counts AS (
    SELECT snapshot_date,
           CASE WHEN grouping(dept_code) = 0 THEN dept_code ELSE 'city' END AS scope,
           count(*) FILTER (WHERE on_cloud)::DOUBLE AS systems_on_cloud,
           count(*) FILTER (WHERE NOT classified)::DOUBLE AS nonclassified,
           count(*) FILTER (WHERE NOT classified AND on_cloud)::DOUBLE AS nonclassified_on_cloud,
           list(DISTINCT batch_id) AS all_batch_ids,
           list(DISTINCT batch_id) FILTER (WHERE NOT classified) AS nonclassified_batch_ids
    FROM systems
    GROUP BY GROUPING SETS ((snapshot_date), (snapshot_date, dept_code))
)
SELECT 'cloud_systems_hosted' AS kpi_code, 'snapshot' AS period_grain, snapshot_date AS period_start, scope,
       systems_on_cloud AS value, NULL::DOUBLE AS numerator, NULL::DOUBLE AS denominator,
       list_sort(all_batch_ids) AS batch_ids
FROM counts
WHERE scope IS NOT NULL
UNION ALL
SELECT 'cloud_rate_nonclassified', 'snapshot', snapshot_date, scope,
       100 * nonclassified_on_cloud / nonclassified, nonclassified_on_cloud, nonclassified,
       list_sort(nonclassified_batch_ids)
FROM counts
WHERE scope IS NOT NULL AND nonclassified > 0
