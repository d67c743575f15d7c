# ruff: noqa: E501  (rows of hand-made data read best one per line)
"""A small, realistic, hand-made warehouse for the exports and bulletin tests.

Core, quality and marts rows as the loaders and the marts would leave them after loading a
few departmental files up to March 2023. Figures are the bureau's published ones
(``shared/seeds``), so the bulletin reads like the bureau's own replies.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import yaml

from warehouse.ddl import create_all

CATALOGUE = Path(__file__).resolve().parents[1] / "warehouse" / "kpi_catalogue.yaml"
RUN_ID = "run-2023-04-02"
COMPUTED_AT = datetime(2023, 4, 2, 6, 0)

MARTS_DDL = """
CREATE SCHEMA IF NOT EXISTS marts;
CREATE TABLE IF NOT EXISTS marts.kpi_values (
    kpi_code VARCHAR, name_zh VARCHAR, period_grain VARCHAR, period_start DATE, scope VARCHAR,
    value DOUBLE, unit VARCHAR, numerator DOUBLE, denominator DOUBLE, batch_ids VARCHAR[],
    run_id VARCHAR, computed_at TIMESTAMP, as_of DATE);
CREATE TABLE IF NOT EXISTS marts.service_volume_monthly (
    month DATE, dept_code VARCHAR, region_code VARCHAR, source VARCHAR, cases BIGINT,
    online_cases BIGINT, full_online_cases BIGINT, reviews BIGINT, good_reviews BIGINT,
    bad_reviews BIGINT, auto_reviews BIGINT, batch_ids VARCHAR[]);
CREATE TABLE IF NOT EXISTS marts.kpi_catalogue (
    kpi_code VARCHAR, name_zh VARCHAR, unit VARCHAR, definition VARCHAR, sources VARCHAR[],
    reference DOUBLE);
