"""Header matching and value normalisation against the real contracts."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from assets.ingest.normalise import (
    POLARS_TYPES,
    HeaderMatch,
    match_headers,
    normalise,
    parse_number,
    parse_period,
    parse_value,
)
from assets.ingest.readers import SourceTable, read_file
from expectations.contract import get_contract

KEY = b"test-pii-key"


def table_of(columns: list[str], units: dict[str, str] | None = None, **kw) -> SourceTable:
    return SourceTable(
        sheet=None, columns=columns, units=units or {}, encoding="utf-8", chunks=iter(()), **kw
    )


def frame_of(columns: list[str], rows: list[list[str | None]]) -> pl.DataFrame:
    data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
    frame = pl.DataFrame(data, schema={c: pl.String for c in columns})
    return frame.with_columns(
        pl.int_range(2, 2 + frame.height, dtype=pl.Int64).alias("__row"),
        pl.lit(False).alias("__total"),
    )


def run(
    dataset: str,
    columns: list[str],
    rows: list[list[str | None]],
    units: dict[str, str] | None = None,
    **kw,
) -> tuple[HeaderMatch, pl.DataFrame]:
    contract = get_contract(dataset)
    match = match_headers(table_of(columns, units, **kw), contract)
    return match, normalise(frame_of(columns, rows), match, contract, KEY)


# ------------------------------------------------------------------------------------------ headers


def test_shuffled_chinese_english_and_full_width_headers() -> None:
    contract = get_contract("service_cases")
    columns = [
        "申办渠道",
        " 办件编号 ",
        "item_code",
        "实施部门编码",
        "行政区划代码",
        "申请时间（北京时间）",
        "办理状态",
        "身份证号",
        "联系电话",
        "序号",
    ]
    match = match_headers(table_of(columns), contract)
    assert match.mapping == {
        "申办渠道": "channel",
        " 办件编号 ": "case_no",
        "item_code": "item_code",
        "实施部门编码": "dept_code",
        "行政区划代码": "region_code",
        "申请时间（北京时间）": "applied_at",
        "办理状态": "status",
        "身份证号": "applicant_id_no",
        "联系电话": "applicant_phone",
    }
    assert match.extras == ["序号"]
    assert match.missing_required == []


def test_unit_in_header_is_stripped_and_kept() -> None:
    contract = get_contract("case_volume_monthly")
    columns = ["月份", "部门编码", "办件量（万件）", "其中：网上办件量(万件)", "有效评价数【万条】"]
    units = {
        "办件量（万件）": "万件",
        "其中：网上办件量(万件)": "万件",
        "有效评价数【万条】": "万条",
    }
    match = match_headers(table_of(columns, units), contract)
    assert match.mapping == {
        "月份": "month",
        "部门编码": "dept_code",
        "办件量（万件）": "cases",
        "其中：网上办件量(万件)": "online_cases",
        "有效评价数【万条】": "valid_reviews",
    }
    assert match.header_units == {"cases": "万件", "online_cases": "万件", "valid_reviews": "万条"}


def test_alias_with_a_bracket_matches_whole_first() -> None:
    contract = get_contract("extranet_nodes")
    match = match_headers(
        table_of(
            ["接入点编号", "接入带宽(Mbps)", "接入带宽（Gbps）"],
            {"接入带宽(Mbps)": "Mbps", "接入带宽（Gbps）": "Gbps"},
        ),
        contract,
    )
    assert match.mapping["接入带宽(Mbps)"] == "bandwidth_mbps"
    assert "接入带宽（Gbps）" in match.extras  # the column is already claimed by a better match
    assert set(match.missing_required) == {"unit_name", "level", "region_code", "node_status"}


def test_sql_looking_header_ends_up_in_extras_and_nowhere_else() -> None:
    evil = '"x"; DROP TABLE core.service_cases; --'
    columns = ["编码", "名称", "类型", evil]
    match, out = run("org_units", columns, [["210100", "市局", "市级部门", "1; DELETE FROM x"]])
    assert match.extras == [evil]
    assert evil not in match.mapping and evil not in match.mapping.values()
    assert evil not in out.columns
    assert not any(evil in c for c in out.columns)
    assert json.loads(out["__extras"][0]) == {evil: "1; DELETE FROM x"}
    assert json.loads(out["__raw"][0])[evil] == "1; DELETE FROM x"


def test_two_row_header_from_xlsx_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "monthly.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("月报")
    ws.merge_range(0, 0, 0, 7, "沈阳市政务服务办件量统计表")
    ws.write(1, 0, "单位：万件")
    ws.merge_range(2, 0, 3, 0, "统计月份")
    ws.merge_range(2, 1, 3, 1, "实施部门编码")
    ws.merge_range(2, 2, 2, 3, "办件量")
    ws.write_row(3, 2, ["合计", "其中网上"])
    ws.merge_range(2, 4, 2, 6, "好差评（万条）")
    ws.write_row(3, 4, ["有效评价数", "好评数", "差评数"])
    ws.write(2, 7, "填报人")
    ws.write_row(4, 0, ["2023年3月", "210100", "152.3", "140.1", "12.5", "12.4", "0.1", "张三"])
    ws.write_row(5, 0, ["2023-04", "210200", 7085.4, "6600", "4,652.2", "4600", "2", "李四"])
    ws.write_row(7, 0, ["合计", None, "7237.7", None, None, None, None])
    wb.close()
    (table,) = read_file(path)
    contract = get_contract("case_volume_monthly")
    match = match_headers(table, contract)
    assert match.mapping == {
        "统计月份": "month",
        "实施部门编码": "dept_code",
        "办件量/合计": "cases",
        "办件量/其中网上": "online_cases",
        "好差评（万条）/有效评价数": "valid_reviews",
        "好差评（万条）/好评数": "good_reviews",
        "好差评（万条）/差评数": "bad_reviews",
    }
    assert match.missing_required == []
    assert match.extras == ["填报人"]
    assert match.hashed_extras == ["填报人"]  # a person's name: hashed in __raw / __extras
    out = pl.concat([normalise(chunk, match, contract, KEY) for chunk in table.chunks])
    assert out["month"].to_list() == [dt.date(2023, 3, 1), dt.date(2023, 4, 1), None]
    assert out["cases"].to_list() == [1_523_000, 70_854_000, 72_377_000]
    assert out["online_cases"].to_list() == [1_401_000, 66_000_000, None]
    assert out["valid_reviews"].to_list() == [125_000, 46_522_000, None]
    assert out["bad_reviews"].to_list() == [1_000, 20_000, None]
    assert out["__row"].to_list() == [5, 6, 8]
    assert out["__total"].to_list() == [False, False, True]
    assert out["month__invalid"].to_list() == [
        False,
        False,
        True,
    ]  # '合计' is no month; the caller skips totals
    assert json.loads(out["__raw"][0])["办件量/合计"] == "152.3"


# ------------------------------------------------------------------------------------------ values


@pytest.mark.parametrize(
    ("text", "type_", "unit", "expected"),
    [
        # counts: exact after multipliers
        ("7085.4万", "count", None, 70_854_000),
        ("4652.2万", "count", None, 46_522_000),
        ("49亿", "count", None, 4_900_000_000),
        ("4,652.2万条", "count", None, 46_522_000),
        ("３９９１", "count", None, 3991),
        ("3,991", "count", None, 3991),
        ("152.3", "count", "万件", 1_523_000),
        ("7085.4", "count", "万件", 70_854_000),
        ("7085.4万", "count", "万件", 70_854_000),  # the value's own unit wins
        ("152件", "count", "万件", 152),
        ("0.1", "count", "万", 1_000),
        ("1.23456万", "count", None, 12_346),  # a fraction left after a multiplier is rounded
        ("2.5", "count", None, None),  # a count cannot be a fraction
        ("-12", "integer", None, -12),
        ("12.0", "integer", None, 12),
        ("1e3", "count", None, 1000),
        ("abc", "count", None, None),
        # numbers
        ("3亿元", "number", None, 300_000_000.0),
        ("49亿条", "number", None, 4_900_000_000.0),
        ("7085.4万", "number", None, 70_854_000.0),
        ("１２.５", "number", None, 12.5),
        ("99.4%", "number", None, 99.4),
        # rates
        ("99.4%", "rate", None, 0.994),
        ("99.4", "rate", "%", 0.994),
        ("0.994", "rate", None, 0.994),
        ("９９.４％", "rate", None, 0.994),
        ("120%", "rate", None, 1.2),
        ("5‰", "rate", None, 0.005),
        # bandwidth
        ("20G", "bandwidth_mbps", None, 20_000.0),
        ("20Gbps", "bandwidth_mbps", None, 20_000.0),
        ("4.5G", "bandwidth_mbps", None, 4_500.0),
        ("1000M", "bandwidth_mbps", None, 1_000.0),
        ("100Mbps", "bandwidth_mbps", None, 100.0),
        ("100 mbps", "bandwidth_mbps", None, 100.0),
        ("100", "bandwidth_mbps", "Mbps", 100.0),
        ("100", "bandwidth_mbps", None, 100.0),
        ("10", "bandwidth_mbps", "G", 10_000.0),
        ("千兆", "bandwidth_mbps", None, 1_000.0),
        ("万兆", "bandwidth_mbps", None, 10_000.0),
        ("20斤", "bandwidth_mbps", None, None),
        # booleans
        ("是", "boolean", None, True),
        ("否", "boolean", None, False),
        ("Y", "boolean", None, True),
        ("n", "boolean", None, False),
        ("1", "boolean", None, True),
        ("0", "boolean", None, False),
        ("true", "boolean", None, True),
        ("FALSE", "boolean", None, False),
        ("有", "boolean", None, True),
        ("无", "boolean", None, False),
        ("已开通", "boolean", None, True),
        ("未开通", "boolean", None, False),
        ("√", "boolean", None, True),
        ("×", "boolean", None, False),
        ("也许", "boolean", None, None),
        # ratings
        ("5", "rating", None, 5),
        ("５", "rating", None, 5),
        ("4.0", "rating", None, 4),
        ("非常满意", "rating", None, 5),
        ("满意", "rating", None, 4),
        ("基本满意", "rating", None, 3),
        ("不满意", "rating", None, 2),
        ("非常不满意", "rating", None, 1),
        ("5星", "rating", None, 5),
        ("五星", "rating", None, 5),
        ("★★", "rating", None, 2),
        ("5(非常满意)", "rating", None, 5),
        ("非常满意（5）", "rating", None, 5),
        ("6", "rating", None, None),
        ("0", "rating", None, None),
        ("好", "rating", None, None),
        # dates
        ("2022年4月28日", "date", None, dt.date(2022, 4, 28)),
        ("2022-04-28", "date", None, dt.date(2022, 4, 28)),
        ("2022/4/28", "date", None, dt.date(2022, 4, 28)),
        ("2022.4.28", "date", None, dt.date(2022, 4, 28)),
        ("20220428", "date", None, dt.date(2022, 4, 28)),
        ("２０２２年４月２８日", "date", None, dt.date(2022, 4, 28)),
        ("44679", "date", None, dt.date(2022, 4, 28)),
        ("2022-04-28 00:00:00", "date", None, dt.date(2022, 4, 28)),
        ("2023-02-30", "date", None, None),
        ("昨天", "date", None, None),
        # timestamps
        ("2022-04-28 09:30:00", "timestamp", None, dt.datetime(2022, 4, 28, 9, 30)),
        ("2022/4/28 9:30", "timestamp", None, dt.datetime(2022, 4, 28, 9, 30)),
        ("2022年4月28日 9时30分", "timestamp", None, dt.datetime(2022, 4, 28, 9, 30)),
        ("2022年4月28日9时30分15秒", "timestamp", None, dt.datetime(2022, 4, 28, 9, 30, 15)),
        ("2022-04-28", "timestamp", None, dt.datetime(2022, 4, 28)),
        ("2022-04-28T09:30:00", "timestamp", None, dt.datetime(2022, 4, 28, 9, 30)),
        ("2022-04-28T01:30:00Z", "timestamp", None, dt.datetime(2022, 4, 28, 9, 30)),
        ("2022-04-28 09:30:00+08:00", "timestamp", None, dt.datetime(2022, 4, 28, 9, 30)),
        (
            "2022-04-28 09:30:00.250000",
            "timestamp",
            None,
            dt.datetime(2022, 4, 28, 9, 30, 0, 250_000),
        ),
        ("2022/4/28 下午2:30", "timestamp", None, dt.datetime(2022, 4, 28, 14, 30)),
        ("20220428093000", "timestamp", None, dt.datetime(2022, 4, 28, 9, 30)),
        ("44679", "timestamp", None, dt.datetime(2022, 4, 28)),
        ("44679.5", "timestamp", None, dt.datetime(2022, 4, 28, 12, 0)),
        ("2022-04-28 25:00", "timestamp", None, None),
        # months
        ("2023年3月", "month", None, dt.date(2023, 3, 1)),
        ("2023-03", "month", None, dt.date(2023, 3, 1)),
        ("2023/3", "month", None, dt.date(2023, 3, 1)),
        ("202303", "month", None, dt.date(2023, 3, 1)),
        ("2023.3", "month", None, dt.date(2023, 3, 1)),
        ("2023年03月份", "month", None, dt.date(2023, 3, 1)),
        ("2023-03-28", "month", None, dt.date(2023, 3, 1)),
        ("2023年3月28日", "month", None, dt.date(2023, 3, 1)),
        ("44986", "month", None, dt.date(2023, 3, 1)),
        ("2023-13", "month", None, None),
        # periods
        ("2023年", "period", None, "2023"),
        ("2023", "period", None, "2023"),
        ("2023年度", "period", None, "2023"),
        ("2023Q1", "period", None, "2023-Q1"),
        ("2023-Q4", "period", None, "2023-Q4"),
        ("2023年第一季度", "period", None, "2023-Q1"),
        ("2023年1季度", "period", None, "2023-Q1"),
        ("2023年第三季度", "period", None, "2023-Q3"),
        ("2023年3月", "period", None, "2023-03"),
        ("2023-03", "period", None, "2023-03"),
        ("2023-03-28", "period", None, "2023-03-28"),
        ("2023年3月28日", "period", None, "2023-03-28"),
        ("截至2021年底", "period", None, "2021"),
        ("截至2022年6月底", "period", None, "2022-06"),
        ("2023年上半年", "period", None, None),
        ("2023Q5", "period", None, None),
        # indicators
        ("互联网出口带宽", "indicator", None, "egress_bandwidth_gbps"),
        ("egress_bandwidth_gbps", "indicator", None, "egress_bandwidth_gbps"),
        ("累计归集数据信息", "indicator", None, "records_aggregated"),
        ("“一件事”上线", "indicator", None, "one_thing_items"),
        ("一件事上线", "indicator", None, "one_thing_items"),
        (" 基础库（个） ", "indicator", None, "base_libraries"),
        ("不存在的指标", "indicator", None, None),
        # strings and enums: NFKC + trim
        ("  网上办理 ", "enum", None, "网上办理"),
        ("ＡＰＰ", "enum", None, "APP"),
        ("（本级）", "string", None, "(本级)"),
    ],
)
def test_value_normalisation(text: str, type_: str, unit: str | None, expected: object) -> None:
    assert parse_value(text, type_, unit) == expected


def test_exact_integers_for_wan_and_yi() -> None:
    out = parse_value("7085.4万", "count")
    assert out == 70_854_000 and isinstance(out, int)
    assert parse_value("4652.2万", "count") == 46_522_000
    assert parse_value("49亿", "count") == 4_900_000_000
    assert parse_number("7085.4万") == 70_854_000.0
    assert parse_number("4,652.2万条") == 46_522_000.0
    assert parse_number("３９９１") == 3991.0
    assert parse_number("0.1万") == 1000.0
    assert parse_number("garbage") is None
    assert parse_period("2023年第一季度") == "2023-Q1"


def test_invalid_flags_and_missing_values() -> None:
    columns = ["统计月份", "实施部门编码", "办件量", "网上办件量", "好评数"]
    rows = [
        ["2023年3月", "210100", "abc", "", "-"],
        ["三月", "210100", "7085.4万", None, "无"],
    ]
    _, out = run("case_volume_monthly", columns, rows)
    assert out["cases"].to_list() == [None, 70_854_000]
    assert out["cases__invalid"].to_list() == [True, False]
    assert out["online_cases__invalid"].to_list() == [False, False]  # empty is missing, not invalid
    assert out["good_reviews__invalid"].to_list() == [False, False]  # '-' and '无' are placeholders
    assert out["month__invalid"].to_list() == [False, True]
    assert out["valid_reviews"].to_list() == [None, None]  # not in the file
    assert out["valid_reviews__invalid"].to_list() == [False, False]


def test_output_schema_follows_the_contract() -> None:
    for name in (
        "service_cases",
        "service_reviews",
        "service_items",
        "org_units",
        "extranet_nodes",
        "cloud_systems",
        "case_volume_monthly",
        "indicators",
    ):
        contract = get_contract(name)
        columns = [c.zh for c in contract.columns]
        match = match_headers(table_of(columns), contract)
        assert match.missing_required == [], name
        out = normalise(frame_of(columns, [[None] * len(columns)]), match, contract, KEY)
        expected = (
            [c.name for c in contract.columns]
            + [f"{c.name}__invalid" for c in contract.columns]
            + ["__row", "__total", "__raw", "__extras"]
        )
        assert out.columns == expected
        for c in contract.columns:
            want = pl.String if c.pii else POLARS_TYPES[c.type]
            assert out.schema[c.name] == want, (name, c.name)
            assert out.schema[f"{c.name}__invalid"] == pl.Boolean
        assert out.schema["__row"] == pl.Int64 and out.schema["__total"] == pl.Boolean
        assert out["__extras"].to_list() == [None]


def test_booleans_use_the_columns_own_words() -> None:
    columns = ["系统编号", "系统名称", "所属部门编码", "是否涉密", "是否上云"]
    rows = [
        ["S1", "审批系统", "210100", "涉密", "已上云"],
        ["S2", "门户", "210100", "非涉密", "未上云"],
        ["S3", "OA", "210100", "否", "上云"],
    ]
    _, out = run("cloud_systems", columns, rows)
    assert out["classified"].to_list() == [True, False, False]
    assert out["on_cloud"].to_list() == [True, False, True]


def test_rating_and_enum_in_reviews() -> None:
    columns = ["评价编号", "办件编号", "评价等级", "评价渠道", "评价时间", "是否默认评价"]
    rows = [
        ["PJ1", "BJ1", "非常满意", " ＡＰＰ ", "2023/3/1 10:00", "Y"],
        ["PJ2", "BJ2", "2", "小程序", "44986.5", "N"],
    ]
    _, out = run("service_reviews", columns, rows)
    assert out["rating"].to_list() == [5, 2]
    assert out.schema["rating"] == pl.Int8
    assert out["channel"].to_list() == ["APP", "小程序"]
    assert out["reviewed_at"].to_list() == [
        dt.datetime(2023, 3, 1, 10),
        dt.datetime(2023, 3, 1, 12),
    ]
    assert out["auto_review"].to_list() == [True, False]


# ----------------------------------------------------------------------------------- personal data


def test_personal_data_is_hashed_before_raw_is_built() -> None:
    columns = ["办件编号", "申请人证件号码", "手机号码", "申请人姓名", "申办渠道"]
    rows = [
        ["BJ1", "21010219900101123X", "１３８００１３８０００", "张三", "网上办理"],
        ["BJ2", None, "-", "李四", "窗口办理"],
    ]
    match, out = run("service_cases", columns, rows)
    assert match.mapping["申请人证件号码"] == "applicant_id_no"
    assert match.mapping["手机号码"] == "applicant_phone"
    assert match.hashed_extras == ["申请人姓名"]

    def h(v: str) -> str:
        return hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest()

    assert out["applicant_id_no"].to_list() == [h("21010219900101123X"), None]
    assert out["applicant_phone"].to_list() == [h("13800138000"), None]
    raw = json.loads(out["__raw"][0])
    assert raw["申请人证件号码"] == h("21010219900101123X")
    assert raw["手机号码"] == h("13800138000")
    assert raw["申请人姓名"] == h("张三")
    assert json.loads(out["__extras"][0]) == {"申请人姓名": h("张三")}
    clear = ["21010219900101123X", "１３８００１３８０００", "13800138000", "张三", "李四"]
    for col in out.columns:
        if out.schema[col] == pl.String:
            for value in out[col].drop_nulls():
                assert not any(c in value for c in clear), (col, value)


# -------------------------------------------------------------------------------------- indicators


def test_long_indicators_with_units() -> None:
    columns = ["报送单位", "指标名称", "统计期", "数值", "单位", "口径说明"]
    rows = [
        ["市大数据局", "互联网出口带宽", "2023年", "20G", None, None],
        ["市大数据局", "出口带宽", "2021年", "4.5", "G", None],
        ["市大数据局", "政务外网互联网出口带宽", "2023Q1", "20000Mbps", None, None],
        ["市大数据局", "累计归集数据", "截至2021年底", "49", "亿条", None],
        ["市大数据局", "累计归集数据信息", "2021", "49亿条", None, None],
        ["市工信局", "上云补贴资金", "2021年", "3亿元", "元", "市区两级"],
        ["市工信局", "上云补贴资金", "2021年", "30000", "万元", None],
        ["市卫健委", "互联网医院", "2022年第四季度", "１６", "家", None],
        ["市卫健委", "不知道的指标", "2022", "1", None, None],
    ]
    match, out = run("indicators", columns, rows)
    assert match.missing_required == []
    assert out["indicator"].to_list() == [
        "egress_bandwidth_gbps",
        "egress_bandwidth_gbps",
        "egress_bandwidth_gbps",
        "records_aggregated",
        "records_aggregated",
        "cloud_subsidy_yuan",
        "cloud_subsidy_yuan",
        "internet_hospitals",
        None,
    ]
    assert out["indicator__invalid"].to_list() == [False] * 8 + [True]
    assert out["value"].to_list() == [20.0, 4.5, 20.0, 4.9e9, 4.9e9, 3e8, 3e8, 16.0, 1.0]
    assert out["period"].to_list() == [
        "2023",
        "2021",
        "2023-Q1",
        "2021",
        "2021",
        "2021",
        "2021",
        "2022-Q4",
        "2022",
    ]
    assert out["unit"].to_list() == [None, "G", None, "亿条", None, "元", "万元", "家", None]


def test_wide_indicators_table_is_unpivoted() -> None:
    columns = [
        "报送单位",
        "统计期",
        "互联网出口带宽(G)",
        "累计归集数据（亿条）",
        "上云补贴资金",
        "序号",
    ]
    units = {"互联网出口带宽(G)": "G", "累计归集数据（亿条）": "亿条"}
    rows = [
        ["市大数据局", "2021年", "4.5", "49", None, "x"],
        ["市工信局", "2021年", None, None, "3亿元", None],
        ["市卫健委", "2021年", None, None, None, "未报"],
    ]
    match, out = run("indicators", columns, rows, units)
    assert match.wide_indicators == {
        "互联网出口带宽(G)": "egress_bandwidth_gbps",
        "累计归集数据（亿条）": "records_aggregated",
        "上云补贴资金": "cloud_subsidy_yuan",
    }
    assert match.missing_required == []
    assert match.extras == ["序号"]
    assert out["__row"].to_list() == [2, 2, 3, 4]
    assert out["indicator"].to_list() == [
        "egress_bandwidth_gbps",
        "records_aggregated",
        "cloud_subsidy_yuan",
        None,
    ]
    assert out["value"].to_list() == [4.5, 4.9e9, 3e8, None]
    assert out["reporter"].to_list() == ["市大数据局", "市大数据局", "市工信局", "市卫健委"]
    assert out["period"].to_list() == ["2021", "2021", "2021", "2021"]
    assert out["unit"].to_list() == ["G", "亿条", None, None]
    assert json.loads(out["__raw"][0]) == {
        "报送单位": "市大数据局",
        "统计期": "2021年",
        "序号": "x",
        "互联网出口带宽(G)": "4.5",
    }
    assert json.loads(out["__extras"][0]) == {"序号": "x"}
    assert out["__extras"][2] is None


# ------------------------------------------------------------------------------------------ edges


def test_empty_chunks_normalise_to_empty_frames() -> None:
    for dataset, columns in [
        ("service_cases", ["办件编号", "申请人证件号码", "申请时间"]),
        ("indicators", ["报送单位", "统计期", "互联网出口带宽(G)"]),
    ]:
        contract = get_contract(dataset)
        match = match_headers(table_of(columns), contract)
        out = normalise(frame_of(columns, []), match, contract, KEY)
        assert out.height == 0
        assert out.columns[-4:] == ["__row", "__total", "__raw", "__extras"]


def test_per_column_unit_row_under_the_header(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "统计月份,实施部门编码,办件量,有效评价数\n,,(万件),万条\n2023-03,210100,1.5,0.25\n",
        encoding="utf-8",
    )
    (table,) = read_file(path)
    assert table.units == {"办件量": "万件", "有效评价数": "万条"}
    contract = get_contract("case_volume_monthly")
    match = match_headers(table, contract)
    out = normalise(next(table.chunks), match, contract, KEY)
    assert out["cases"].to_list() == [15_000]
    assert out["valid_reviews"].to_list() == [2_500]
    assert out["__row"].to_list() == [3]


def test_gbk_csv_with_personal_data_end_to_end(tmp_path: Path) -> None:
    text = (
        "联系电话,申请时间,办件编号,身份证号,申办渠道,办理状态,事项编码,实施部门编码,行政区划代码\n"
        "13800138000,2022年4月28日 9时30分,BJ1,21010219900101123X,网上办理,在办,I1,210100,210102\n"
        "13900139000,2022/4/28 9:31,BJ2,21010219900101124X,窗口办理,已办结,I1,210100,210102\n"
    )
    path = tmp_path / "cases.csv"
    path.write_bytes(text.encode("gbk"))
    (table,) = read_file(path)
    contract = get_contract("service_cases")
    match = match_headers(table, contract)
    assert match.missing_required == []
    out = pl.concat([normalise(c, match, contract, KEY) for c in table.chunks])
    assert out["applied_at"].to_list() == [
        dt.datetime(2022, 4, 28, 9, 30),
        dt.datetime(2022, 4, 28, 9, 31),
    ]
    assert out["channel"].to_list() == ["网上办理", "窗口办理"]
    dump = out.write_csv()
    for clear in ("13800138000", "21010219900101123X", "13900139000", "21010219900101124X"):
        assert clear not in dump


FAST_FORM_TEXTS = [
    "2023-01-05 09:30:00", "2023/01/05 09:30:00", "2023/01/05 09:30", "2023-01-05 09:30", "2023-01-05",
    "2023-02-29 10:00:00", "2024-02-29 10:00:00", "2023-13-01 00:00:00", "2023-01-05 24:00:00",
    "2023-01-05 23:59:60", "0000-01-01 00:00:00", "2023/02/30 08:00", "9999-12-31 23:59:59",
]


def test_timestamp_fast_path_agrees_with_the_general_parse():
    """Machine-form timestamps take a shortcut; it must give what the general parse gives."""
    from assets.ingest import normalise as n

    frame = pl.DataFrame({"t": FAST_FORM_TEXTS})
    plan = n._Plan()
    whole, _ = n._p_datetime(plan, "t", 0)
    general_plan = n._Plan()
    general, _ = n._p_datetime_general(general_plan, "t", 0)
    got = plan.run(frame.lazy()).select(pl.col(whole).cast(pl.String)).collect().to_series().to_list()
    want = general_plan.run(frame.lazy()).select(pl.col(general).cast(pl.String)).collect().to_series().to_list()
    assert got == want
    assert got[0] == "2023-01-05 09:30:00.000000" and got[5] is None and got[6] == "2024-02-29 10:00:00.000000"


def test_repeated_values_parse_once_with_the_same_result() -> None:
    """A column with few distinct values is parsed once per value and spread back over the rows
    (``_parsed_by_value``); every row must come out as it does when each row is parsed alone."""
    from assets.ingest import normalise as n

    columns = ["评价编号", "办件编号", "评价等级", "评价渠道", "评价时间", "是否默认评价"]
    cycle = [
        ["5", " ＡＰＰ ", "2023/3/1 10:00", "Y"],
        ["非常满意", "小程序", "44986.5", "否"],
        ["★★", None, "2023-03-01 09:30:00", "-"],
        ["六星", "", "下午2:30", "maybe"],
        [None, "窗口", "2月30日", "已默认"],
    ]
    rows = [[f"PJ{i}", f"BJ{i}", *cycle[i % len(cycle)]] for i in range(4 * n.SAMPLE_ROWS)]
    contract = get_contract("service_reviews")
    match = match_headers(table_of(columns), contract)
    frame = frame_of(columns, rows)
    whole = normalise(frame, match, contract, KEY)
    # the same rows, each normalised in a frame too short for the by-value path
    alone = pl.concat([normalise(frame.slice(i, 1), match, contract, KEY) for i in range(len(cycle))])
    parsed = ["rating", "channel", "reviewed_at", "auto_review"]
    flags = [f"{c}__invalid" for c in parsed]
    assert whole.head(len(cycle)).select(parsed + flags).equals(alone.select(parsed + flags))
    assert whole.tail(len(cycle)).select(parsed + flags).equals(alone.select(parsed + flags))
    assert whole["rating"].head(len(cycle)).to_list() == [5, 5, 2, None, None]
    assert whole["rating__invalid"].head(len(cycle)).to_list() == [False, False, False, True, False]
    # the path was taken: the rating column has 4 distinct values in 8,000 rows
    assert n._parsed_by_value(frame["评价等级"], contract.column("rating"), None, 0) is not None
