-- marts_state.case_counts_by_batch 办件按月份、部门、区县与批次计数（中间表，不发布）
--
-- 一行 = 申请月份 × 实施部门 × 区县 × 办件批次，只计当前有效数据（latest.*）。
-- 办件按申请时间（applied_at）归月；区县 = 行政区划代码前6位；前6位以“00”结尾的是市本级，
-- 不属于任何区县，记为 NULL。网上办件 = 申办渠道为“网上办理”或“移动端”。
--
-- 用途：marts.service_volume_monthly 的办件类数字、网上实办率（case_online_rate）和累计办件量
-- （case_volume_cumulative）都按月份、部门（和区县）数办件，并判断某月是否有办件明细（本表有该月的行）。
-- 按批次分行：三处各自再按所需的维度合并，并列出所依据的批次（比在数千万行上做 list(DISTINCT batch_id) 快）。
--
-- {cases} 是参与计数的办件行，每行带符号 sign：全量重建时是 latest.service_cases 的每一行（+1）；
-- 增量更新时是上次构建以来新增的当前行（+1）和被关闭的行（-1），结果加到上次的计数上
-- （warehouse/marts.py 的 _update_shared_counts）。全量时是 7400 万件办件的一次扫描，增量时只读变化的行。
SELECT
    date_trunc('month', applied_at)::DATE AS month,
    dept_code,
    CASE WHEN right(left(region_code, 6), 2) <> '00' THEN left(region_code, 6) END AS region_code,
    batch_id,
    sum(sign)::BIGINT AS cases,
    coalesce(sum(sign) FILTER (WHERE channel IN ('网上办理', '移动端')), 0)::BIGINT AS online_cases,
    coalesce(sum(sign) FILTER (WHERE full_online), 0)::BIGINT AS full_online_cases
FROM {cases}
GROUP BY ALL
