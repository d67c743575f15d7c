-- kpi_codes: departments_onboarded, street_portals, community_portals
--
-- departments_onboarded 接入部门数（个）
--   口径：接入一体化政务服务平台的市、区两级部门数（类型为“市级部门”或“区县级部门”且“是否接入平台”为是）。
-- street_portals 街道(乡镇)服务主页（个）
--   口径：已开通线上服务主页的街道（乡镇）数（类型为“街道乡镇”且“是否开通服务主页”为是）。
-- community_portals 社区(村)服务主页（个）
--   口径：已开通线上服务主页的社区（村）数（类型为“社区村”且“是否开通服务主页”为是）。
--
-- 计算方法：登记表每期是全量快照，注明它所述的日期（as_of：统计日期/截至日期/标题中的“截至…”）。
-- 统计期 = 月（period_grain = 'month'，period_start = 月首日），取截至月末的最近一期快照：
-- org_units_at_month_end（临时视图，见 warehouse/marts.py）= latest.org_units 中 as_of 为
-- “不晚于月末的最大 as_of”的行；输出的 as_of = 所用快照的截至日期（可能早于月末）。
-- 第一期快照之前的月份不出数；后到的更正文件只改它所述的那一期及沿用它的月份。
--   * “是否接入平台”“是否开通服务主页”为空的按否计。
--   * 范围：全市（city）；街道、社区服务主页另按区县统计：区县取上级链（上级或上上级中类型为“区县”的单位），
--     上级链找不到时取编码前6位（9位街道码、12位社区码）。
--   * 登记表中没有该类单位（如没有任何街道）时不出数；有该类单位但都未开通时为 0。
--   batch_ids：计入统计的该类单位行的批次。
WITH units AS (
    SELECT u.month, u.as_of, u.code, u.unit_type, u.parent_code, u.on_platform, u.has_homepage, u.batch_id
    FROM org_units_at_month_end AS u
),
placed AS (
    SELECT u.*,
           coalesce(
               CASE WHEN p.unit_type = '区县' THEN p.code END,
               CASE WHEN g.unit_type = '区县' THEN g.code END,
               CASE WHEN regexp_full_match(u.code, '[0-9]{9}([0-9]{3})?') THEN left(u.code, 6) END
           ) AS district
    FROM units AS u
    LEFT JOIN units AS p ON p.month = u.month AND p.code = u.parent_code
    LEFT JOIN units AS g ON g.month = u.month AND g.code = p.parent_code
),
figures AS (
    SELECT 'departments_onboarded' AS kpi_code, month, as_of, 'city' AS scope,
           count(*) FILTER (WHERE on_platform) AS value,
           list(DISTINCT batch_id) AS batch_ids
    FROM placed
    WHERE unit_type IN ('市级部门', '区县级部门')
    GROUP BY month, as_of
    UNION ALL
    SELECT CASE unit_type WHEN '街道乡镇' THEN 'street_portals' ELSE 'community_portals' END,
           month,
           as_of,
           CASE WHEN grouping(district) = 0 THEN district ELSE 'city' END,
           count(*) FILTER (WHERE has_homepage),
           list(DISTINCT batch_id)
    FROM placed
    WHERE unit_type IN ('街道乡镇', '社区村')
    GROUP BY GROUPING SETS ((unit_type, month, as_of), (unit_type, month, as_of, district))
)
SELECT kpi_code,
       'month' AS period_grain,
       month AS period_start,
       scope,
       value::DOUBLE AS value,
       NULL::DOUBLE AS numerator,
       NULL::DOUBLE AS denominator,
       list_sort(batch_ids) AS batch_ids,
       as_of
FROM figures
WHERE scope IS NOT NULL
