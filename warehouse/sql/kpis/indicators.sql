-- kpi_source: indicators
-- （本文件计算指标目录中来源（source）仅为 indicators 的全部指标：新增此类指标只需在目录中登记。）
--
-- 口径：各部门经指标报送表报送的数值，数值即报送值（载入时已换算为指标单位），范围 = 全市。
-- 这些指标都是存量或累计数（截至某日的数），所以：
--   * 每月一行（period_grain = 'month'）：截至月末最近一次报送的值，即统计期末日 <= 月末日的报送中
--     统计期末日最晚的一行；as_of = 该报送期的末日（年 → 12月31日，季 → 季末，月 → 月末，日 → 当日）。
--     月份范围 = kpi_months（其他数据覆盖的月份，见 warehouse/marts.py），从第一次报送所在月起；
--   * 按年、季、日报送的，另按其报送粒度各出一行；按月报送的即上面的月度行（报送月份超出 kpi_months
--     时照样出该月一行）。
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
),
chosen AS (
    SELECT *,
           CASE period_grain
               WHEN 'year' THEN make_date(year(period_start), 12, 31)
               WHEN 'quarter' THEN last_day(period_start + INTERVAL 2 MONTH)
               WHEN 'month' THEN last_day(period_start)
               ELSE period_start
           END AS period_end
    FROM dated
    WHERE period_start IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY kpi_code, period_grain, period_start
        ORDER BY valid_from DESC, source_row DESC NULLS LAST, batch_id DESC
    ) = 1
),
month_ends AS (
    SELECT m.month, c.*
    FROM kpi_months AS m
    JOIN chosen AS c ON c.period_end <= m.month_end
    QUALIFY row_number() OVER (
        PARTITION BY c.kpi_code, m.month
        ORDER BY c.period_end DESC, c.valid_from DESC,
                 CASE c.period_grain WHEN 'day' THEN 0 WHEN 'month' THEN 1 WHEN 'quarter' THEN 2 ELSE 3 END
    ) = 1
)
SELECT kpi_code, 'month' AS period_grain, month AS period_start, 'city' AS scope, value::DOUBLE AS value,
       NULL::DOUBLE AS numerator, NULL::DOUBLE AS denominator, [batch_id] AS batch_ids, period_end AS as_of
FROM month_ends
UNION ALL
SELECT kpi_code, period_grain, period_start, 'city', value::DOUBLE, NULL, NULL, [batch_id], period_end
FROM chosen
-- a year, quarter or day report at its own grain; a month reported beyond the other data's months
WHERE period_grain <> 'month' OR period_start NOT IN (SELECT month FROM kpi_months)
