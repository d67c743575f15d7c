-- marts_state.review_counts_by_case 好差评按所评办件的部门与区县计数（中间表，不发布）
--
-- 一行 = 评价月份 × 所评办件的实施部门 × 区县 × 评价批次，只计当前有效数据（latest.*）。
-- 评价按评价时间（reviewed_at）归月；部门与区县取所评办件的部门与区县（所评办件尚未入库时为 NULL）。
-- 区县 = 行政区划代码前6位；前6位以“00”结尾的是市本级，不属于任何区县，记为 NULL。
--
-- 用途：marts.service_volume_monthly 的评价类数字和累计有效好差评（review_valid_cumulative）都按所评办件的
-- 部门归集评价。全量时是 4652.2万条评价对 7085.4万件办件的关联（marts 中最贵的一步），只在这里做。
-- 按批次分行，所以两处仍能各自列出所依据的评价批次（batch_ids）：只计有效评价的，取 reviews > 0 的行。
-- rows 是该组的评价行数（含等级无效的），为 0 的组不保留。
-- 关联时评价一侧只带窄列：批次编号（约50个字符的文本）先换成整数 b，月份先算好；全量时 28 秒 → 21 秒。
--
-- {reviews} 是参与计数的评价行，每行带符号 sign，{cases} 是它们所评的办件：全量重建时是
-- latest.service_reviews 的每一行（+1）和 latest.service_cases；增量更新时分两次：上次构建时计入、
-- 如今已变的评价（评价被关闭，或所评办件有了新版本）以当时的办件版本计 -1，如今的当前评价
-- （新增的，或所评办件有了新版本的）以当前的办件版本计 +1（warehouse/marts.py 的 _update_shared_counts）。
WITH batches AS (
    SELECT batch_id, row_number() OVER (ORDER BY batch_id)::INTEGER AS b
    FROM (SELECT DISTINCT batch_id FROM {reviews})
),
reviews AS (
    SELECT r.case_no, date_trunc('month', r.reviewed_at)::DATE AS month, b.b, r.rating, r.auto_review, r.sign
    FROM {reviews} AS r JOIN batches AS b USING (batch_id)
),
counted AS (
    SELECT
        r.month,
        c.dept_code,
        CASE WHEN right(left(c.region_code, 6), 2) <> '00' THEN left(c.region_code, 6) END AS region_code,
        r.b,
        sum(r.sign)::BIGINT AS rows,
        coalesce(sum(r.sign) FILTER (WHERE r.rating BETWEEN 1 AND 5), 0)::BIGINT AS reviews,
        coalesce(sum(r.sign) FILTER (WHERE r.rating IN (4, 5)), 0)::BIGINT AS good_reviews,
        coalesce(sum(r.sign) FILTER (WHERE r.rating IN (1, 2)), 0)::BIGINT AS bad_reviews,
        coalesce(sum(r.sign) FILTER (WHERE r.rating BETWEEN 1 AND 5 AND r.auto_review), 0)::BIGINT AS auto_reviews
    FROM reviews AS r
    LEFT JOIN {cases} AS c USING (case_no)
    GROUP BY ALL
)
SELECT month, dept_code, region_code, batches.batch_id, rows, reviews, good_reviews, bad_reviews, auto_reviews
FROM counted JOIN batches USING (b)
