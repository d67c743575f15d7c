-- kpi_codes: extranet_nodes, extranet_levels_covered, ipv6_dual_stack_share
--
-- extranet_nodes 政务外网接入点（个）
--   口径：状态为在用的政务外网接入点数。
-- extranet_levels_covered 政务外网覆盖层级（级）
--   口径：至少有一个在用接入点的层级数（市级、区县级、街道乡镇级、社区村级；四级全覆盖为4）。
-- ipv6_dual_stack_share IPv6双栈接入点占比（%）
--   口径：在用接入点中IPv4/IPv6双栈运行的接入点数 / 在用接入点数（“是否IPv6双栈”为空的按否计）。
--
-- 计算方法：接入点清单是登记表，统计期为“截至某日”（period_grain = 'snapshot'，period_start = 截至日期）：
--   * 截至日期 = 清单每次载入（或撤下版本）的日期（core.extranet_nodes 的 valid_from、valid_to 的日期）；
--   * 截至某日日终有效的版本 = valid_from < 次日零点 且 (valid_to 为空 或 valid_to >= 次日零点)。
--   * 范围：全市（city）、各区县（行政区划代码前6位；前6位以“00”结尾的市本级接入点只计入全市）。
--   * 清单中有接入点但都已撤销时，接入点数和覆盖层级为 0，双栈占比不出数（分母为 0）。
--   batch_ids：接入点数、覆盖层级为该范围全部接入点行的批次；双栈占比为在用接入点行的批次。
WITH snapshot_dates AS (
    SELECT DISTINCT valid_from::DATE AS snapshot_date FROM core.extranet_nodes
    UNION
    SELECT DISTINCT valid_to::DATE FROM core.extranet_nodes WHERE valid_to IS NOT NULL
),
nodes AS (
    SELECT d.snapshot_date,
           CASE WHEN right(left(n.region_code, 6), 2) <> '00' THEN left(n.region_code, 6) END AS district,
           n.node_status = '在用' AS in_use,
           n.level,
           coalesce(n.ipv6_dual_stack, false) AS dual_stack,
           n.batch_id
    FROM snapshot_dates AS d
    JOIN core.extranet_nodes AS n
      ON n.valid_from < d.snapshot_date + INTERVAL 1 DAY
     AND (n.valid_to IS NULL OR n.valid_to >= d.snapshot_date + INTERVAL 1 DAY)
),
counts AS (
    SELECT snapshot_date,
           CASE WHEN grouping(district) = 0 THEN district ELSE 'city' END AS scope,
           count(*) FILTER (WHERE in_use)::DOUBLE AS nodes_in_use,
           count(DISTINCT level) FILTER (WHERE in_use)::DOUBLE AS levels_in_use,
           count(*) FILTER (WHERE in_use AND dual_stack)::DOUBLE AS dual_stack_nodes,
           list(DISTINCT batch_id) AS all_batch_ids,
           list(DISTINCT batch_id) FILTER (WHERE in_use) AS in_use_batch_ids
    FROM nodes
    GROUP BY GROUPING SETS ((snapshot_date), (snapshot_date, district))
)
SELECT 'extranet_nodes' AS kpi_code, 'snapshot' AS period_grain, snapshot_date AS period_start, scope,
       nodes_in_use AS value, NULL::DOUBLE AS numerator, NULL::DOUBLE AS denominator,
       list_sort(all_batch_ids) AS batch_ids
FROM counts
WHERE scope IS NOT NULL
UNION ALL
SELECT 'extranet_levels_covered', 'snapshot', snapshot_date, scope,
       levels_in_use, NULL, NULL, list_sort(all_batch_ids)
FROM counts
WHERE scope IS NOT NULL
UNION ALL
SELECT 'ipv6_dual_stack_share', 'snapshot', snapshot_date, scope,
       100 * dual_stack_nodes / nodes_in_use, dual_stack_nodes, nodes_in_use, list_sort(in_use_batch_ids)
FROM counts
WHERE scope IS NOT NULL AND nodes_in_use > 0