"""

# Batches: (batch_id, dataset, source_path, status, read, loaded, quarantined, skipped, reason,
#           period_min, period_max)
BATCHES = [
    (
        "b-org-1",
        "org_units",
        "org_units/部门与区划_2023Q1.xlsx",
        "loaded",
        3030,
        3030,
        0,
        0,
        None,
        None,
        None,
    ),
    (
        "b-items-1",
        "service_items",
        "service_items/事项清单_2023-03.xlsx",
        "partially_loaded",
        3400,
        3398,
        2,
        0,
        "2行未通过校验，已隔离",
        None,
        None,
    ),
    (
        "b-nodes-1",
        "extranet_nodes",
        "extranet_nodes/外网接入点_2022.csv",
        "superseded",
        3900,
        3900,
        0,
        0,
        None,
        None,
        None,
    ),
    (
        "b-nodes-2",
        "extranet_nodes",
        "extranet_nodes/外网接入点_2023-03.csv",
        "loaded",
        4003,
        4003,
        0,
        0,
        None,
        None,
        None,
    ),
    (
        "b-cloud-1",
        "cloud_systems",
        "cloud_systems/政务云系统清单.xlsx",
        "loaded",
        301,
        301,
        0,
        0,
        None,
        None,
        None,
    ),
    (
        "b-ind-1",
        "indicators",
        "indicators/指标报送_大数据局_2022-04.xlsx",
        "loaded",
        14,
        14,
        0,
        1,
        None,
        "2021-12",
        "2022-04-28",
    ),
    (
        "b-ind-2",
        "indicators",
        "indicators/指标报送_2023Q1.csv",
        "loaded",
        3,
        3,
        0,
        0,
        None,
        "2023-Q1",
        "2023-Q1",
    ),
    (
        "b-cvm-1",
        "case_volume_monthly",
        "case_volume_monthly/办件量月报_2019-2021.xlsx",
        "loaded",
        48,
        48,
        0,
        2,
        None,
        "2019-01-01",
        "2021-12-01",
    ),
    (
        "b-cvm-2",
        "case_volume_monthly",
        "case_volume_monthly/办件量月报_2022上半年.xlsx",
        "partially_loaded",
        13,
        12,
        1,
        1,
        "1行未通过校验，已隔离",
        "2022-01-01",
        "2022-06-01",
    ),
    (
        "b-cases-1",
        "service_cases",
        "service_cases/办件明细_2022Q2.csv",
        "loaded",
        9000,
        9000,
        0,
        0,
        None,
        "2022-04-01 08:01:00",
        "2022-06-30 17:59:00",
    ),
    (
        "b-cases-2",
        "service_cases",
        "service_cases/办件明细_2023-03.csv",
        "partially_loaded",
        1200,
        1197,
        3,
        0,
        "3行未通过校验，已隔离",
        "2023-03-01 08:00:00",
        "2023-03-31 18:00:00",
    ),
    (
        "b-rev-1",
        "service_reviews",
        "service_reviews/好差评_2023-03.json",
        "loaded",
        800,
        800,
        0,
        0,
        None,
        "2023-03-01 09:00:00",
        "2023-03-31 20:00:00",
    ),
    (
        "b-rev-dup",
        "service_reviews",
        "service_reviews/好差评_2023-03(1).json",
        "duplicate",
        0,
        0,
        0,
        0,
        "与已载入的批次 b-rev-1（service_reviews/好差评_2023-03.json）内容完全相同，未重复载入",
        None,
        None,
    ),
    (
        "b-cases-bad",
        "service_cases",
        "service_cases/办件明细_乱码.csv",
        "failed",
        0,
        0,
        0,
        0,
        "文件无法读取：不是有效的CSV或Excel文件",
        None,
        None,
    ),
    (
        "b-cases-later",
        "service_cases",
        "service_cases/办件明细_2023-04.csv",
        "loaded",
        50,
        50,
        0,
        0,
        None,
        "2023-04-01 08:00:00",
        "2023-04-02 12:00:00",
    ),
]

QUARANTINE = [
    (
        "b-items-1",
        "service_items",
        17,
        "promised_days_range",
        "承诺办结时限（工作日）应在0到365之间，本行为400",
    ),
    (
        "b-items-1",
        "service_items",
        88,
        "handling_type_values",
        "办理类型只能是即办件或承诺件，本行为“即时办结”",
    ),
    (
        "b-cvm-2",
        "case_volume_monthly",
        9,
        "online_not_above_total",
        "其中网上办件量大于办件量，请核对两列数字",
    ),
    (
        "b-cases-2",
        "service_cases",
        102,
        "accepted_after_applied",
        "受理时间早于申请时间，请核对这两个时间",
    ),
    (
        "b-cases-2",
        "service_cases",
        311,
        "accepted_after_applied",
        "受理时间早于申请时间，请核对这两个时间",
    ),
    (
        "b-cases-2",
        "service_cases",
        990,
        "dept_code_reference",
        "实施部门编码在部门与区划中不存在：210100999",
    ),
]

CHECKS = [  # (dataset, suite, expectation, severity, success, observed, unexpected)
    (
        "service_cases",
        "service_cases",
        "expect_column_values_to_not_be_null(case_no)",
        "error",
        True,
        "0",
        0,
    ),
    (
        "service_cases",
        "service_cases",
        "reconcile_with_case_volume_monthly",
        "warn",
        False,
        '{"month": "2022-04", "gap_pct": 0.8}',
        1,
    ),
    (
        "service_items",
        "service_items",
        "expect_column_values_to_be_unique(item_code, version)",
        "error",
        True,
        "0",
        0,
    ),
    (
        "extranet_nodes",
        "extranet_nodes",
        "expect_column_values_to_match_regex(region_code)",
        "warn",
        False,
        '"3 nodes with a 6-digit code at street level"',
        3,
    ),
]

MONTHLY_REPORT_MONTHS = [
    date(y, m, 1) for y in (2019, 2020, 2021, 2022) for m in range(1, 13) if (y, m) <= (2022, 6)
]
RECORD_MONTHS = [
    date(y, m, 1) for y in (2022, 2023) for m in range(1, 13) if (2022, 4) <= (y, m) <= (2023, 3)
]
DEPTS = [("210100001", "210102"), ("210100002", "210103"), ("210102001", "210102")]


def _hash(text: str) -> str:
    return hashlib.sha256(b"test-key" + text.encode()).hexdigest()


def _catalogue() -> list[dict]:
    return yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))["kpis"]


# KPI values for March 2023 at city scope: (code, grain, period_start, value, numerator, denominator, batches)
KPI_ROWS = [
    (
        "case_volume_cumulative",
        "month",
        date(2023, 3, 1),
        70_854_000,
        None,
        None,
        ["b-cvm-1", "b-cvm-2", "b-cases-1", "b-cases-2"],
    ),
    (
        "review_valid_cumulative",
        "month",
        date(2023, 3, 1),
        46_522_000,
        None,
        None,
        ["b-cvm-1", "b-cvm-2", "b-rev-1"],
    ),
    ("item_online_rate", "snapshot", date(2023, 3, 31), 100.0, 3398, 3398, ["b-items-1"]),
    ("item_full_online_share", "snapshot", date(2023, 3, 31), 99.4, 3378, 3398, ["b-items-1"]),
    ("item_instant_share", "snapshot", date(2023, 3, 31), 70.3, 2389, 3398, ["b-items-1"]),
    ("case_online_rate", "month", date(2023, 3, 1), 94.2, 1128, 1197, ["b-cases-2"]),
    ("departments_onboarded", "snapshot", date(2023, 3, 31), 433, None, None, ["b-org-1"]),
    ("street_portals", "snapshot", date(2023, 3, 31), 180, None, None, ["b-org-1"]),
    ("community_portals", "snapshot", date(2023, 3, 31), 2413, None, None, ["b-org-1"]),
    ("extranet_nodes", "snapshot", date(2023, 3, 31), 3991, None, None, ["b-nodes-2"]),
    ("extranet_levels_covered", "snapshot", date(2023, 3, 31), 4, None, None, ["b-nodes-2"]),
    ("egress_bandwidth_gbps", "day", date(2021, 12, 31), 4.5, None, None, ["b-ind-1"]),
    ("egress_bandwidth_gbps", "day", date(2022, 4, 28), 20, None, None, ["b-ind-1"]),
    ("ipv6_dual_stack_share", "snapshot", date(2023, 3, 31), 87.65, 3498, 3991, ["b-nodes-2"]),
    ("cloud_systems_hosted", "snapshot", date(2023, 3, 31), 241, None, None, ["b-cloud-1"]),
    ("cloud_rate_nonclassified", "snapshot", date(2023, 3, 31), 80.0, 241, 301.25, ["b-cloud-1"]),
    ("machine_rooms_closed", "day", date(2022, 4, 28), 21, None, None, ["b-ind-1"]),
    ("base_libraries", "day", date(2022, 4, 28), 5, None, None, ["b-ind-1"]),
    ("theme_libraries", "day", date(2022, 4, 28), 24, None, None, ["b-ind-1"]),
    ("shared_catalog_entries", "day", date(2022, 4, 28), 9339, None, None, ["b-ind-1"]),
    ("records_aggregated", "quarter", date(2023, 1, 1), 4_900_000_000, None, None, ["b-ind-2"]),
    ("internet_hospitals", "day", date(2022, 4, 28), 16, None, None, ["b-ind-1"]),
    ("grassroots_medical_on_system", "day", date(2022, 4, 28), 5211, None, None, ["b-ind-1"]),
    ("parking_lots_connected", "day", date(2022, 4, 28), 588, None, None, ["b-ind-1"]),
    ("mobile_services", "day", date(2022, 4, 28), 260, None, None, ["b-ind-1"]),
    ("one_thing_items", "day", date(2022, 4, 28), 610, None, None, ["b-ind-1"]),
    ("enterprises_to_cloud", "year", date(2021, 1, 1), 631, None, None, ["b-ind-1"]),
    ("cloud_subsidy_yuan", "year", date(2021, 1, 1), 300_000_000, None, None, ["b-ind-1"]),
    ("satisfaction_rate", "month", date(2023, 3, 1), 99.87, 799, 800, ["b-rev-1"]),
    ("bad_review_rectification_rate", "month", date(2023, 3, 1), 100.0, 1, 1, ["b-rev-1"]),
    ("auto_review_share", "month", date(2023, 3, 1), 41.25, 330, 800, ["b-rev-1"]),
    (
        "on_time_completion_rate",
        "month",
        date(2023, 3, 1),
        98.6,
        1101,
        1117,
        ["b-cases-2", "b-items-1"],
    ),
    ("median_handling_days", "month", date(2023, 3, 1), 1.5, None, None, ["b-cases-2"]),
    # earlier periods and other scopes: the bulletin must pick the latest city figure
    (
        "case_volume_cumulative",
        "month",
        date(2023, 2, 1),
        70_212_345,
        None,
        None,
        ["b-cvm-1", "b-cases-1"],
    ),
    ("case_online_rate", "month", date(2023, 2, 1), 93.8, 1050, 1119, ["b-cases-1"]),
    ("case_online_rate", "quarter", date(2023, 1, 1), 94.0, 3300, 3510, ["b-cases-2"]),
]
KPI_DISTRICT_ROWS = [
    ("case_online_rate", "month", date(2023, 3, 1), "210102", 96.1, 600, 624, ["b-cases-2"]),
    (
        "case_volume_cumulative",
        "month",
        date(2023, 3, 1),
        "210103",
        12_345_678,
        None,
        None,
        ["b-cases-2"],
    ),
]


def build(con: duckdb.DuckDBPyConnection, *, with_kpis: bool = True) -> None:
    """Create every schema and fill it with the sample rows."""
    create_all(con)
    con.execute(MARTS_DDL)
    loaded = datetime(2023, 4, 2, 5, 0)

    for b in BATCHES:
        (batch_id, dataset, path, status, read, ok, quar, skipped, reason, pmin, pmax) = b
        con.execute(
            "INSERT INTO quality.load_batches (batch_id, dataset, source_path, sha256, received_at, run_id, "
            "rows_read, rows_loaded, rows_quarantined, rows_skipped, status, reason, encoding, period_min, "
            "period_max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                batch_id,
                dataset,
                path,
                hashlib.sha256(batch_id.encode()).hexdigest(),
                loaded,
                RUN_ID,
                read,
                ok,
                quar,
                skipped,
                status,
                reason,
                "utf-8",
                pmin,
                pmax,
            ],
        )
    for batch_id, dataset, row, rule, message in QUARANTINE:
        con.execute(
            "INSERT INTO quality.quarantine (batch_id, dataset, source_row, rule, rules, message, raw_values) "
            "VALUES (?, ?, ?, ?, [?], ?, ?::JSON)",
            [batch_id, dataset, row, rule, rule, message, '{"列": "值"}'],
        )
    for dataset, suite, expectation, severity, success, observed, unexpected in CHECKS:
        con.execute(
            "INSERT INTO quality.check_results (run_id, batch_id, dataset, suite, expectation, severity, success, "
            "observed_value, unexpected_count, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?::JSON, ?, ?)",
            [
                RUN_ID,
                None,
                dataset,
                suite,
                expectation,
                severity,
                success,
                observed,
                unexpected,
                loaded,
            ],
        )

    # --- registers
    org = [
        ("210100001", "沈阳市营商环境建设局", "市级部门", None, True, None),
        ("210100002", "沈阳市公安局", "市级部门", None, True, None),
        ("210102", "和平区", "区县", None, None, None),
        ("210103", "沈河区", "区县", None, None, None),
        ("210102001", "和平区政务服务中心", "区县级部门", "210102", True, None),
        ("210102001000", "南湖街道", "街道乡镇", "210102", None, True),
        ("210102001001", "三好社区", "社区村", "210102001000", None, True),
    ]
    for i, (code, name, kind, parent, on_platform, homepage) in enumerate(org):
        con.execute(
            "INSERT INTO core.org_units (code, name, unit_type, parent_code, on_platform, has_homepage, "
            "batch_id, source_row, extras, valid_from) VALUES (?, ?, ?, ?, ?, ?, 'b-org-1', ?, "
            '\'{"备注": "x"}\', ?)',
            [code, name, kind, parent, on_platform, homepage, i + 2, loaded],
        )
    items = [
        ("11210100MB0000001", "企业开办", "210100001", "即办件", True, True, 0, 1, "1.0", "在用"),
        (
            "11210100MB0000002",
            "居民身份证换领",
            "210100002",
            "承诺件",
            True,
            False,
            1,
            20,
            "2.1",
            "在用",
        ),
        (
            "11210100MB0000003",
            "医疗机构停业审批",
            "210100001",
            "即办件",
            True,
            True,
            0,
            0,
            "1.0",
            "停用",
        ),
    ]
    for i, r in enumerate(items):
        con.execute(
            "INSERT INTO core.service_items (item_code, item_name, dept_code, handling_type, "
            "online_available, full_online, onsite_visits, promised_days, version, item_status, "
            "batch_id, source_row, valid_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'b-items-1', ?, ?)",
            [*r, i + 3, loaded],
        )
    nodes = [
        ("N0001", "沈阳市大数据管理局", "市级", "210100", 10000.0, True, date(2019, 5, 1), "在用"),
        ("N0002", "和平区政务服务中心", "区县级", "210102", 1000.0, True, date(2020, 3, 9), "在用"),
        ("N0003", "南湖街道办事处", "街道乡镇级", "210102001", 100.0, False, None, "在用"),
        ("N0004", "三好社区", "社区村级", "210102001001", 50.0, None, date(2021, 7, 1), "撤销"),
    ]
    for i, r in enumerate(nodes):
        con.execute(
            "INSERT INTO core.extranet_nodes (node_id, unit_name, level, region_code, bandwidth_mbps, "
            "ipv6_dual_stack, opened_on, node_status, batch_id, source_row, valid_from) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'b-nodes-2', ?, ?)",
            [*r, i + 2, loaded],
        )
    # a superseded version: history, must not be exported
    con.execute(
        "INSERT INTO core.extranet_nodes (node_id, unit_name, level, region_code, bandwidth_mbps, "
        "ipv6_dual_stack, opened_on, node_status, batch_id, source_row, valid_from, valid_to) "
        "VALUES ('N0001', '沈阳市信息中心', '市级', '210100', 4500.0, false, DATE '2019-05-01', '在用', "
        "'b-nodes-1', 2, TIMESTAMP '2022-05-01', ?)",
        [loaded],
    )
    con.execute(
        "INSERT INTO core.cloud_systems (system_id, system_name, dept_code, classified, on_cloud, "
        "cloud_date, cloud_platform, batch_id, source_row, valid_from) VALUES "
        "('S001', '一体化政务服务平台', '210100001', false, true, DATE '2020-01-15', '沈阳市政务云', 'b-cloud-1', 2, ?),"
        "('S002', '公安内网业务系统', '210100002', true, false, NULL, NULL, 'b-cloud-1', 3, ?)",
        [loaded, loaded],
    )
    # --- aggregates
    con.execute(
        "INSERT INTO core.indicators (reporter, indicator, period, value, unit, definition_note, batch_id, "
        "source_row, valid_from) VALUES "
        "('沈阳市大数据管理局', 'egress_bandwidth_gbps', '2022-04-28', 20, 'G', NULL, 'b-ind-1', 3, ?),"
        "('沈阳市大数据管理局', 'records_aggregated', '2023-Q1', 4900000000, '条', '累计', 'b-ind-2', 2, ?),"
        "('沈阳市大数据管理局', 'egress_bandwidth_gbps', '2021-12', 4.5, 'G', NULL, 'b-ind-1', 2, ?)",
        [loaded, loaded, loaded],
    )
    for i, m in enumerate(MONTHLY_REPORT_MONTHS):
        batch = "b-cvm-1" if m.year < 2022 else "b-cvm-2"
        con.execute(
            "INSERT INTO core.case_volume_monthly (month, dept_code, cases, online_cases, valid_reviews, "
            "good_reviews, bad_reviews, batch_id, source_row, valid_from) VALUES (?, '210100001', ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                m,
                1_000_000 + 9_000 * i,
                900_000 + 8_500 * i,
                650_000 + 6_000 * i,
                640_000 + 6_000 * i,
                300 + i,
                batch,
                i + 3,
                loaded,
            ],
        )
    # --- records
    channels = ["网上办理"] * 6 + ["移动端"] * 3 + ["窗口办理"] * 2 + ["自助终端"]
    n = 0
    for m in (date(2022, 6, 1), date(2023, 3, 1), date(2023, 4, 1)):
        for i in range(60 if m != date(2023, 4, 1) else 5):
            n += 1
            applied = datetime(m.year, m.month, 1 + i % 28, 9, i % 60)
            batch = {2022: "b-cases-1"}.get(
                m.year, "b-cases-2" if m.month == 3 else "b-cases-later"
            )
            con.execute(
                "INSERT INTO core.service_cases (case_no, item_code, dept_code, region_code, channel, applied_at, "
                "accepted_at, finished_at, status, full_online, applicant_id_no, applicant_phone, batch_id, "
                "source_row, valid_from) VALUES (?, '11210100MB0000001', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    f"C{n:06d}",
                    DEPTS[i % 3][0],
                    DEPTS[i % 3][1],
                    channels[i % len(channels)],
                    applied,
                    applied + timedelta(hours=1),
                    applied + timedelta(days=1) if i % 5 else None,
                    "已办结" if i % 5 else "在办",
                    i % 4 != 0,
                    _hash(f"2101021990{n:08d}"),
                    _hash(f"139{n:08d}"),
                    batch,
                    i + 2,
                    loaded,
                ],
            )
    for i in range(40):
        con.execute(
            "INSERT INTO core.service_reviews (review_no, case_no, rating, channel, reviewed_at, auto_review, "
            "rectification, rectified_at, batch_id, source_row, valid_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'b-rev-1', ?, ?)",
            [
                f"R{i:06d}",
                f"C{i + 61:06d}",
                5 if i % 13 else 1,
                ["政务服务网", "APP", "评价器"][i % 3],
                datetime(2023, 3, 1 + i % 28, 15, 0),
                i % 3 == 0,
                "无需整改" if i % 13 else "已整改",
                None if i % 13 else datetime(2023, 3, 30, 10, 0),
                i + 2,
                loaded,
            ],
        )

    # --- marts
    for c in _catalogue():
        con.execute(
            "INSERT INTO marts.kpi_catalogue VALUES (?, ?, ?, ?, ?, ?)",
            [c["code"], c["name_zh"], c["unit"], c["definition"], c["source"], c.get("reference")],
        )
    for m in MONTHLY_REPORT_MONTHS:
        k = MONTHLY_REPORT_MONTHS.index(m)
        for d, (dept, region) in enumerate(DEPTS[:2]):
            cases = 800_000 + 9_000 * k + 150_000 * d
            con.execute(
                "INSERT INTO marts.service_volume_monthly VALUES (?, ?, ?, 'monthly_report', ?, ?, NULL, "
                "?, ?, ?, NULL, ?)",
                [
                    m,
                    dept,
                    region,
                    cases,
                    int(cases * 0.9),
                    int(cases * 0.62),
                    int(cases * 0.615),
                    300 + k,
                    ["b-cvm-1" if m.year < 2022 else "b-cvm-2"],
                ],
            )
    for m in RECORD_MONTHS:
        k = RECORD_MONTHS.index(m)
        for d, (dept, region) in enumerate(DEPTS):
            cases = 760_000 + 14_000 * k + 120_000 * d - (90_000 if m.month == 2 else 0)
            con.execute(
                "INSERT INTO marts.service_volume_monthly VALUES (?, ?, ?, 'records', ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    m,
                    dept,
                    region,
                    cases,
                    int(cases * 0.942),
                    int(cases * 0.9),
                    int(cases * 0.66),
                    int(cases * 0.655),
                    250 + 7 * k,
                    int(cases * 0.27),
                    ["b-cases-1" if m.year == 2022 else "b-cases-2"],
                ],
            )
    if not with_kpis:
        return
    names = {c["code"]: (c["name_zh"], c["unit"]) for c in _catalogue()}
    rows = [
        (code, grain, start, "city", value, num, den, batches)
        for code, grain, start, value, num, den, batches in KPI_ROWS
    ]
    rows += [
        (code, grain, start, scope, value, num, den, batches)
        for code, grain, start, scope, value, num, den, batches in KPI_DISTRICT_ROWS
    ]
    for code, grain, start, scope, value, num, den, batches in rows:
        name, unit = names[code]
        con.execute(
            "INSERT INTO marts.kpi_values VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            [
                code,
                name,
                grain,
                start,
                scope,
                float(value),
                unit,
                num,
                den,
                batches,
                RUN_ID,
                COMPUTED_AT,
            ],
        )


_TEMPLATE: Path | None = None


def connect_copy(directory: Path) -> duckdb.DuckDBPyConnection:
    """A connection to a fresh copy of the sample warehouse in ``directory`` (built once per process)."""
    global _TEMPLATE
    if _TEMPLATE is None or not _TEMPLATE.exists():
        folder = Path(tempfile.mkdtemp(prefix="govmetrics-sample-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "sample.duckdb"
        with duckdb.connect(str(path)) as con:
            build(con)
        _TEMPLATE = path
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "warehouse.duckdb"
    shutil.copyfile(_TEMPLATE, target)
    return duckdb.connect(str(target))
