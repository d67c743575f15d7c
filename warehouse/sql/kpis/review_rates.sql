-- kpi_codes: satisfaction_rate, auto_review_share, bad_review_rectification_rate
--
-- satisfaction_rate 好评率（%）
--   口径：统计期内评价等级为4或5的评价数 / 有效评价数。
-- auto_review_share 默认好评占比（%）
--   口径：统计期内系统默认评价条数 / 有效评价数（占比高说明好评率有水分）。
-- bad_review_rectification_rate 差评整改率（%）
--   口径：统计期内差评（评价等级1或2）中已整改的条数 / 差评条数。
--
-- 计算方法（只用当前有效数据 latest.*；统计期 = 月，按评价时间归月；范围 = 全市）：
--   * 有效评价 = 评价等级为 1-5 的评价；默认评价 = “是否默认评价”为是（为空按否计）；
--     已整改 = 整改状态为“已整改”。
--   * 有评价明细的月份（latest.service_reviews 中有评价时间在该月的评价）三项都按明细计算；
--   * 好评率在没有评价明细的月份取办件量月报：好评数之和 / 有效评价数之和（只计两项都报送了的部门行）。
--     月报没有默认评价和整改情况，这两项在这些月份不出数。
--   value = 100 × 分子 / 分母（不四舍五入）；分母为 0 的不出数。
WITH by_batch AS (  -- counted per month and batch first: the batches are listed from a few hundred rows
    SELECT date_trunc('month', reviewed_at)::DATE AS month,
           batch_id,
           count(*) FILTER (WHERE rating BETWEEN 1 AND 5) AS valid_reviews,
           count(*) FILTER (WHERE rating IN (4, 5)) AS good_reviews,
           count(*) FILTER (WHERE rating BETWEEN 1 AND 5 AND auto_review) AS auto_reviews,
           count(*) FILTER (WHERE rating IN (1, 2)) AS bad_reviews,
           count(*) FILTER (WHERE rating IN (1, 2) AND rectification = '已整改') AS rectified_reviews
    FROM latest.service_reviews
    GROUP BY ALL
),
review_months AS (
    SELECT DISTINCT month FROM by_batch
),
records AS (
    SELECT month,
           sum(valid_reviews) AS valid_reviews,
           sum(good_reviews) AS good_reviews,
           sum(auto_reviews) AS auto_reviews,
           sum(bad_reviews) AS bad_reviews,
           sum(rectified_reviews) AS rectified_reviews,
           list(batch_id) FILTER (WHERE valid_reviews > 0) AS valid_batch_ids,
           list(batch_id) FILTER (WHERE bad_reviews > 0) AS bad_batch_ids
    FROM by_batch
    GROUP BY month
),
reports AS (
    SELECT m.month,
           sum(m.good_reviews) AS good_reviews,
           sum(m.valid_reviews) AS valid_reviews,
           list(DISTINCT m.batch_id) AS batch_ids
    FROM latest.case_volume_monthly AS m
    ANTI JOIN review_months USING (month)
    WHERE m.good_reviews IS NOT NULL AND m.valid_reviews IS NOT NULL
    GROUP BY m.month
),
figures AS (
    SELECT 'satisfaction_rate' AS kpi_code, month,
           good_reviews::DOUBLE AS numerator, valid_reviews::DOUBLE AS denominator, valid_batch_ids AS batch_ids
    FROM records
    UNION ALL
    SELECT 'satisfaction_rate', month, good_reviews::DOUBLE, valid_reviews::DOUBLE, batch_ids
    FROM reports
    UNION ALL
    SELECT 'auto_review_share', month, auto_reviews::DOUBLE, valid_reviews::DOUBLE, valid_batch_ids
    FROM records
    UNION ALL
    SELECT 'bad_review_rectification_rate', month, rectified_reviews::DOUBLE, bad_reviews::DOUBLE, bad_batch_ids
    FROM records
)
SELECT kpi_code,
       'month' AS period_grain,
       month AS period_start,
       'city' AS scope,
       100 * numerator / denominator AS value,
       numerator,
       denominator,
       list_sort(batch_ids) AS batch_ids
FROM figures
WHERE denominator > 0
