"""The bundled sample (data/sample): deterministic, and its files add up to the published figures.

These tests read the sample files directly (not through the pipeline), so they check the data
itself: that regenerating gives the committed bytes, that expected_kpis.json states the
published reference figures, and that the figures follow arithmetically from the files.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import io
import json
import re
import sys
import unicodedata
from decimal import Decimal
from pathlib import Path

import fastexcel
import pyarrow.parquet as pq
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
LANDING = SAMPLE / "landing"
ONLINE = {"网上办理", "移动端"}


def _generator():
    spec = importlib.util.spec_from_file_location(
        "generate_sample", ROOT / "data" / "generate_sample.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((SAMPLE / "expected_kpis.json").read_text(encoding="utf-8"))


def _csv(rel: str, encoding: str) -> list[list[str]]:
    """All lines of a landed CSV, header included (index i = clerk's row i + 1)."""
    return list(csv.reader(io.StringIO((LANDING / rel).read_bytes().decode(encoding), newline="")))


def _sheet(rel: str, sheet: str | int = 0) -> list[list[str | None]]:
    """All rows of an XLSX sheet as strings (index i = Excel row i + 1)."""
    reader = fastexcel.read_excel(LANDING / rel)
    name = reader.sheet_names[sheet] if isinstance(sheet, int) else sheet
    frame = reader.load_sheet_by_name(name, header_row=None, dtypes="string").to_polars()
    return [list(r) for r in frame.iter_rows()]


def _bad(expected: dict, rel: str) -> dict[int, str]:
    return {b["row"]: b["rule"] for b in expected["files"][rel]["bad_rows"]}


def _count(text: str, factor: int = 1) -> int:
    """'152.3' (with factor 10000), '152.3万', '1523417' -> an exact integer."""
    text = unicodedata.normalize("NFKC", text).replace(",", "").strip()
    if text.endswith("万"):
        text, factor = text[:-1], 10_000
    value = Decimal(text) * factor
    assert value == value.to_integral_value(), text
    return int(value)


def _ts(text: str) -> dt.datetime | None:
    if not text:
        return None
    m = re.fullmatch(
        r"(\d{4})[/年-](\d{1,2})[/月-](\d{1,2})日?[ T](\d{1,2}):(\d{2})(?::(\d{2}))?", text
    )
    assert m, text
    return dt.datetime(*(int(g or 0) for g in m.groups()))


def test_regenerating_gives_the_committed_bytes(tmp_path: Path) -> None:
    _generator().main(tmp_path)
    committed = sorted(p.relative_to(SAMPLE) for p in SAMPLE.rglob("*") if p.is_file())
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert fresh == committed
    for rel in committed:
        assert (tmp_path / rel).read_bytes() == (SAMPLE / rel).read_bytes(), f"{rel} differs"


def test_expected_kpis_are_the_published_figures(expected: dict) -> None:
    catalogue = yaml.safe_load(
        (ROOT / "warehouse" / "kpi_catalogue.yaml").read_text(encoding="utf-8")
    )
    kpis = expected["kpis"]
    assert expected["reference_period"] == "2023-03"
    for entry in catalogue["kpis"]:
        assert entry["code"] in kpis, f"expected_kpis.json has no {entry['code']}"
        if "reference" not in entry:
            continue
        value = kpis[entry["code"]]
        if entry["unit"] == "%":
            assert round(value * 100, 1) == entry["reference"], entry["code"]
        else:
            assert value == entry["reference"], entry["code"]
    for code, (num, den) in expected["details"]["numerator_denominator"].items():
        assert kpis[code] == num / den, code
    assert kpis["case_online_rate"] == 3768 / 4000
    for code in (
        "satisfaction_rate",
        "bad_review_rectification_rate",
        "auto_review_share",
        "on_time_completion_rate",
        "ipv6_dual_stack_share",
    ):
        assert 0 < kpis[code] <= 1
    assert kpis["median_handling_days"] > 0
    for rel, f in expected["files"].items():
        assert (LANDING / rel).is_file(), rel
        assert f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"] + f["rows_skipped"], rel
        assert f["rows_quarantined"] == len(f["bad_rows"]), rel


def _record_cases(expected: dict) -> list[dict]:
    """Every good case row of the four case files, read straight from the files."""
    out: list[dict] = []
    rel = "service_cases/办件明细_2022年12月.csv"
    lines = _csv(rel, "gbk")
    head = [h.strip() for h in lines[0]]
    bad = _bad(expected, rel)
    for n, line in enumerate(lines[1:], start=2):
        r = dict(zip(head, line, strict=True))
        row = {
            "case_no": r["办件流水号"],
            "item_code": r["事项编码"],
            "channel": r["办理渠道"],
            "applied_at": _ts(r["申请时间"]),
            "accepted_at": _ts(r["受理时间"]),
            "finished_at": _ts(r["办结时间"]),
            "row": n,
            "bad": bad.get(n),
        }
        out.append(row)
    rel = "service_cases/办件明细_2023年1月.csv"
    lines = _csv(rel, "utf-8-sig")
    bad = _bad(expected, rel)
    for n, line in enumerate(lines[1:], start=2):
        r = dict(zip(lines[0], line, strict=True))
        out.append(
            {
                "case_no": r["case_no"],
                "item_code": r["事项编码"],
                "channel": r["申办渠道"],
                "full_online": r["全程网办"],
                "applied_at": _ts(r["applied_at"]),
                "row": n,
                "bad": bad.get(n),
            }
        )
    for r in json.loads((LANDING / "service_cases/service_cases_2023-02.json").read_text("utf-8")):
        out.append({**r, "applied_at": _ts(r["applied_at"]), "bad": None})
    for r in pq.read_table(LANDING / "service_cases/service_cases_2023-03.parquet").to_pylist():
        out.append({**r, "bad": None})
    return out


def test_bad_rows_point_at_the_bad_values(expected: dict) -> None:
    cases = _record_cases(expected)
    items = {r[0] for r in _csv("service_items/政务服务事项清单_2023-03.csv", "utf-8")[1:]}
    seen: set[str] = set()
    flagged = 0
    for c in cases:
        rule = c["bad"]
        flagged += rule is not None
        if rule == "finished_after_accepted":
            assert c["finished_at"] < c["accepted_at"]
        elif rule == "unknown_reference":
            assert c["item_code"] not in items
        elif rule == "duplicate_key":
            assert c["case_no"] in seen
        elif rule == "required":
            assert c["channel"] == ""
        elif rule == "not_in_set":
            assert c["channel"] not in {"网上办理", "窗口办理", "移动端", "自助终端", ""}
        elif rule == "unreadable_value":
            assert c["full_online"] not in {"Y", "N"}
        else:
            assert rule is None
            assert c["case_no"] not in seen and c["item_code"] in items
        seen.add(c["case_no"])
    assert flagged == 6

    monthly = "case_volume_monthly/办件量月报_2022年7月-2023年1月.csv"
    lines = _csv(monthly, "gbk")
    depts = {r[0] for r in _sheet("org_units/部门与区划名录_2023年3月.xlsx", "部门")[2:]}
    for row, rule in _bad(expected, monthly).items():
        line = lines[row - 1]
        assert (rule == "out_of_range" and _count(line[3]) < 0) or (
            rule == "unknown_reference" and line[1] not in depts
        )
    reviews = _sheet("service_reviews/好差评明细_2023年3月.xlsx")
    assert [
        reviews[r - 1][2] for r in _bad(expected, "service_reviews/好差评明细_2023年3月.xlsx")
    ] == ["很好"]
    indicators = _sheet("indicators/指标报送表_2022年4月.xlsx")
    assert [
        indicators[r - 1][1] for r in _bad(expected, "indicators/指标报送表_2022年4月.xlsx")
    ] == ["智慧路灯数"]


def _monthly_rows(expected: dict) -> list[tuple[str, int, int]]:
    """(month 'YYYY-MM', cases, valid_reviews) of every good monthly-report row, from the files."""
    out = []
    rel = "case_volume_monthly/办件量月报_2019-2021.xlsx"
    skipped = 0
    for sheet in ("2019-2020年", "2021年"):
        rows = _sheet(rel, sheet)
        assert rows[1][0] == "单位：万件" and rows[2][5] == "好差评（万条）"
        for r in rows[4:]:
            if r[0] in ("小计", "合计"):
                skipped += 1
            elif r[0]:
                y, m = re.fullmatch(r"(\d{4})年(\d{1,2})月", r[0]).groups()
                out.append((f"{y}-{int(m):02d}", _count(r[3], 10_000), _count(r[5], 10_000)))
    assert skipped == expected["files"][rel]["rows_skipped"]
    for r in _csv("case_volume_monthly/办件量月报_2022年1-6月.csv", "utf-8")[1:]:
        out.append((r[0], _count(r[3], 10_000), _count(r[5], 10_000)))
    rel = "case_volume_monthly/办件量月报_2022年7月-2023年1月.csv"
    bad = _bad(expected, rel)
    for n, r in enumerate(_csv(rel, "gbk")[1:], start=2):
        if n in bad:
            continue
        m = re.fullmatch(r"(\d{4})(?:年|-)(\d{1,2})月?", r[0])
        out.append((f"{m[1]}-{int(m[2]):02d}", _count(r[3]), _count(r[5])))
    return out


def _record_reviews(expected: dict) -> list[tuple[str, int]]:
    """(reviewed month, rating) of every good review row, from the files."""
    ratings = {"非常满意": 5, "满意": 4, "基本满意": 3, "不满意": 2, "非常不满意": 1}
    out = [
        (r[4][:7], ratings[r[2]])
        for r in _csv("service_reviews/好差评明细_2022年12月-2023年2月.csv", "utf-8")[1:]
    ]
    rel = "service_reviews/好差评明细_2023年3月.xlsx"
    bad = _bad(expected, rel)
    for n, r in enumerate(_sheet(rel), start=1):
        if n > 2 and n not in bad:
            out.append((r[4][:7], int(float(r[2]))))
    return out


def test_published_totals_add_up_from_the_files(expected: dict) -> None:
    cases = [c for c in _record_cases(expected) if c["bad"] is None]
    record_months = {c["applied_at"].strftime("%Y-%m") for c in cases}
    assert record_months == {"2022-12", "2023-01", "2023-02", "2023-03"}
    monthly = _monthly_rows(expected)
    early_cases = sum(c for m, c, _ in monthly if m not in record_months)
    assert early_cases + len(cases) == 70_854_000

    reviews = _record_reviews(expected)
    review_months = {m for m, _ in reviews}
    assert review_months == record_months
    assert all(1 <= rating <= 5 for _, rating in reviews)
    early_reviews = sum(v for m, _, v in monthly if m not in review_months)
    assert early_reviews + len(reviews) == 46_522_000

    # the overlap months reconcile within 0.5 %
    for month in ("2022-12", "2023-01"):
        reported = sum(c for m, c, _ in monthly if m == month)
        records = sum(1 for c in cases if c["applied_at"].strftime("%Y-%m") == month)
        assert abs(reported - records) / records < 0.005
        assert reported != records  # a real (small) gap, not a copy

    march = [c for c in cases if c["applied_at"].strftime("%Y-%m") == "2023-03"]
    assert (len(march), sum(c["channel"] in ONLINE for c in march)) == (4000, 3768)
    march_reviews = [r for m, r in reviews if m == "2023-03"]
    assert (
        sum(r >= 4 for r in march_reviews) / len(march_reviews)
        == expected["kpis"]["satisfaction_rate"]
    )


def test_registers_give_the_published_counts(expected: dict) -> None:
    org = "org_units/部门与区划名录_2023年3月.xlsx"
    depts = _sheet(org, "部门")[2:]
    assert sum(r[4] == "是" for r in depts if r[2] in ("市级部门", "区县级部门")) == 433
    assert sum(r[4] == "是" for r in _sheet(org, "区县街道")[1:] if r[2] == "街道乡镇") == 180
    assert sum(r[4] == "1" for r in _sheet(org, "社区")[1:] if r[2] == "社区村") == 2413

    items = [
        r for r in _csv("service_items/政务服务事项清单_2023-03.csv", "utf-8")[1:] if r[9] == "在用"
    ]
    assert (
        len(items),
        sum(r[4] == "是" for r in items),
        sum(r[5] == "是" for r in items),
        sum(r[3] == "即办件" for r in items),
    ) == (1000, 1000, 994, 703)

    nodes = [r for r in _csv("extranet_nodes/政务外网接入点清单.csv", "gbk")[2:] if r[7] == "在用"]
    assert len(nodes) == 3991 and len({r[2] for r in nodes}) == 4
    assert sum(r[5] == "1" for r in nodes) / len(nodes) == expected["kpis"]["ipv6_dual_stack_share"]

    systems = _sheet("cloud_systems/政务云业务系统清单_2022年4月.xlsx")[2:]
    assert sum(r[5] == "Y" for r in systems) == 241
    open_ = [r for r in systems if r[4] == "N"]
    assert sum(r[5] == "Y" for r in open_) / len(open_) == 0.8


def test_codes_resolve_against_the_registers(expected: dict) -> None:
    org = "org_units/部门与区划名录_2023年3月.xlsx"
    depts = {r[0] for r in _sheet(org, "部门")[2:]}
    regions = {r[0] for r in _sheet(org, "区县街道")[1:]} | {r[0] for r in _sheet(org, "社区")[1:]}
    assert all(re.fullmatch(r"\d{6}(\d{3}(\d{3})?)?", code) for code in regions)
    items = _csv("service_items/政务服务事项清单_2023-03.csv", "utf-8")[1:]
    assert {r[2] for r in items} <= depts
    item_codes = {r[0] for r in items}
    for c in _record_cases(expected):
        if c["bad"] is None:
            assert c["item_code"] in item_codes
    march = pq.read_table(LANDING / "service_cases/service_cases_2023-03.parquet").to_pylist()
    assert {c["dept_code"] for c in march} <= depts and {c["region_code"] for c in march} <= regions
    ids = [c["applicant_id_no"] for c in march]
    assert all(re.fullmatch(r"2101\d{13}[\dX]", i) for i in ids) and any(
        i.endswith("X") for i in ids
    )
    assert all(re.fullmatch(r"1[3-9]\d{9}", c["applicant_phone"]) for c in march)
    nodes = _csv("extranet_nodes/政务外网接入点清单.csv", "gbk")[2:]  # title line, header
    assert {r[3] for r in nodes} <= regions
    systems = _sheet("cloud_systems/政务云业务系统清单_2022年4月.xlsx")[2:]
    assert {r[2] for r in systems} <= depts


def test_registers_state_the_date_they_describe(expected: dict) -> None:
    """Each register says which date it is as of, in one of the ways departments write it."""
    assert expected["register_as_of"] == {
        "cloud_systems": "2022-04-30",
        "extranet_nodes": "2022-04-28",
        "org_units": "2023-03-31",
        "service_items": "2023-03-31",
    }
    org = _sheet("org_units/部门与区划名录_2023年3月.xlsx", "部门")
    assert "截至2023年3月31日" in org[0][0]  # a title row (the other sheets share it)
    items = _csv("service_items/政务服务事项清单_2023-03.csv", "utf-8")
    assert items[0][-1] == "统计日期" and {r[-1] for r in items[1:]} == {"2023-03-31"}  # a column
    nodes = _csv("extranet_nodes/政务外网接入点清单.csv", "gbk")
    assert "截至2022年4月28日" in nodes[0][0]  # a title line above the CSV header
    systems = _sheet("cloud_systems/政务云业务系统清单_2022年4月.xlsx")
    assert "截至2022年4月" in systems[0][0]  # a month: its last day
