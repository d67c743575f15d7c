-- TEMP case_counts_by_batch 办件按月份、部门、区县与批次计数（中间表，不发布）
--
-- 一行 = 申请月份 × 实施部门 × 区县 × 办件批次，只用当前有效数据（latest.*）。
-- 办件按申请时间（applied_at）归月；区县 = 行政区划代码前6位；前6位以“00”结尾的是市本级，
-- 不属于任何区县，记为 NULL。网上办件 = 申办渠道为“网上办理”或“移动端”。
--
-- 用途：marts.service_volume_monthly 的办件类数字、网上实办率（case_online_rate）和累计办件量
-- （case_volume_cumulative）都按月份、部门（和区县）数办件，并判断某月是否有办件明细（本表有该月的行）。
-- 全量时是 7400 万件办件的一次扫描和分组，只在这里做一次，三处都读本表。
-- 按批次分行：三处各自再按所需的维度合并，并列出所依据的批次（比在数千万行上做 list(DISTINCT batch_id) 快）。
SELECT
    date_trunc('month', applied_at)::DATE AS month,
    dept_code,
    CASE WHEN right(left(region_code, 6), 2) <> '00' THEN left(region_code, 6) END AS region_code,
    batch_id,
    count(*) AS cases,
    count(*) FILTER (WHERE channel IN ('网上办理', '移动端')) AS online_cases,
    count(*) FILTER (WHERE full_online) AS full_online_cases
FROM latest.service_cases
GROUP BY ALL
