-- kpi_codes: case_volume_cumulative, review_valid_cumulative
--
-- case_volume_cumulative 累计办件量（件）
--   口径：截至统计期末平台累计受理的全部办件；办件明细接入前的月份取办件量月报，之后取办件明细
--   （同一月份两者都有时以明细为准）。
-- review_valid_cumulative 累计有效好差评（条）
--   口径：截至统计期末归集的评价等级有效（1-5）的好差评数；月份口径同累计办件量。
--
-- 计算方法（只用当前有效数据 latest.*）：
--   1. 每月的量：某月 latest.service_cases 中有申请时间在该月的办件，则该月办件量 = 明细件数，
--      否则 = 该月各部门月报“办件量”之和；评价同理（按评价时间判断该月有无评价明细，
--      无明细时取月报“有效评价数”）。
--   2. 累计值：从有数据的第一个月到最后一个月，逐月累加到该月（中间没有任何数据的月份照常列出，
--      累计值等于上月）。
--   3. 范围：全市（scope = 'city'）；各部门（scope = 实施部门编码，评价的部门取所评办件的部门，
--      所评办件尚未入库的评价只计入全市），部门序列从该部门有数据的第一个月开始。
--   batch_ids：截至该月参与累计的全部当前数据行的批次。
WITH case_months AS (  -- case_counts_by_batch：办件按月份、部门、区县与批次计数（sql/marts/case_counts_by_batch.sql）
    SELECT DISTINCT month FROM case_counts_by_batch
),
review_months AS (
    SELECT DISTINCT date_trunc('month', reviewed_at)::DATE AS month FROM latest.service_reviews
),
monthly AS (
    -- 办件：有明细的月份取明细
    SELECT 'case_volume_cumulative' AS kpi_code, month, dept_code, sum(cases) AS volume, list(batch_id) AS batch_ids
    FROM case_counts_by_batch
    GROUP BY month, dept_code
    UNION ALL
    -- 办件：其余月份取月报
    SELECT 'case_volume_cumulative', m.month, m.dept_code, m.cases, [m.batch_id]
    FROM latest.case_volume_monthly AS m
    ANTI JOIN case_months USING (month)
    WHERE m.cases IS NOT NULL
    UNION ALL
    -- 有效评价：有明细的月份取明细（部门取所评办件的部门：review_counts_by_case，
    -- 评价与所评办件的关联，见 sql/marts/review_counts_by_case.sql）
    SELECT 'review_valid_cumulative', month, dept_code, sum(reviews), list(batch_id)
    FROM review_counts_by_case
    WHERE reviews > 0
    GROUP BY month, dept_code
    UNION ALL
    -- 有效评价：其余月份取月报
    SELECT 'review_valid_cumulative', m.month, m.dept_code, m.valid_reviews, [m.batch_id]
    FROM latest.case_volume_monthly AS m
    ANTI JOIN review_months USING (month)
    WHERE m.valid_reviews IS NOT NULL
),
by_scope AS (
    SELECT kpi_code, month, 'city' AS scope, sum(volume) AS volume, flatten(list(batch_ids)) AS batch_ids
    FROM monthly
    GROUP BY ALL
    UNION ALL
    SELECT kpi_code, month, dept_code, sum(volume), flatten(list(batch_ids))
    FROM monthly
    WHERE dept_code IS NOT NULL
    GROUP BY ALL
),
months AS (
    -- 每个范围从其第一个有数据的月份起，到全市最后一个有数据的月份止，逐月列出
    SELECT f.kpi_code, f.scope,
           unnest(generate_series(f.first_month::TIMESTAMP, l.last_month::TIMESTAMP, INTERVAL 1 MONTH))::DATE AS month
    FROM (SELECT kpi_code, scope, min(month) AS first_month FROM by_scope GROUP BY ALL) AS f
    JOIN (SELECT kpi_code, max(month) AS last_month FROM by_scope GROUP BY ALL) AS l USING (kpi_code)
)
SELECT
    kpi_code,
    'month' AS period_grain,
    month AS period_start,
    scope,
    (sum(coalesce(volume, 0)) OVER running)::DOUBLE AS value,
    NULL::DOUBLE AS numerator,
    NULL::DOUBLE AS denominator,
    list_sort(list_distinct(flatten(list(batch_ids) OVER running))) AS batch_ids
FROM months
LEFT JOIN by_scope USING (kpi_code, scope, month)
WINDOW running AS (PARTITION BY kpi_code, scope ORDER BY month ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
