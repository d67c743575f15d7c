-- kpi_codes: case_online_rate
--
-- case_online_rate 网上实办率（%）
--   口径：统计期内网上申办（网上办理、移动端）的办件数 / 统计期内全部办件数。
--
-- 计算方法（只用当前有效数据 latest.*；统计期 = 月，按申请时间归月）：
--   * 有办件明细的月份（latest.service_cases 中有申请时间在该月的办件）：
--       分子 = 申办渠道为“网上办理”或“移动端”的办件数，分母 = 全部办件数；
--   * 其余月份取办件量月报：分子 = “其中网上办件量”之和，分母 = “办件量”之和，
--       只计报送了网上办件量的部门行。
--   范围：全市（city）、各区县（行政区划代码前6位，仅明细月份；前6位以“00”结尾的市本级不计入任何区县）、
--   各实施部门（dept_code）。value = 100 × 分子 / 分母（不四舍五入）；分母为 0 的不出数。
WITH case_months AS (  -- case_counts_by_batch：办件按月份、部门、区县与批次计数（sql/marts/case_counts_by_batch.sql）
    SELECT DISTINCT month FROM case_counts_by_batch
),
monthly AS (
    SELECT month, dept_code, region_code AS district,
           sum(online_cases) AS online_cases,
           sum(cases) AS cases,
           list(batch_id) AS batch_ids
    FROM case_counts_by_batch
    GROUP BY month, dept_code, region_code
    UNION ALL
    SELECT m.month, m.dept_code, NULL, m.online_cases, m.cases, [m.batch_id]
    FROM latest.case_volume_monthly AS m
    ANTI JOIN case_months USING (month)
    WHERE m.online_cases IS NOT NULL AND m.cases IS NOT NULL
),
rates AS (
    SELECT month,
           CASE WHEN grouping(district) = 0 THEN district
                WHEN grouping(dept_code) = 0 THEN dept_code
                ELSE 'city' END AS scope,
           sum(online_cases)::DOUBLE AS numerator,
           sum(cases)::DOUBLE AS denominator,
           flatten(list(batch_ids)) AS batch_ids
    FROM monthly
    GROUP BY GROUPING SETS ((month), (month, district), (month, dept_code))
)
SELECT 'case_online_rate' AS kpi_code,
       'month' AS period_grain,
       month AS period_start,
       scope,
       100 * numerator / denominator AS value,
       numerator,
       denominator,
       list_sort(list_distinct(batch_ids)) AS batch_ids
FROM rates
WHERE scope IS NOT NULL AND denominator > 0
