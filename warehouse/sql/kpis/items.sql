-- kpi_codes: item_online_rate, item_full_online_share, item_instant_share
--
-- item_online_rate 依申请事项可网办率（%）
--   口径：在用事项中可网上办理的事项数 / 在用事项数。
-- item_full_online_share 全程网办事项占比（%）
--   口径：在用事项中全程网办的事项数 / 在用事项数。
-- item_instant_share 即办事项占比（%）
--   口径：在用事项中办理类型为即办件的事项数 / 在用事项数。
--
-- 计算方法：登记表每期是全量快照，注明它所述的日期（as_of：统计日期/截至日期/标题中的“截至…”）。
-- 统计期 = 月（period_grain = 'month'，period_start = 月首日），取截至月末的最近一期快照：
-- service_items_at_month_end（临时视图，见 warehouse/marts.py）= latest.service_items 中 as_of 为
-- “不晚于月末的最大 as_of”的行；输出的 as_of = 所用快照的截至日期（可能早于月末）。
-- 第一期快照之前的月份不出数；后到的更正文件只改它所述的那一期及沿用它的月份。
--   * 在用事项 = 事项状态为“在用”的事项；同一事项编码有多个在用版本时只计一次（取版本号最大的）。
--   * “是否可网办”“是否全程网办”为空的按否计。
--   范围：全市（city）、各实施部门（dept_code）。value = 100 × 分子 / 分母（不四舍五入）；分母为 0 的不出数。
--   batch_ids：计入分母的事项行的批次。
WITH items_in_use AS (
    SELECT i.month, i.as_of, i.item_code, i.dept_code, i.online_available, i.full_online, i.handling_type, i.batch_id
    FROM service_items_at_month_end AS i
    WHERE i.item_status = '在用'
    QUALIFY row_number() OVER (
        PARTITION BY i.month, i.item_code
        ORDER BY try_cast(i.version AS DOUBLE) DESC NULLS LAST, i.version DESC, i.valid_from DESC
    ) = 1
),
counts AS (
    SELECT month, as_of,
           CASE WHEN grouping(dept_code) = 0 THEN dept_code ELSE 'city' END AS scope,
           count(*)::DOUBLE AS items,
           count(*) FILTER (WHERE online_available)::DOUBLE AS online_items,
           count(*) FILTER (WHERE full_online)::DOUBLE AS full_online_items,
           count(*) FILTER (WHERE handling_type = '即办件')::DOUBLE AS instant_items,
           list_sort(list(DISTINCT batch_id)) AS batch_ids
    FROM items_in_use
    GROUP BY GROUPING SETS ((month, as_of), (month, as_of, dept_code))
),
figures AS (
    SELECT 'item_online_rate' AS kpi_code, month, as_of, scope, online_items AS numerator, items AS denominator, batch_ids
    FROM counts
    UNION ALL
    SELECT 'item_full_online_share', month, as_of, scope, full_online_items, items, batch_ids
    FROM counts
    UNION ALL
    SELECT 'item_instant_share', month, as_of, scope, instant_items, items, batch_ids
    FROM counts
)
SELECT kpi_code,
       'month' AS period_grain,
       month AS period_start,
       scope,
       100 * numerator / denominator AS value,
       numerator,
       denominator,
       batch_ids,
       as_of
FROM figures
WHERE scope IS NOT NULL AND denominator > 0
