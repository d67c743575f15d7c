-- marts.service_volume_monthly 政务服务月度办件与评价量
--
-- 口径：月份 × 实施部门 × 区县 的办件量、网上办件量、全程网办件量、有效评价数、好评数（4、5分）、
-- 差评数（1、2分）、默认评价数。只用当前有效数据（latest.*）。
--
-- 月份取舍（与累计办件量、网上实办率、好评率等指标一致）：
--   * 某月只要 latest.service_cases 中有申请时间在该月的办件，该月办件类数字（办件量、网上办件量、
--     全程网办件量）全部取自办件明细（source = 'records'），否则取自办件量月报（source = 'monthly_report'）；
--   * 评价类数字（有效评价、好评、差评、默认评价）同理，按 latest.service_reviews 的评价时间所在月份判断。
--   因此同一月份、同一数字只来自一个来源：按月对本表求和即为全市口径，不会重复计算；
--   月报行中已由明细提供的那一类数字为 NULL。明细与月报在重叠月份的核对由质量校验负责，不在此处。
--
-- 办件按申请时间（applied_at）归月；评价按评价时间（reviewed_at）归月，部门与区县取所评办件的部门与区县
-- （所评办件尚未入库时为 NULL）。区县 = 行政区划代码前6位；前6位以“00”结尾的是市本级，不属于任何区县，记为 NULL。
-- 月报没有区县、全程网办和默认评价的数字，相应列为 NULL。
-- batch_ids：该行数字所依据的当前数据行的批次编号（去重、排序）。
WITH case_months AS (  -- case_counts_by_batch：办件按月份、部门、区县与批次计数（sql/marts/case_counts_by_batch.sql）
    SELECT DISTINCT month FROM case_counts_by_batch
),
review_months AS (
    SELECT DISTINCT date_trunc('month', reviewed_at)::DATE AS month
    FROM latest.service_reviews
),
case_counts AS (
    SELECT month, dept_code, region_code,
           sum(cases) AS cases,
           sum(online_cases) AS online_cases,
           sum(full_online_cases) AS full_online_cases,
           NULL::BIGINT AS reviews,
           NULL::BIGINT AS good_reviews,
           NULL::BIGINT AS bad_reviews,
           NULL::BIGINT AS auto_reviews,
           list(batch_id) AS batch_ids
    FROM case_counts_by_batch
    GROUP BY month, dept_code, region_code
),
review_counts AS (
    -- review_counts_by_case：评价与所评办件的关联（sql/marts/review_counts_by_case.sql）
    SELECT month, dept_code, region_code,
           NULL::BIGINT AS cases,
           NULL::BIGINT AS online_cases,
           NULL::BIGINT AS full_online_cases,
           sum(reviews) AS reviews,
           sum(good_reviews) AS good_reviews,
           sum(bad_reviews) AS bad_reviews,
           sum(auto_reviews) AS auto_reviews,
           list(batch_id) AS batch_ids
    FROM review_counts_by_case
    GROUP BY month, dept_code, region_code
),
records AS (
    -- 一行 = 月份 × 部门 × 区县；该月有明细时，没有办件（或评价）的组合记 0，没有明细时记 NULL
    SELECT
        x.month,
        x.dept_code,
        x.region_code,
        'records' AS source,
        CASE WHEN cm.month IS NOT NULL THEN coalesce(sum(x.cases), 0) END AS cases,
        CASE WHEN cm.month IS NOT NULL THEN coalesce(sum(x.online_cases), 0) END AS online_cases,
        CASE WHEN cm.month IS NOT NULL THEN coalesce(sum(x.full_online_cases), 0) END AS full_online_cases,
        CASE WHEN rm.month IS NOT NULL THEN coalesce(sum(x.reviews), 0) END AS reviews,
        CASE WHEN rm.month IS NOT NULL THEN coalesce(sum(x.good_reviews), 0) END AS good_reviews,
        CASE WHEN rm.month IS NOT NULL THEN coalesce(sum(x.bad_reviews), 0) END AS bad_reviews,
        CASE WHEN rm.month IS NOT NULL THEN coalesce(sum(x.auto_reviews), 0) END AS auto_reviews,
        flatten(list(x.batch_ids)) AS batch_ids
    FROM (SELECT * FROM case_counts UNION ALL SELECT * FROM review_counts) AS x
    LEFT JOIN case_months AS cm ON cm.month = x.month
    LEFT JOIN review_months AS rm ON rm.month = x.month
    GROUP BY x.month, x.dept_code, x.region_code, cm.month, rm.month
),
reports AS (
    -- 月报只补明细没有覆盖的月份；已由明细提供的那一类数字置为 NULL
    SELECT
        m.month,
        m.dept_code,
        NULL::VARCHAR AS region_code,
        'monthly_report' AS source,
        CASE WHEN cm.month IS NULL THEN m.cases END AS cases,
        CASE WHEN cm.month IS NULL THEN m.online_cases END AS online_cases,
        NULL::BIGINT AS full_online_cases,
        CASE WHEN rm.month IS NULL THEN m.valid_reviews END AS reviews,
        CASE WHEN rm.month IS NULL THEN m.good_reviews END AS good_reviews,
        CASE WHEN rm.month IS NULL THEN m.bad_reviews END AS bad_reviews,
        NULL::BIGINT AS auto_reviews,
        [m.batch_id] AS batch_ids
    FROM latest.case_volume_monthly AS m
    LEFT JOIN case_months AS cm ON cm.month = m.month
    LEFT JOIN review_months AS rm ON rm.month = m.month
    WHERE cm.month IS NULL OR rm.month IS NULL
)
SELECT
    month,
    dept_code,
    region_code,
    source,
    cases::BIGINT AS cases,
    online_cases::BIGINT AS online_cases,
    full_online_cases::BIGINT AS full_online_cases,
    reviews::BIGINT AS reviews,
    good_reviews::BIGINT AS good_reviews,
    bad_reviews::BIGINT AS bad_reviews,
    auto_reviews::BIGINT AS auto_reviews,
    list_sort(list_distinct(batch_ids)) AS batch_ids
FROM (SELECT * FROM records UNION ALL SELECT * FROM reports)
ORDER BY month, source, dept_code, region_code
