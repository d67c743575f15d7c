-- kpi_source: indicators
-- （本文件计算指标目录中来源（source）仅为 indicators 的全部指标：新增此类指标只需在目录中登记。）
--
-- 口径：各部门经指标报送表报送的数值，按报送的统计期逐期出数，数值即报送值（载入时已换算为指标单位），
-- 范围 = 全市。目录中这些指标的“最近一次报送值”= 统计期最晚（period_start 最大）的那一行，由使用方选取。
--
-- 计算方法（只用当前有效数据 latest.indicators）：
--   * 统计期粒度由统计期写法决定：'2022' → year（2022-01-01）；'2022-Q1' → quarter（季度首日）；
--     '2022-04' → month（月首日）；'2022-04-28' → day。其他写法不出数。
--   * 同一指标、同一统计期有多个报送单位（或多行）时，取最近载入的一行：valid_from 最晚者优先，
--     其次源文件行号（source_row）大者，再次批次编号大者；不做加总或平均。
--   batch_ids：被采用的那一行的批次。
WITH indicator_kpis AS (
    SELECT kpi_code FROM marts.kpi_catalogue WHERE sources = ['indicators']
),
reported AS (
    SELECT i.indicator AS kpi_code,
           CASE
               WHEN regexp_full_match(i.period, '[0-9]{4}') THEN 'year'
               WHEN regexp_full_match(i.period, '[0-9]{4}-Q[1-4]') THEN 'quarter'
               WHEN regexp_full_match(i.period, '[0-9]{4}-[0-9]{2}') THEN 'month'
               WHEN regexp_full_match(i.period, '[0-9]{4}-[0-9]{2}-[0-9]{2}') THEN 'day'
           END AS period_grain,
           i.period,
           i.value,
           i.batch_id,
           i.valid_from,
           i.source_row
    FROM latest.indicators AS i
    JOIN indicator_kpis AS k ON k.kpi_code = i.indicator
    WHERE i.value IS NOT NULL
),
dated AS (
    SELECT *,
           CASE period_grain
               WHEN 'year' THEN try_cast(period || '-01-01' AS DATE)
               WHEN 'quarter' THEN make_date(left(period, 4)::INTEGER, 3 * right(period, 1)::INTEGER - 2, 1)
               WHEN 'month' THEN try_cast(period || '-01' AS DATE)
               WHEN 'day' THEN try_cast(period AS DATE)
           END AS period_start
    FROM reported
    WHERE period_grain IS NOT NULL
)
SELECT kpi_code,
       period_grain,
       period_start,
       'city' AS scope,
       value::DOUBLE AS value,
       NULL::DOUBLE AS numerator,
       NULL::DOUBLE AS denominator,
       [batch_id] AS batch_ids
FROM dated
WHERE period_start IS NOT NULL
QUALIFY row_number() OVER (
    PARTITION BY kpi_code, period_grain, period_start
    ORDER BY valid_from DESC, source_row DESC NULLS LAST, batch_id DESC
) = 1
