-- kpi_codes: extranet_nodes, extranet_levels_covered, ipv6_dual_stack_share
--
-- extranet_nodes 政务外网接入点（个）
--   口径：状态为在用的政务外网接入点数。
-- extranet_levels_covered 政务外网覆盖层级（级）
--   口径：至少有一个在用接入点的层级数（市级、区县级、街道乡镇级、社区村级；四级全覆盖为4）。
-- ipv6_dual_stack_share IPv6双栈接入点占比（%）
--   口径：在用接入点中IPv4/IPv6双栈运行的接入点数 / 在用接入点数（“是否IPv6双栈”为空的按否计）。
--
-- 计算方法：登记表每期是全量快照，注明它所述的日期（as_of：统计日期/截至日期/标题中的“截至…”）。
-- 统计期 = 月（period_grain = 'month'，period_start = 月首日），取截至月末的最近一期快照：
-- extranet_nodes_at_month_end（临时视图，见 warehouse/marts.py）= latest.extranet_nodes 中 as_of 为
-- “不晚于月末的最大 as_of”的行；输出的 as_of = 所用快照的截至日期（可能早于月末）。
-- 第一期快照之前的月份不出数；后到的更正文件只改它所述的那一期及沿用它的月份。
--   * 范围：全市（city）、各区县（行政区划代码前6位；前6位以“00”结尾的市本级接入点只计入全市）。
--   * 清单中有接入点但都已撤销时，接入点数和覆盖层级为 0，双栈占比不出数（分母为 0）。
--   batch_ids：接入点数、覆盖层级为该范围全部接入点行的批次；双栈占比为在用接入点行的批次。
WITH nodes AS (
    SELECT n.month, n.as_of,
           CASE WHEN right(left(n.region_code, 6), 2) <> '00' THEN left(n.region_code, 6) END AS district,
           n.node_status = '在用' AS in_use,
           n.level,
           coalesce(n.ipv6_dual_stack, false) AS dual_stack,
           n.batch_id
    FROM extranet_nodes_at_month_end AS n
),
counts AS (
    SELECT month, as_of,
           CASE WHEN grouping(district) = 0 THEN district ELSE 'city' END AS scope,
           count(*) FILTER (WHERE in_use)::DOUBLE AS nodes_in_use,
           count(DISTINCT level) FILTER (WHERE in_use)::DOUBLE AS levels_in_use,
           count(*) FILTER (WHERE in_use AND dual_stack)::DOUBLE AS dual_stack_nodes,
           list(DISTINCT batch_id) AS all_batch_ids,
           list(DISTINCT batch_id) FILTER (WHERE in_use) AS in_use_batch_ids
    FROM nodes
    GROUP BY GROUPING SETS ((month, as_of), (month, as_of, district))
)
SELECT 'extranet_nodes' AS kpi_code, 'month' AS period_grain, month AS period_start, scope,
       nodes_in_use AS value, NULL::DOUBLE AS numerator, NULL::DOUBLE AS denominator,
       list_sort(all_batch_ids) AS batch_ids, as_of
FROM counts
WHERE scope IS NOT NULL
UNION ALL
SELECT 'extranet_levels_covered', 'month', month, scope,
       levels_in_use, NULL, NULL, list_sort(all_batch_ids), as_of
FROM counts
WHERE scope IS NOT NULL
UNION ALL
SELECT 'ipv6_dual_stack_share', 'month', month, scope,
       100 * dual_stack_nodes / nodes_in_use, dual_stack_nodes, nodes_in_use, list_sort(in_use_batch_ids), as_of
FROM counts
WHERE scope IS NOT NULL AND nodes_in_use > 0
