-- kpi_codes: on_time_completion_rate, median_handling_days
--
-- on_time_completion_rate 按时办结率（%）
--   口径：统计期内办结且在事项承诺时限（工作日）内办结的办件数 / 办结办件数。
-- median_handling_days 办理时长中位数（天）
--   口径：统计期内办结办件的办结时间减受理时间的中位数（天）。
--
-- 计算方法（只用当前有效数据 latest.*；统计期 = 月，按申请时间归月；范围 = 全市、各实施部门）：
--   * 办结办件 = 办理状态为“已办结”且办结时间不为空；起算时间 = 受理时间，受理时间为空时用申请时间。
--   * 按时办结：办件按事项编码关联当前在用（事项状态“在用”）的事项版本（同一事项有多个在用版本时
--     取版本号最大的：能按数字比较的按数字，否则按文本）；
--     date_diff('day', 起算时间, 办结时间) <= 承诺办结时限 即为按时，即办结日不晚于起算日之后第 N 个
--     自然日（承诺时限为 0 的即办件须当日办结）。
--     注意：承诺时限按工作日计，这里用自然日近似：自然日含周末和法定节假日，跨周末、节假日的办件
--     可能被判为超时，结果偏严，仅作近似。
--     找不到在用事项或事项未填承诺时限的办件不计入分子和分母。
--   * 办理时长 = (办结时间 − 起算时间) 的秒数 / 86400，取中位数（quantile_cont 0.5），单位天，不四舍五入。
--   batch_ids：按时办结率含办件批次和所关联事项行的批次；中位数只含办件批次。
WITH finished AS (
    SELECT date_trunc('month', applied_at)::DATE AS month,
           dept_code,
           item_code,
           coalesce(accepted_at, applied_at) AS started_at,
           finished_at,
           batch_id
    FROM latest.service_cases
    WHERE status = '已办结' AND finished_at IS NOT NULL
),
items_in_use AS (
    SELECT item_code, promised_days, batch_id
    FROM latest.service_items
    WHERE item_status = '在用'
    QUALIFY row_number() OVER (
        PARTITION BY item_code
        ORDER BY try_cast(version AS DOUBLE) DESC NULLS LAST, version DESC, valid_from DESC
    ) = 1
),
on_time AS (
    SELECT f.month,
           CASE WHEN grouping(f.dept_code) = 0 THEN f.dept_code ELSE 'city' END AS scope,
           count(*) FILTER (WHERE date_diff('day', f.started_at, f.finished_at) <= i.promised_days)::DOUBLE AS numerator,
           count(*)::DOUBLE AS denominator,
           list(DISTINCT f.batch_id) || list(DISTINCT i.batch_id) AS batch_ids
    FROM finished AS f
    JOIN items_in_use AS i USING (item_code)
    WHERE i.promised_days IS NOT NULL
    GROUP BY GROUPING SETS ((f.month), (f.month, f.dept_code))
),
handling AS (
    SELECT month,
           CASE WHEN grouping(dept_code) = 0 THEN dept_code ELSE 'city' END AS scope,
           median((epoch(finished_at) - epoch(started_at)) / 86400) AS median_days,
           list(DISTINCT batch_id) AS batch_ids
    FROM finished
    GROUP BY GROUPING SETS ((month), (month, dept_code))
)
SELECT 'on_time_completion_rate' AS kpi_code,
       'month' AS period_grain,
       month AS period_start,
       scope,
       100 * numerator / denominator AS value,
       numerator,
       denominator,
       list_sort(list_distinct(batch_ids)) AS batch_ids
FROM on_time
WHERE scope IS NOT NULL AND denominator > 0
UNION ALL
SELECT 'median_handling_days', 'month', month, scope, median_days, NULL, NULL, list_sort(batch_ids)
FROM handling
WHERE scope IS NOT NULL AND median_days IS NOT NULL
