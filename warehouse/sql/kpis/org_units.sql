-- kpi_codes: departments_onboarded, street_portals, community_portals
--
-- departments_onboarded 接入部门数（个）
--   口径：接入一体化政务服务平台的市、区两级部门数（类型为“市级部门”或“区县级部门”且“是否接入平台”为是）。
-- street_portals 街道(乡镇)服务主页（个）
--   口径：已开通线上服务主页的街道（乡镇）数（类型为“街道乡镇”且“是否开通服务主页”为是）。
-- community_portals 社区(村)服务主页（个）
--   口径：已开通线上服务主页的社区（村）数（类型为“社区村”且“是否开通服务主页”为是）。
--
-- 计算方法：部门与区划是登记表，统计期为“截至某日”（period_grain = 'snapshot'，period_start = 截至日期）：
--   * 截至日期 = 登记表每次载入（或撤下版本）的日期（core.org_units 的 valid_from、valid_to 的日期）；
--   * 截至某日日终有效的版本 = valid_from < 次日零点 且 (valid_to 为空 或 valid_to >= 次日零点)。
--   * “是否接入平台”“是否开通服务主页”为空的按否计。
--   * 范围：全市（city）；街道、社区服务主页另按区县统计：区县取上级链（上级或上上级中类型为“区县”的单位），
--     上级链找不到时取编码前6位（9位街道码、12位社区码）。
--   * 登记表中没有该类单位（如没有任何街道）时不出数；有该类单位但都未开通时为 0。
--   batch_ids：计入统计的该类单位行的批次。
WITH snapshot_dates AS (
    SELECT DISTINCT valid_from::DATE AS snapshot_date FROM core.org_units
    UNION
    SELECT DISTINCT valid_to::DATE FROM core.org_units WHERE valid_to IS NOT NULL
),
units AS (
    SELECT d.snapshot_date, u.code, u.unit_type, u.parent_code, u.on_platform, u.has_homepage, u.batch_id
    FROM snapshot_dates AS d
    JOIN core.org_units AS u
      ON u.valid_from < d.snapshot_date + INTERVAL 1 DAY
     AND (u.valid_to IS NULL OR u.valid_to >= d.snapshot_date + INTERVAL 1 DAY)
),
placed AS (
    SELECT u.*,
           coalesce(
               CASE WHEN p.unit_type = '区县' THEN p.code END,
               CASE WHEN g.unit_type = '区县' THEN g.code END,
               CASE WHEN regexp_full_match(u.code, '[0-9]{9}([0-9]{3})?') THEN left(u.code, 6) END
           ) AS district
    FROM units AS u
    LEFT JOIN units AS p ON p.snapshot_date = u.snapshot_date AND p.code = u.parent_code
    LEFT JOIN units AS g ON g.snapshot_date = u.snapshot_date AND g.code = p.parent_code
),
figures AS (
    SELECT 'departments_onboarded' AS kpi_code, snapshot_date, 'city' AS scope,
           count(*) FILTER (WHERE on_platform) AS value,
           list(DISTINCT batch_id) AS batch_ids
    FROM placed
    WHERE unit_type IN ('市级部门', '区县级部门')
    GROUP BY snapshot_date
    UNION ALL
    SELECT CASE unit_type WHEN '街道乡镇' THEN 'street_portals' ELSE 'community_portals' END,
           snapshot_date,
           CASE WHEN grouping(district) = 0 THEN district ELSE 'city' END,
           count(*) FILTER (WHERE has_homepage),
           list(DISTINCT batch_id)
    FROM placed
    WHERE unit_type IN ('街道乡镇', '社区村')
    GROUP BY GROUPING SETS ((unit_type, snapshot_date), (unit_type, snapshot_date, district))
)
SELECT kpi_code,
       'snapshot' AS period_grain,
       snapshot_date AS period_start,
       scope,
       value::DOUBLE AS value,
       NULL::DOUBLE AS numerator,
       NULL::DOUBLE AS denominator,
       list_sort(batch_ids) AS batch_ids
FROM figures
WHERE scope IS NOT NULL
