-- kpi_codes: item_online_rate, item_full_online_share, item_instant_share
--
-- item_online_rate 依申请事项可网办率（%）
--   口径：在用事项中可网上办理的事项数 / 在用事项数。
-- item_full_online_share 全程网办事项占比（%）
--   口径：在用事项中全程网办的事项数 / 在用事项数。
-- item_instant_share 即办事项占比（%）
--   口径：在用事项中办理类型为即办件的事项数 / 在用事项数。
--
-- 计算方法：事项清单是登记表（全量快照，保留历史），统计期为“截至某日”（period_grain = 'snapshot'，
-- period_start = 截至日期）：
--   * 截至日期 = 事项清单每次载入（或撤下版本）的日期，即 core.service_items 的 valid_from、valid_to 的日期；
--   * 截至某日日终有效的版本 = valid_from < 次日零点 且 (valid_to 为空 或 valid_to >= 次日零点)；
--     最近一个截至日期的结果即当前有效数据（latest.service_items）的结果，被更正文件取代的旧版本只用于更早的截至日期。
--   * 在用事项 = 事项状态为“在用”的事项；同一事项编码有多个在用版本时只计一次（取版本号最大的）。
--   * “是否可网办”“是否全程网办”为空的按否计。
--   范围：全市（city）、各实施部门（dept_code）。value = 100 × 分子 / 分母（不四舍五入）；分母为 0 的不出数。
--   batch_ids：计入分母的事项行的批次。
WITH snapshot_dates AS (
    SELECT DISTINCT valid_from::DATE AS snapshot_date FROM core.service_items
    UNION
    SELECT DISTINCT valid_to::DATE FROM core.service_items WHERE valid_to IS NOT NULL
),
items_in_use AS (
    SELECT d.snapshot_date, i.item_code, i.dept_code, i.online_available, i.full_online, i.handling_type, i.batch_id
    FROM snapshot_dates AS d
    JOIN core.service_items AS i
      ON i.valid_from < d.snapshot_date + INTERVAL 1 DAY
     AND (i.valid_to IS NULL OR i.valid_to >= d.snapshot_date + INTERVAL 1 DAY)
    WHERE i.item_status = '在用'
    QUALIFY row_number() OVER (
        PARTITION BY d.snapshot_date, i.item_code
        ORDER BY try_cast(i.version AS DOUBLE) DESC NULLS LAST, i.version DESC, i.valid_from DESC
    ) = 1
),
counts AS (
    SELECT snapshot_date,
           CASE WHEN grouping(dept_code) = 0 THEN dept_code ELSE 'city' END AS scope,
           count(*)::DOUBLE AS items,
           count(*) FILTER (WHERE online_available)::DOUBLE AS online_items,
           count(*) FILTER (WHERE full_online)::DOUBLE AS full_online_items,
           count(*) FILTER (WHERE handling_type = '即办件')::DOUBLE AS instant_items,
           list_sort(list(DISTINCT batch_id)) AS batch_ids
    FROM items_in_use
    GROUP BY GROUPING SETS ((snapshot_date), (snapshot_date, dept_code))
),
figures AS (
    SELECT 'item_online_rate' AS kpi_code, snapshot_date, scope, online_items AS numerator, items AS denominator, batch_ids
    FROM counts
    UNION ALL
    SELECT 'item_full_online_share', snapshot_date, scope, full_online_items, items, batch_ids
    FROM counts
    UNION ALL
    SELECT 'item_instant_share', snapshot_date, scope, instant_items, items, batch_ids
    FROM counts
)
SELECT kpi_code,
       'snapshot' AS period_grain,
       snapshot_date AS period_start,
       scope,
       100 * numerator / denominator AS value,
       numerator,
       denominator,
       batch_ids
FROM figures
WHERE scope IS NOT NULL AND denominator > 0
