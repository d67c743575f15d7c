#!/usr/bin/env python
"""Generate the bundled sample landing folder and the figures the pipeline must compute from it.

    .venv/bin/python data/generate_sample.py            # writes data/sample/
    .venv/bin/python data/generate_sample.py --out DIR  # DIR/landing/..., DIR/expected_kpis.json

Deterministic: every random draw comes from a ``random.Random`` seeded with a fixed string,
XLSX files carry a fixed creation time, Parquet files no time-dependent metadata, so two runs
give byte-identical files. The script computes every expected KPI from the good rows it wrote
itself (independently of the pipeline) and records, per file, the rows a clerk sees, the
totals rows and the deliberately bad rows with the rule each one breaks (see data/README.md).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import datetime as dt
import io
import itertools
import json
import math
import random
import shutil
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import xlsxwriter

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "sample"
SEED = "govmetrics-sample-2023-04"
REFERENCE_PERIOD = "2023-03"
FIXED_CREATED = dt.datetime(2023, 4, 3, 9, 0, 0)

# Published figures (shared/seeds) the sample reproduces.
TARGET_CASES = 70_854_000
TARGET_REVIEWS = 46_522_000
DEPTS_ONBOARDED = 433
STREET_PORTALS = 180
COMMUNITY_PORTALS = 2_413
EXTRANET_IN_USE = 3_991
ITEMS_IN_USE, ITEMS_FULL_ONLINE, ITEMS_INSTANT = 1_000, 994, 703
CLOUD_NONCLASSIFIED, CLOUD_NONCLASSIFIED_ON, CLOUD_CLASSIFIED_ON, CLOUD_CLASSIFIED_OFF = (
    300,
    240,
    1,
    14,
)

# Record-level months: good case rows and how many of them were applied for online.
CASE_MONTHS = {
    (2022, 12): (3_850, 3_601),
    (2023, 1): (3_620, 3_377),
    (2023, 2): (3_930, 3_683),
    (2023, 3): (4_000, 3_768),  # 3768 / 4000 = 94.2 %
}
FIRST_RECORD_MONTH = "2022-12"
# Monthly report minus record count in the two overlap months (reconciliation gap < 0.5 %).
OVERLAP_GAP = {"2022-12": 8, "2023-01": -7}


# The date each register describes, as the seed documents date their figures: the 2023 reply
# (沈数管建议〔2023〕7号) speaks of March 2023, the 2022 reply (〔2022〕4号) is dated 2022-04-28.
AS_OF = {
    "org_units": dt.date(2023, 3, 31),
    "service_items": dt.date(2023, 3, 31),
    "extranet_nodes": dt.date(2022, 4, 28),
    "cloud_systems": dt.date(2022, 4, 30),  # the title says 截至2022年4月
}


def zh_date(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def rng_for(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")


# --------------------------------------------------------------------------------------
# Calendar (2022-2023 public holidays of the PRC, with the make-up working weekends)
# --------------------------------------------------------------------------------------
HOLIDAYS = (
    {dt.date(2023, 1, 2), dt.date(2023, 4, 5)}
    | {dt.date(2023, 1, d) for d in range(21, 28)}
    | {
        dt.date(2023, 4, 29),
        dt.date(2023, 4, 30),
        dt.date(2023, 5, 1),
        dt.date(2023, 5, 2),
        dt.date(2023, 5, 3),
    }
)
MAKEUP_WORKDAYS = {
    dt.date(2023, 1, 28),
    dt.date(2023, 1, 29),
    dt.date(2023, 4, 23),
    dt.date(2023, 5, 6),
}


def is_workday(d: dt.date) -> bool:
    return d in MAKEUP_WORKDAYS or (d.weekday() < 5 and d not in HOLIDAYS)


def add_workdays(d: dt.date, n: int) -> dt.date:
    while n > 0:
        d += dt.timedelta(days=1)
        if is_workday(d):
            n -= 1
    return d


def workdays_between(start: dt.date, end: dt.date) -> int:
    """Working days after ``start`` up to and including ``end``."""
    return sum(is_workday(start + dt.timedelta(days=i)) for i in range(1, (end - start).days + 1))


def working_seconds(start: dt.datetime, end: dt.datetime) -> float:
    """Seconds between two instants that fall on working days."""
    total, t = 0.0, start
    while t < end:
        midnight = dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time())
        step_end = min(midnight, end)
        if is_workday(t.date()):
            total += (step_end - t).total_seconds()
        t = step_end
    return total


def month_end(year: int, month: int) -> dt.datetime:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return dt.datetime.combine(nxt, dt.time()) - dt.timedelta(seconds=1)


def ym(t: dt.datetime | dt.date) -> str:
    return f"{t.year:04d}-{t.month:02d}"


def months_between(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    out, (y, m) = [], start
    while (y, m) <= end:
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


# --------------------------------------------------------------------------------------
# Codes: unified social credit codes (GB 32100) for departments, ID numbers (GB 11643)
# --------------------------------------------------------------------------------------
_ORG_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _org_code(rng: random.Random) -> str:
    body = "0" + "".join(rng.choice("0123456789") for _ in range(7))
    s = sum(_ORG_CHARS.index(c) * w for c, w in zip(body, [3, 7, 9, 10, 5, 8, 4, 2], strict=True))
    c = 11 - s % 11
    return body + ("X" if c == 10 else "0" if c == 11 else str(c))


def uscc(region: str, rng: random.Random) -> str:
    base = "11" + region + _org_code(rng)
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    s = sum(_USCC_CHARS.index(c) * w for c, w in zip(base, weights, strict=True))
    c = 31 - s % 31
    return base + _USCC_CHARS[0 if c == 31 else c]


def id_number(rng: random.Random, region: str) -> str:
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(0, 20_000))
    body = f"{region}{birth:%Y%m%d}{rng.randrange(0, 1000):03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * w for c, w in zip(body, weights, strict=True))
    return body + "10X98765432"[s % 11]


PHONE_PREFIXES = [
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "199",
]


def phone_number(rng: random.Random) -> str:
    return rng.choice(PHONE_PREFIXES) + f"{rng.randrange(0, 10**8):08d}"


# --------------------------------------------------------------------------------------
# Writers (deterministic bytes)
# --------------------------------------------------------------------------------------
def write_csv(
    path: Path, header: list[str], rows: list[list], encoding: str, title: str | None = None
) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    if title:  # a title line above the header, as Excel writes a sheet with a title row
        writer.writerow([title] + [""] * (len(header) - 1))
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in r] for r in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    data = buf.getvalue()
    path.write_bytes(
        ("\ufeff" + data).encode("utf-8") if encoding == "utf-8-sig" else data.encode(encoding)
    )


def new_workbook(path: Path) -> xlsxwriter.Workbook:
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False})
    wb.set_properties(
        {"created": FIXED_CREATED, "author": "沈阳市大数据管理局", "company": "沈阳市大数据管理局"}
    )
    return wb


def fmt_ts(t: dt.datetime | None, style: str) -> str | None:
    if t is None:
        return None
    if style == "slash":  # '2022/12/5 9:30' (Excel on Chinese Windows)
        return f"{t.year}/{t.month}/{t.day} {t.hour}:{t.minute:02d}"
    if style == "zh":  # '2023年1月5日 09:30:00'
        return f"{t.year}年{t.month}月{t.day}日 {t:%H:%M:%S}"
    if style == "iso_t":
        return t.strftime("%Y-%m-%dT%H:%M:%S")
    return t.strftime("%Y-%m-%d %H:%M:%S")


def wan(units_of_1000: int) -> str:
    """A count that is a multiple of 1000 written in 万 with one decimal: 1523000 -> '152.3'."""
    text = f"{units_of_1000 / 10:.1f}"
    assert float(text) * 10_000 == units_of_1000 * 1000, text  # exact in float64 too
    return text


FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


class FileLog:
    """Per landed file: rows a clerk sees, totals rows skipped, the deliberately bad rows."""

    def __init__(self) -> None:
        self.files: dict[str, dict] = {}

    def add(
        self,
        rel: str,
        rows_read: int,
        bad_rows: list[dict] | None = None,
        rows_skipped: int = 0,
        **extra,
    ) -> None:
        bad_rows = bad_rows or []
        self.files[rel] = {
            "rows_read": rows_read,
            "rows_quarantined": len(bad_rows),
            "rows_skipped": rows_skipped,
            "rows_loaded": rows_read - len(bad_rows) - rows_skipped,
            "bad_rows": bad_rows,
            **extra,
        }


# --------------------------------------------------------------------------------------
# org_units
# --------------------------------------------------------------------------------------
DISTRICTS = [  # code, name, streets, kind
    ("210102", "和平区", 13, "urban"),
    ("210103", "沈河区", 13, "urban"),
    ("210104", "大东区", 13, "urban"),
    ("210105", "皇姑区", 12, "urban"),
    ("210106", "铁西区", 20, "urban"),
    ("210111", "苏家屯区", 12, "suburb"),
    ("210112", "浑南区", 14, "suburb"),
    ("210113", "沈北新区", 12, "suburb"),
    ("210114", "于洪区", 14, "suburb"),
    ("210115", "辽中区", 15, "rural"),
    ("210123", "康平县", 14, "rural"),
    ("210124", "法库县", 17, "rural"),
    ("210181", "新民市", 20, "rural"),
]

# The first 20 report monthly case volumes (and are the departments of the record-level cases);
# the weight is their share of the city's cases.
REPORTING_DEPTS = [
    ("沈阳市公安局", 0.22),
    ("沈阳市人力资源和社会保障局", 0.14),
    ("沈阳市医疗保障局", 0.10),
    ("沈阳市市场监督管理局", 0.08),
    ("沈阳市住房公积金管理中心", 0.07),
    ("沈阳市自然资源局", 0.05),
    ("沈阳市卫生健康委员会", 0.05),
    ("沈阳市民政局", 0.04),
    ("沈阳市交通运输局", 0.04),
    ("沈阳市住房和城乡建设局", 0.04),
    ("沈阳市教育局", 0.03),
    ("沈阳市营商环境建设局", 0.03),
    ("沈阳市商务局", 0.02),
    ("沈阳市城市管理行政执法局", 0.02),
    ("沈阳市生态环境局", 0.015),
    ("沈阳市文化旅游和广播电视局", 0.015),
    ("沈阳市农业农村局", 0.01),
    ("沈阳市退役军人事务局", 0.01),
    ("沈阳市司法局", 0.01),
    ("沈阳市应急管理局", 0.01),
]
LATE_REPORTERS = {"沈阳市营商环境建设局", "沈阳市退役军人事务局"}  # report from 2020-07 on
OTHER_CITY_DEPTS = [
    "沈阳市发展和改革委员会",
    "沈阳市科学技术局",
    "沈阳市工业和信息化局",
    "沈阳市财政局",
    "沈阳市水务局",
    "沈阳市审计局",
    "沈阳市人民政府国有资产监督管理委员会",
    "沈阳市体育局",
    "沈阳市统计局",
    "沈阳市人民防空办公室",
    "沈阳市信访局",
    "沈阳市大数据管理局",
    "沈阳市民族和宗教事务局",
    "沈阳市人民政府外事办公室",
    "沈阳市机关事务管理局",
    "沈阳市地方金融监督管理局",
    "沈阳市粮食和物资储备局",
    "沈阳市档案馆",
    "沈阳市气象局",
    "沈阳市消防救援支队",
    "沈阳市公共资源交易中心",
    "沈阳市社会保险事业服务中心",
    "沈阳市不动产登记中心",
    "沈阳市房产局",
    "沈阳市林业和草原局",
    "国家税务总局沈阳市税务局",
    "沈阳市烟草专卖局",
    "沈阳市邮政管理局",
    "沈阳市残疾人联合会",
    "沈阳市红十字会",
    "沈阳市总工会",
    "沈阳市妇女联合会",
    "沈阳市科学技术协会",
    "沈阳市知识产权局",
    "沈阳市城乡建设局",
    "沈阳市公用事业服务中心",
    "沈阳市医疗保险事业服务中心",
    "沈阳市市政设施养护中心",
]
DISTRICT_DEPTS = [
    "发展和改革局",
    "教育局",
    "科学技术局",
    "工业和信息化局",
    "公安分局",
    "民政局",
    "司法局",
    "财政局",
    "人力资源和社会保障局",
    "自然资源分局",
    "生态环境分局",
    "住房和城乡建设局",
    "交通运输局",
    "农业农村局",
    "商务局",
    "文化旅游和广播电视局",
    "卫生健康局",
    "退役军人事务局",
    "应急管理局",
    "审计局",
    "市场监督管理局",
    "统计局",
    "医疗保障局",
    "城市管理执法局",
    "营商环境建设局",
    "行政审批局",
    "信访局",
    "税务局",
    "残疾人联合会",
    "政务服务中心",
]
CITY_NOT_CONNECTED = 2
DISTRICT_NOT_CONNECTED = 10

NAME_HEADS = list("东西南北新兴永长大小青红金福安和平宁华康泰丰顺富德明光文建前")
NAME_TAILS = list("山河湖台堡屯泉园林桥城岗沟阳庄坨湾岭甸塔")


@dataclass
class Unit:
    code: str
    name: str
    unit_type: str
    parent: str | None
    on_platform: bool | None = None
    has_homepage: bool | None = None
    district: str | None = None


def build_org_units() -> dict:
    rng = rng_for("org_units")
    districts = [
        Unit(code, name, "区县", "210100", district=code) for code, name, _, _ in DISTRICTS
    ]

    # streets (9 digits) and communities (12 digits)
    combos = [h + t for h in NAME_HEADS for t in NAME_TAILS]
    rng.shuffle(combos)
    combo_iter = iter(combos)
    streets: list[Unit] = []
    kinds = {code: kind for code, _, _, kind in DISTRICTS}
    for code, _dname, n_streets, kind in DISTRICTS:
        for i in range(1, n_streets + 1):
            base = next(combo_iter)
            if kind == "urban" or (kind == "suburb" and i <= n_streets // 2) or i <= 2:
                name, scode = base + "街道", f"{code}{i:03d}"
            else:
                town = "乡" if kind == "rural" and i % 5 == 0 else "镇"
                name, scode = base + town, f"{code}{100 + i:03d}"
            streets.append(Unit(scode, name, "街道乡镇", code, district=code))
    n_total_comm = 2_500
    weights = [{"urban": 1.0, "suburb": 1.2, "rural": 1.4}[kinds[s.parent]] for s in streets]
    alloc = [max(6, int(n_total_comm * w / sum(weights))) for w in weights]
    i = 0
    while sum(alloc) < n_total_comm:
        alloc[i % len(alloc)] += 1
        i += 7
    while sum(alloc) > n_total_comm:
        alloc[i % len(alloc)] -= 1
        i += 7
    communities: list[Unit] = []
    for street, n in zip(streets, alloc, strict=True):
        names = rng.sample(combos, n)
        rural = street.name.endswith(("镇", "乡"))
        n_comm = max(1, n // 4) if rural else n
        for j in range(n):
            if j < n_comm:
                code, name = f"{street.code}{j + 1:03d}", names[j] + "社区"
            else:
                code, name = f"{street.code}{200 + j - n_comm + 1:03d}", names[j] + "村"
            communities.append(Unit(code, name, "社区村", street.code, district=street.parent))

    no_home_streets = set(rng.sample(range(len(streets)), len(streets) - STREET_PORTALS))
    for i, s in enumerate(streets):
        s.has_homepage = i not in no_home_streets
    no_home_comm = set(rng.sample(range(len(communities)), len(communities) - COMMUNITY_PORTALS))
    for i, c in enumerate(communities):
        c.has_homepage = i not in no_home_comm

    # departments
    used: set[str] = set()

    def code_for(region: str) -> str:
        while True:
            c = uscc(region, rng)
            if c not in used:
                used.add(c)
                return c

    city = [
        Unit(code_for("210100"), name, "市级部门", None, district="210103")
        for name in [n for n, _ in REPORTING_DEPTS] + OTHER_CITY_DEPTS
    ]
    assert len(city) == 58
    off = set(rng.sample(range(len(REPORTING_DEPTS), len(city)), CITY_NOT_CONNECTED))
    for i, u in enumerate(city):
        u.on_platform = i not in off
    district_depts: list[Unit] = []
    for code, dname, _, kind in DISTRICTS:
        for dep in DISTRICT_DEPTS:
            if dep == "农业农村局" and code in ("210102", "210103", "210104"):
                continue
            if dep == "公安分局" and kind == "rural" and code != "210115":
                dep = "公安局"
            district_depts.append(
                Unit(code_for(code), dname + dep, "区县级部门", code, district=code)
            )
    assert len(district_depts) == 387
    off = set(rng.sample(range(len(district_depts)), DISTRICT_NOT_CONNECTED))
    for i, u in enumerate(district_depts):
        u.on_platform = i not in off
    assert sum(u.on_platform for u in city + district_depts) == DEPTS_ONBOARDED
    # a department that used to exist (merged away): used by a bad monthly row
    gone_code = code_for("210100")
    return {
        "districts": districts,
        "streets": streets,
        "communities": communities,
        "city": city,
        "district_depts": district_depts,
        "gone_dept": (gone_code, "沈阳市城乡建设委员会（已撤并）"),
    }


def write_org_units(org: dict, out: Path, log: FileLog) -> None:
    rel = "org_units/部门与区划名录_2023年3月.xlsx"
    wb = new_workbook(out / rel)
    title = wb.add_format({"bold": True, "font_size": 14})
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    text = wb.add_format({"num_format": "@"})

    ws = wb.add_worksheet("部门")
    # The date is stated once, in the first sheet's title; the other sheets share it.
    ws.merge_range(0, 0, 0, 4, f"沈阳市市、区两级政务服务部门名录（截至{zh_date(AS_OF['org_units'])}）", title)
    for c, h in enumerate(["部门编码", "部门名称", "单位类型", "上级编码", "是否接入平台"]):
        ws.write_string(1, c, h, head)
    depts = org["city"] + org["district_depts"]
    for r, u in enumerate(depts, start=2):
        ws.write_string(r, 0, u.code, text)
        ws.write_string(r, 1, u.name)
        ws.write_string(r, 2, u.unit_type)
        if u.parent:
            ws.write_string(r, 3, u.parent, text)
        ws.write_string(r, 4, "是" if u.on_platform else "否")
    ws.set_column(0, 0, 22)
    ws.set_column(1, 1, 34)
    n_depts = len(depts)

    ws = wb.add_worksheet("区县街道")
    for c, h in enumerate(["区划编码", "区划名称", "类型", "上级区划编码", "是否开通服务主页"]):
        ws.write_string(0, c, h, head)
    r = 1
    for d in org["districts"]:
        ws.write_string(r, 0, d.code, text)
        ws.write_string(r, 1, d.name)
        ws.write_string(r, 2, d.unit_type)
        ws.write_string(r, 3, d.parent, text)
        r += 1
        for s in [s for s in org["streets"] if s.parent == d.code]:
            ws.write_string(r, 0, s.code, text)
            ws.write_string(r, 1, s.name)
            ws.write_string(r, 2, s.unit_type)
            ws.write_string(r, 3, s.parent, text)
            ws.write_string(r, 4, "是" if s.has_homepage else "否")
            r += 1
    n_ds = r - 1

    ws = wb.add_worksheet("社区")
    for c, h in enumerate(["编码", "名称", "类型", "上级编码", "服务主页"]):
        ws.write_string(0, c, h, head)
    for r, u in enumerate(org["communities"], start=1):
        ws.write_string(r, 0, u.code, text)
        ws.write_string(r, 1, u.name)
        ws.write_string(r, 2, u.unit_type)
        ws.write_string(r, 3, u.parent, text)
        ws.write_string(r, 4, "1" if u.has_homepage else "0")
    wb.close()
    log.add(
        rel,
        n_depts + n_ds + len(org["communities"]),
        sheets={"部门": n_depts, "区县街道": n_ds, "社区": len(org["communities"])},
    )


# --------------------------------------------------------------------------------------
# service_items
# --------------------------------------------------------------------------------------
ITEM_STEMS = {
    "公安局": [
        "居民身份证",
        "户口迁移",
        "出生登记",
        "居住证",
        "出入境通行证",
        "普通护照",
        "机动车登记",
        "机动车驾驶证",
        "犬只登记",
        "剧毒化学品购买许可",
        "临时身份证明",
        "户籍证明",
    ],
    "人力资源和社会保障局": [
        "失业保险金",
        "社会保障卡",
        "职工养老保险",
        "就业登记",
        "职业资格证书",
        "创业担保贷款",
        "技能提升补贴",
        "工伤认定",
        "劳动合同备案",
        "退休人员待遇",
    ],
    "医疗保障局": [
        "医保关系转移",
        "异地就医备案",
        "门诊慢特病待遇",
        "生育医疗费用",
        "医保参保登记",
        "医疗费用零星报销",
        "定点医药机构",
        "医保缴费基数",
    ],
    "市场监督管理局": [
        "企业设立登记",
        "企业变更登记",
        "企业注销登记",
        "食品经营许可",
        "个体工商户登记",
        "特种设备使用登记",
        "药品零售许可",
        "计量器具型式批准",
        "广告发布登记",
    ],
    "住房公积金管理中心": [
        "住房公积金提取",
        "公积金贷款",
        "缴存登记",
        "缴存基数调整",
        "贷款提前还款",
        "异地转移接续",
    ],
    "自然资源局": [
        "建设用地规划许可",
        "不动产登记",
        "土地复垦方案",
        "测绘资质",
        "地质灾害危险性评估",
        "国有土地使用权出让",
    ],
    "卫生健康委员会": [
        "医师执业注册",
        "护士执业注册",
        "医疗机构执业登记",
        "出生医学证明",
        "母婴保健技术服务",
        "放射诊疗许可",
    ],
    "民政局": [
        "婚姻登记",
        "社会团体登记",
        "最低生活保障",
        "养老机构备案",
        "殡葬补贴",
        "困难残疾人生活补贴",
    ],
    "交通运输局": [
        "道路运输经营许可",
        "出租汽车驾驶员证",
        "网约车运输证",
        "道路运输从业资格",
        "超限运输许可",
    ],
    "住房和城乡建设局": [
        "建筑工程施工许可",
        "商品房预售许可",
        "建筑业企业资质",
        "房屋租赁登记",
        "竣工验收备案",
    ],
    "教育局": ["民办学校办学许可", "教师资格认定", "学籍转接", "学历证明", "校外培训机构"],
    "营商环境建设局": [
        "投资项目备案",
        "工程建设项目联合审批",
        "政务服务咨询",
        "企业开办",
        "惠企政策兑现",
    ],
    "商务局": ["对外贸易经营者备案", "成品油零售经营", "单用途预付卡备案", "报废机动车回收"],
    "城市管理行政执法局": [
        "城市道路占用",
        "户外广告设置",
        "建筑垃圾处置",
        "城市绿地占用",
        "燃气经营许可",
    ],
    "生态环境局": ["排污许可", "环境影响评价", "危险废物经营许可", "辐射安全许可"],
    "文化旅游和广播电视局": ["营业性演出", "娱乐场所经营", "旅行社设立", "互联网上网服务营业场所"],
    "农业农村局": ["农药经营许可", "兽药经营许可", "动物防疫条件合格证", "农机登记"],
    "退役军人事务局": ["优待证", "退役士兵安置", "抚恤补助", "烈士褒扬"],
    "司法局": ["法律援助", "公证机构执业", "律师执业", "人民调解员"],
    "应急管理局": ["危险化学品经营许可", "烟花爆竹经营许可", "安全生产许可", "应急预案备案"],
}
ITEM_ACTIONS = [
    "申领",
    "变更",
    "注销",
    "补领",
    "核发",
    "登记",
    "备案",
    "审批",
    "认定",
    "延续",
    "换领",
    "查询",
]
GENERIC_STEMS = [
    "行政许可",
    "资格认定",
    "事项备案",
    "证明出具",
    "补贴申领",
    "奖励申报",
    "信息查询",
    "年度检验",
]
ITEM_KIND_CODES = ["XK", "QR", "GG", "JF", "QT"]


@dataclass
class Item:
    item_code: str
    item_name: str
    dept_code: str
    handling_type: str
    online_available: bool
    full_online: bool
    onsite_visits: int
    promised_days: int
    version: str
    item_status: str


def build_items(org: dict) -> dict:
    rng = rng_for("service_items")
    city = org["city"]
    reporting = city[: len(REPORTING_DEPTS)]
    others_city = [u for u in city[len(REPORTING_DEPTS) :] if u.on_platform]
    district_depts = [u for u in org["district_depts"] if u.on_platform]

    # 1000 in-use slots: 600 for the reporting departments (by weight), 230 other city, 170 district
    weights = [w for _, w in REPORTING_DEPTS]
    per_rep = [max(12, round(600 * w / sum(weights))) for w in weights]
    per_rep[0] += 600 - sum(per_rep)
    owners: list[Unit] = []
    for u, n in zip(reporting, per_rep, strict=True):
        owners += [u] * n
    owners += [others_city[i % len(others_city)] for i in range(230)]
    owners += rng.sample(district_depts, 170)
    assert len(owners) == ITEMS_IN_USE

    instant = set(rng.sample(range(ITEMS_IN_USE), ITEMS_INSTANT))
    promise_idx = [i for i in range(ITEMS_IN_USE) if i not in instant]
    not_full = set(rng.sample(promise_idx, ITEMS_IN_USE - ITEMS_FULL_ONLINE))
    used_codes: set[str] = set()
    name_seen: set[tuple[str, str]] = set()

    def new_code(owner: Unit) -> str:
        region = owner.code[2:8]
        while True:
            kind, main, sub = (
                rng.choice(ITEM_KIND_CODES),
                rng.randrange(1, 10**6),
                rng.randrange(1, 20),
            )
            c = f"{region}{kind}{main:06d}{sub:03d}"
            if c not in used_codes:
                used_codes.add(c)
                return c

    def new_name(owner: Unit) -> str:
        short = owner.name.replace("沈阳市", "")
        stems = ITEM_STEMS.get(short, [s for s in GENERIC_STEMS])
        for _ in range(200):
            n = rng.choice(stems) + rng.choice(ITEM_ACTIONS)
            if (owner.code, n) not in name_seen:
                name_seen.add((owner.code, n))
                return n
        k = sum(1 for key in name_seen if key[0] == owner.code)
        n = f"{rng.choice(stems)}{rng.choice(ITEM_ACTIONS)}（{k}）"
        name_seen.add((owner.code, n))
        return n

    in_use: list[Item] = []
    for i, owner in enumerate(owners):
        is_instant = i in instant
        full = i not in not_full
        in_use.append(
            Item(
                new_code(owner),
                new_name(owner),
                owner.code,
                "即办件" if is_instant else "承诺件",
                True,
                full,
                0 if full else 1,
                1 if is_instant else rng.choice([3, 5, 5, 7, 10, 15, 20]),
                "1",
                "在用",
            )
        )
    # 60 items were revised: version 1 (停用) and version 2 (在用), same code and time limit
    revised = sorted(rng.sample(range(ITEMS_IN_USE), 60))
    rows: list[Item] = []
    for i, it in enumerate(in_use):
        if i in revised:
            rows.append(
                Item(
                    it.item_code,
                    it.item_name,
                    it.dept_code,
                    it.handling_type,
                    True,
                    False,
                    1,
                    it.promised_days,
                    "1",
                    "停用",
                )
            )
            it.version = "2"
        rows.append(it)
    # 25 items retired altogether (only a 停用 row)
    for _ in range(25):
        owner = rng.choice(others_city + reporting)
        rows.insert(
            rng.randrange(len(rows) + 1),
            Item(
                new_code(owner),
                new_name(owner),
                owner.code,
                "承诺件",
                rng.random() < 0.5,
                False,
                2,
                rng.choice([10, 15, 20]),
                "1",
                "停用",
            ),
        )
    return {"rows": rows, "in_use": in_use, "reporting_codes": [u.code for u in reporting]}


def write_items(items: dict, out: Path, log: FileLog) -> None:
    rel = "service_items/政务服务事项清单_2023-03.csv"
    rng = rng_for("service_items_write")
    header = [
        "事项编码",
        "事项名称",
        "实施部门编码",
        "办理类型",
        "是否可网办",
        "是否全程网办",
        "到现场次数",
        "承诺办结时限（工作日）",
        "版本号",
        "事项状态",
        "统计日期",  # the date the register describes, as a column
    ]
    rows = []
    for it in items["rows"]:
        visits = str(it.onsite_visits)
        if rng.random() < 0.03:
            visits = visits.translate(FULLWIDTH)  # full-width digit typed in an IME
        rows.append(
            [
                it.item_code,
                it.item_name,
                it.dept_code,
                it.handling_type,
                "是" if it.online_available else "否",
                "是" if it.full_online else "否",
                visits,
                str(it.promised_days),
                it.version,
                it.item_status,
                AS_OF["service_items"].isoformat(),
            ]
        )
    write_csv(out / rel, header, rows, "utf-8")
    log.add(rel, len(rows))


# --------------------------------------------------------------------------------------
# service_cases
# --------------------------------------------------------------------------------------
@dataclass
class Case:
    case_no: str
    item_code: str
    dept_code: str
    region_code: str
    channel: str
    applied_at: dt.datetime
    accepted_at: dt.datetime | None
    finished_at: dt.datetime | None
    status: str
    full_online: bool
    applicant_id_no: str
    applicant_phone: str
    promised_days: int = 0
    remark: str | None = None


ONLINE = ("网上办理", "移动端")


def _rand_time(rng: random.Random, d: dt.date, start_min: int, end_min: int) -> dt.datetime:
    secs = rng.randrange(start_min * 60, end_min * 60)
    return dt.datetime.combine(d, dt.time()) + dt.timedelta(seconds=secs)


def _next_work_slot(t: dt.datetime, rng: random.Random) -> dt.datetime:
    d = t.date()
    minutes = t.hour * 60 + t.minute
    if is_workday(d) and 510 <= minutes < 1020:
        return t
    if not (is_workday(d) and minutes < 510):
        d += dt.timedelta(days=1)
        while not is_workday(d):
            d += dt.timedelta(days=1)
    return _rand_time(rng, d, 510, 600)


def build_cases(org: dict, items: dict) -> dict:
    rng = rng_for("service_cases")
    in_use = {it.item_code: it for it in items["in_use"]}
    rep_weight = dict(zip(items["reporting_codes"], [w for _, w in REPORTING_DEPTS], strict=True))
    case_items = [it for it in items["in_use"] if it.dept_code in rep_weight]
    by_dept = defaultdict(list)
    for it in case_items:
        by_dept[it.dept_code].append(it)
    item_w: list[float] = []
    for it in case_items:
        rank = by_dept[it.dept_code].index(it) + 1
        item_w.append(
            rep_weight[it.dept_code]
            / rank**0.9
            / sum(1 / r**0.9 for r in range(1, len(by_dept[it.dept_code]) + 1))
        )
    cum_w = list(itertools.accumulate(item_w))
    districts = [d.code for d in org["districts"]]
    district_w = [9, 10, 8, 9, 12, 4, 8, 5, 6, 3, 2, 2, 4]
    streets_of = defaultdict(list)
    for s in org["streets"]:
        streets_of[s.parent].append(s.code)
    comm_of = defaultdict(list)
    for c in org["communities"]:
        comm_of[c.parent].append(c.code)

    def pick_item() -> Item:
        return case_items[bisect.bisect_left(cum_w, rng.random() * cum_w[-1])]

    def pick_region() -> str:
        d = rng.choices(districts, district_w)[0]
        r = rng.random()
        if r < 0.6:
            return d
        s = rng.choice(streets_of[d])
        return s if r < 0.9 else rng.choice(comm_of[s])

    months: dict[str, list[Case]] = {}
    for (year, month), (n, n_online) in CASE_MONTHS.items():
        cutoff = month_end(year, month)
        minute_precision = (year, month) == (2022, 12)  # that export has no seconds
        n_web = round(n_online * 0.58)
        n_window = round((n - n_online) * 0.82)
        channels = (
            ["网上办理"] * n_web
            + ["移动端"] * (n_online - n_web)
            + ["窗口办理"] * n_window
            + ["自助终端"] * (n - n_online - n_window)
        )
        rng.shuffle(channels)
        days = [dt.date(year, month, d) for d in range(1, cutoff.day + 1)]
        workdays = [d for d in days if is_workday(d)]
        cases: list[Case] = []
        for channel in channels:
            it = pick_item()
            online = channel in ONLINE
            if online:
                d = rng.choice(days)
                applied = _rand_time(rng, d, 7 * 60, 23 * 60 + 30)
                accepted = _next_work_slot(
                    applied + dt.timedelta(minutes=rng.randrange(5, 180)), rng
                )
                accepted += dt.timedelta(seconds=rng.randrange(0, 5400))
            else:
                applied = _rand_time(rng, rng.choice(workdays), 510, 1005)
                accepted = applied + dt.timedelta(seconds=rng.randrange(60, 900))
            r = rng.random()
            finished = None
            if r < 0.012:
                status, accepted = "不予受理", None
            elif r < 0.03:
                status = "退回"
            else:
                status = "已办结"
                p = it.promised_days
                if rng.random() >= 0.04:  # within the promised time: calendar days <= p - 1
                    if it.handling_type == "即办件":
                        finished = accepted + dt.timedelta(seconds=rng.randrange(180, 9000))
                    else:
                        gap = min(p - 1, int(rng.random() ** 2 * p))
                        fd = accepted.date() + dt.timedelta(days=gap)
                        while fd > accepted.date() and not is_workday(fd):
                            fd -= dt.timedelta(days=1)
                        if fd == accepted.date():
                            room = max(
                                660,
                                (19 * 3600)
                                - (accepted.hour * 3600 + accepted.minute * 60 + accepted.second),
                            )
                            finished = accepted + dt.timedelta(seconds=rng.randrange(600, room))
                        else:
                            finished = _rand_time(rng, fd, 520, 1040)
                else:  # late: at least p + 2 working days and p + 2 calendar days
                    fd = add_workdays(accepted.date(), p + rng.randint(2, 8))
                    finished = _rand_time(rng, fd, 520, 1040)
                    assert (fd - accepted.date()).days >= p + 2
                if finished.date() != accepted.date() or finished < accepted:
                    assert finished > accepted
                if finished > cutoff:
                    status, finished = "在办", None
            if accepted is not None and accepted > cutoff:
                status, accepted, finished = "在办", None, None
            case = Case(
                "",
                it.item_code,
                it.dept_code,
                pick_region(),
                channel,
                applied,
                accepted,
                finished,
                status,
                it.full_online and online,
                "",
                "",
                it.promised_days,
            )
            if minute_precision:
                for f in ("applied_at", "accepted_at", "finished_at"):
                    v = getattr(case, f)
                    if v is not None:
                        setattr(case, f, v.replace(second=0))
            cases.append(case)
        cases.sort(key=lambda c: c.applied_at)
        seq: dict[dt.date, int] = {}
        for c in cases:
            d = c.applied_at.date()
            seq[d] = seq.get(d, rng.randrange(1, 40)) + rng.randrange(1, 25)
            c.case_no = f"SY{d:%Y%m%d}{seq[d]:05d}"
            c.applicant_id_no = id_number(
                rng, rng.choice(districts) if rng.random() < 0.8 else "210100"
            )
            c.applicant_phone = phone_number(rng)
        months[f"{year:04d}-{month:02d}"] = cases

    # the median over an odd number of finished cases is the same for every median definition
    march = months[REFERENCE_PERIOD]
    finished = [c for c in march if c.finished_at is not None]
    if len(finished) % 2 == 0:
        last = max(finished, key=lambda c: c.finished_at)
        last.status, last.finished_at = "在办", None
    for cases in months.values():
        assert len({c.case_no for c in cases}) == len(cases)
        for c in cases:
            assert c.item_code in in_use
    all_nos = [c.case_no for cs in months.values() for c in cs]
    assert len(set(all_nos)) == len(all_nos)
    return {"months": months, "districts": districts, "rng_state": None}


def _case_bad_rows_2022_12(cases: list[Case], org: dict) -> list[tuple[int, Case, str]]:
    """(insert position, row, rule) for the December file."""
    rng = rng_for("bad_cases_2022_12")
    tmpl = cases[1234]
    applied = dt.datetime(2022, 12, 14, 9, 50)
    bad_time = Case(
        "SY2022121499901",
        tmpl.item_code,
        tmpl.dept_code,
        tmpl.region_code,
        "窗口办理",
        applied,
        dt.datetime(2022, 12, 14, 10, 5),
        dt.datetime(2022, 12, 13, 16, 20),
        "已办结",
        False,
        id_number(rng, "210102"),
        phone_number(rng),
        remark="系统迁移数据",
    )
    tmpl = cases[2100]
    unknown_item = Case(
        "SY2022121999902",
        "210100XK999999001",
        tmpl.dept_code,
        tmpl.region_code,
        "网上办理",
        dt.datetime(2022, 12, 19, 14, 12),
        dt.datetime(2022, 12, 19, 15, 0),
        None,
        "在办",
        True,
        id_number(rng, "210104"),
        phone_number(rng),
    )
    dup = cases[3001]
    return [
        (1500, bad_time, "finished_after_accepted"),
        (2500, unknown_item, "unknown_reference"),
        (3400, dup, "duplicate_key"),
    ]


def write_cases(cases_by_month: dict, org: dict, out: Path, log: FileLog) -> dict:
    rng = rng_for("service_cases_write")
    written: dict[str, int] = {}

    # ---- 2022-12: GBK CSV, shuffled Chinese headers, extra 备注,
    #      '2022/12/5 9:30' and '2022年12月5日 09:30:00'
    rel = "service_cases/办件明细_2022年12月.csv"
    cols = [
        ("case_no", "办件流水号"),
        ("item_code", "事项编码"),
        ("dept_code", "实施部门编码"),
        ("region_code", "行政区划代码"),
        ("channel", "办理渠道"),
        ("applied_at", " 申请时间"),
        ("accepted_at", "受理时间 "),
        ("finished_at", "办结时间"),
        ("status", "办理状态"),
        ("full_online", "是否全程网办"),
        ("applicant_id_no", "申请人身份证号"),
        ("applicant_phone", "联系电话"),
        ("remark", "备注"),
    ]
    rng.shuffle(cols)
    remarks = ["加急", "材料补正后受理", "代办", "预约办理", "容缺受理"]
    good = cases_by_month["2022-12"]
    for c in good:
        c.remark = rng.choice(remarks) if rng.random() < 0.04 else None
    rows: list[Case] = list(good)
    bad = _case_bad_rows_2022_12(good, org)
    bad_rows = []
    for pos, case, _rule in sorted(bad, key=lambda b: b[0]):
        rows.insert(pos, case)
    for pos, case, rule in bad:
        bad_rows.append({"row": rows.index(case, pos) + 2, "rule": rule, "case_no": case.case_no})
    bad_rows.sort(key=lambda b: b["row"])

    def cell_2212(c: Case, name: str):
        v = getattr(c, name)
        if isinstance(v, dt.datetime):
            return fmt_ts(v, "zh" if int(c.case_no[-3:]) % 9 == 0 else "slash")
        if isinstance(v, bool):
            return "是" if v else "否"
        return v

    write_csv(
        out / rel, [h for _, h in cols], [[cell_2212(c, n) for n, _ in cols] for c in rows], "gbk"
    )
    log.add(rel, len(rows), bad_rows, encoding="gbk")
    written["2022-12"] = len(good)

    # ---- 2023-01: UTF-8 with BOM, mixed English/Chinese headers, Y/N, ISO and Chinese timestamps
    rel = "service_cases/办件明细_2023年1月.csv"
    header = [
        "case_no",
        "事项编码",
        "dept_code",
        "区划代码",
        "申办渠道",
        "applied_at",
        "受理时间",
        "finished_at",
        "办件状态",
        "全程网办",
        "证件号码",
        "手机号码",
    ]
    names = [
        "case_no",
        "item_code",
        "dept_code",
        "region_code",
        "channel",
        "applied_at",
        "accepted_at",
        "finished_at",
        "status",
        "full_online",
        "applicant_id_no",
        "applicant_phone",
    ]
    good = cases_by_month["2023-01"]
    zh_rows = set(rng.sample(range(len(good)), len(good) // 6))

    def cell_2301(i: int, c: Case, name: str):
        v = getattr(c, name)
        if isinstance(v, dt.datetime):
            return fmt_ts(v, "zh" if i in zh_rows else "iso")
        if isinstance(v, bool):
            return "Y" if v else "N"
        return v

    rows = [[cell_2301(i, c, n) for n in names] for i, c in enumerate(good)]
    brng = rng_for("bad_cases_2023_01")
    bad_specs = [  # case numbers carry the applied date of the row they are modelled on
        (pos, f"SY{good[pos].applied_at:%Y%m%d}{seq:05d}", override, rule)
        for pos, seq, override, rule in [
            (800, 99903, {"channel": ""}, "required"),
            (1900, 99904, {"channel": "邮寄"}, "not_in_set"),
            (2700, 99905, {"full_online": "待定"}, "unreadable_value"),
        ]
    ]
    bad_rows = []
    for pos, case_no, override, _rule in bad_specs:
        tmpl = good[pos]
        row = [cell_2301(-1, tmpl, n) for n in names]
        row[0] = case_no
        row[names.index("applicant_id_no")] = id_number(brng, "210105")
        row[names.index("applicant_phone")] = phone_number(brng)
        for k, v in override.items():
            row[names.index(k)] = v
        rows.insert(pos, row)
    for _pos, case_no, _, rule in bad_specs:
        idx = next(i for i, r in enumerate(rows) if r[0] == case_no)
        bad_rows.append({"row": idx + 2, "rule": rule, "case_no": case_no})
    write_csv(out / rel, header, rows, "utf-8-sig")
    log.add(rel, len(rows), bad_rows, encoding="utf-8-sig")
    written["2023-01"] = len(good)

    # ---- 2023-02: JSON array from the platform API (English keys, true/false, null, an extra key)
    rel = "service_cases/service_cases_2023-02.json"
    good = cases_by_month["2023-02"]
    recs = []
    for c in good:
        recs.append(
            {
                "case_no": c.case_no,
                "item_code": c.item_code,
                "dept_code": c.dept_code,
                "region_code": c.region_code,
                "channel": c.channel,
                "applied_at": fmt_ts(c.applied_at, "iso_t"),
                "accepted_at": fmt_ts(c.accepted_at, "iso_t"),
                "finished_at": fmt_ts(c.finished_at, "iso_t"),
                "status": c.status,
                "full_online": c.full_online,
                "applicant_id_no": c.applicant_id_no,
                "applicant_phone": c.applicant_phone,
                "source_system": "一体化政务服务平台",
            }
        )
    p = out / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(
        "[\n"
        + ",\n".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in recs)
        + "\n]\n",
        encoding="utf-8",
    )
    log.add(rel, len(recs), row_numbering="1-based position in the array")
    written["2023-02"] = len(good)

    # ---- 2023-03: Parquet (typed timestamps and booleans)
    rel = "service_cases/service_cases_2023-03.parquet"
    good = cases_by_month["2023-03"]
    ts = pa.timestamp("s")
    table = pa.table(
        {
            "case_no": pa.array([c.case_no for c in good], pa.string()),
            "item_code": pa.array([c.item_code for c in good], pa.string()),
            "dept_code": pa.array([c.dept_code for c in good], pa.string()),
            "region_code": pa.array([c.region_code for c in good], pa.string()),
            "channel": pa.array([c.channel for c in good], pa.string()),
            "applied_at": pa.array([c.applied_at for c in good], ts),
            "accepted_at": pa.array([c.accepted_at for c in good], ts),
            "finished_at": pa.array([c.finished_at for c in good], ts),
            "status": pa.array([c.status for c in good], pa.string()),
            "full_online": pa.array([c.full_online for c in good], pa.bool_()),
            "applicant_id_no": pa.array([c.applicant_id_no for c in good], pa.string()),
            "applicant_phone": pa.array([c.applicant_phone for c in good], pa.string()),
        }
    )
    pq.write_table(
        table, out / rel, compression="zstd", row_group_size=2_000, write_statistics=False
    )
    log.add(rel, len(good), row_numbering="1-based row position")
    written["2023-03"] = len(good)
    return written


# --------------------------------------------------------------------------------------
# service_reviews
# --------------------------------------------------------------------------------------
@dataclass
class Review:
    review_no: str
    case_no: str
    rating: int
    channel: str
    reviewed_at: dt.datetime
    auto_review: bool
    rectification: str | None
    rectified_at: dt.datetime | None
    dept_code: str | None
    orphan: bool = False


RATING_TEXT = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
REVIEW_CHANNELS = {
    "网上办理": (["政务服务网", "小程序", "12345热线"], [0.85, 0.1, 0.05]),
    "移动端": (["APP", "小程序"], [0.6, 0.4]),
    "窗口办理": (["评价器", "12345热线"], [0.93, 0.07]),
    "自助终端": (["自助终端"], [1.0]),
}
REVIEW_EXPORTS = [
    ("2022-12", "2023-02", month_end(2023, 2)),
    ("2023-03", "2023-03", month_end(2023, 3)),
]


def build_reviews(cases_by_month: dict, org: dict) -> list[Review]:
    rng = rng_for("service_reviews")
    final_cutoff = month_end(2023, 3)
    drafts: list[Review] = []
    reporting = [u.code for u in org["city"][: len(REPORTING_DEPTS)]]
    # a handful of reviews of November cases: not in any cases file (kept, flagged by the pipeline)
    orphans = []
    for i in range(6):
        finished = dt.datetime(2022, 11, 28 + i % 3, 10 + i, 15, 0)
        orphans.append(
            (
                f"SY202211{28 + i % 3:02d}{700 + i * 13:05d}",
                "网上办理",
                finished,
                rng.choice(reporting),
            )
        )
    sources = [
        (c.case_no, c.channel, c.finished_at, c.dept_code)
        for cases in cases_by_month.values()
        for c in cases
        if c.finished_at is not None
    ]
    for case_no, channel, finished, dept in orphans + sources:
        is_orphan = case_no.startswith("SY202211")
        if not is_orphan and rng.random() >= 0.76:
            continue
        auto = not is_orphan and rng.random() < 0.31
        names, weights = REVIEW_CHANNELS[channel]
        rchannel = rng.choices(names, weights)[0]
        if is_orphan:  # reviewed in early December (a case applied and finished in November)
            reviewed = dt.datetime(2022, 12, 1 + len(drafts) % 3, 9, 0) + dt.timedelta(
                seconds=rng.randrange(0, 30000)
            )
            rating = rng.choice([5, 5, 4])
        elif auto:
            reviewed = dt.datetime.combine(
                finished.date() + dt.timedelta(days=8), dt.time(1, 0)
            ) + dt.timedelta(seconds=rng.randrange(0, 3600))
            rating = 5
        else:
            if rchannel in ("评价器", "自助终端"):
                reviewed = finished + dt.timedelta(seconds=rng.randrange(20, 600))
            else:
                reviewed = finished + dt.timedelta(seconds=rng.randrange(300, 5 * 86400))
            rating = rng.choices([5, 4, 3, 2, 1], [0.86, 0.1, 0.026, 0.008, 0.006])[0]
        if reviewed > final_cutoff:
            continue
        drafts.append(
            Review("", case_no, rating, rchannel, reviewed, auto, None, None, dept, is_orphan)
        )
    drafts.sort(key=lambda r: r.reviewed_at)
    seq: dict[dt.date, int] = {}
    for r in drafts:
        d = r.reviewed_at.date()
        seq[d] = seq.get(d, rng.randrange(1, 30)) + rng.randrange(1, 20)
        r.review_no = f"PJ{d:%Y%m%d}{seq[d]:05d}"
        cutoff = next(c for lo, hi, c in REVIEW_EXPORTS if lo <= ym(r.reviewed_at) <= hi)
        if r.rating <= 2:
            r.rectification = "整改中"
            if rng.random() < 0.85:
                done = r.reviewed_at + dt.timedelta(seconds=rng.randrange(7200, 4 * 86400))
                if done <= cutoff:
                    r.rectification, r.rectified_at = "已整改", done
        elif rng.random() < 0.7:
            r.rectification = "无需整改"
    assert len({r.review_no for r in drafts}) == len(drafts)
    return drafts


def write_reviews(reviews: list[Review], out: Path, log: FileLog) -> None:
    rng = rng_for("service_reviews_write")
    # ---- December to February: UTF-8 CSV, ratings as text, 是/否
    rel = "service_reviews/好差评明细_2022年12月-2023年2月.csv"
    part = [r for r in reviews if ym(r.reviewed_at) <= "2023-02"]
    header = [
        "评价编号",
        "办件编号",
        "评价等级",
        "评价渠道",
        "评价时间",
        "是否默认评价",
        "整改状态",
        "整改完成时间",
    ]
    rows = [
        [
            r.review_no,
            r.case_no,
            RATING_TEXT[r.rating],
            r.channel,
            fmt_ts(r.reviewed_at, "iso"),
            "是" if r.auto_review else "否",
            r.rectification,
            fmt_ts(r.rectified_at, "iso"),
        ]
        for r in part
    ]
    write_csv(out / rel, header, rows, "utf-8")
    log.add(rel, len(rows), orphan_case_refs=sum(r.orphan for r in part))

    # ---- March: XLSX, title row, aliases, ratings as digits (numbers), Y/N, one unreadable rating
    rel = "service_reviews/好差评明细_2023年3月.xlsx"
    part = [r for r in reviews if ym(r.reviewed_at) == "2023-03"]
    wb = new_workbook(out / rel)
    title = wb.add_format({"bold": True, "font_size": 14})
    head = wb.add_format({"bold": True, "border": 1, "bg_color": "#E2EFDA"})
    ws = wb.add_worksheet("评价明细")
    ws.merge_range(0, 0, 0, 7, "政务服务“好差评”评价明细（2023年3月）", title)
    for c, h in enumerate(
        [
            "评价流水号",
            "办件号",
            "评分",
            "评价方式",
            "评价日期",
            "系统默认好评",
            "整改情况",
            "整改时间",
        ]
    ):
        ws.write_string(1, c, h, head)
    bad_pos = 1717
    bad = Review(
        f"PJ{part[bad_pos].reviewed_at:%Y%m%d}99906",
        part[bad_pos].case_no,
        0,
        "政务服务网",
        part[bad_pos].reviewed_at,
        False,
        None,
        None,
        None,
    )
    rows_out = part[:bad_pos] + [bad] + part[bad_pos:]
    for i, r in enumerate(rows_out):
        x = i + 2
        ws.write_string(x, 0, r.review_no)
        ws.write_string(x, 1, r.case_no)
        if r is bad:
            ws.write_string(x, 2, "很好")
        elif rng.random() < 0.1:
            ws.write_string(x, 2, str(r.rating))  # number stored as text
        else:
            ws.write_number(x, 2, r.rating)
        ws.write_string(x, 3, r.channel)
        ws.write_string(x, 4, fmt_ts(r.reviewed_at, "iso"))
        ws.write_string(x, 5, "Y" if r.auto_review else "N")
        if r.rectification:
            ws.write_string(x, 6, r.rectification)
        if r.rectified_at:
            ws.write_string(x, 7, fmt_ts(r.rectified_at, "iso"))
    ws.set_column(0, 1, 18)
    ws.set_column(4, 4, 20)
    wb.close()
    log.add(
        rel,
        len(rows_out),
        [
            {
                "row": bad_pos + 3,
                "rule": "unreadable_value",
                "review_no": bad.review_no,
                "value": "很好",
            }
        ],
        header_row=2,
    )


# --------------------------------------------------------------------------------------
# case_volume_monthly
# --------------------------------------------------------------------------------------
def _season(y: int, m: int) -> float:
    f = {
        1: 0.92,
        2: 0.74,
        3: 1.02,
        4: 1.0,
        5: 0.98,
        6: 1.03,
        7: 1.0,
        8: 1.01,
        9: 1.04,
        10: 0.86,
        11: 1.03,
        12: 1.1,
    }[m]
    if (y, m) == (2020, 2):
        f *= 0.55
    if (y, m) in ((2020, 3), (2022, 4)):
        f *= 0.8
    return f


def build_monthly(org: dict, cases_by_month: dict, reviews: list[Review]) -> dict:
    rng = rng_for("case_volume_monthly")
    reporting = org["city"][: len(REPORTING_DEPTS)]
    weight = {u.code: w for u, (_, w) in zip(reporting, REPORTING_DEPTS, strict=True)}
    name_of = {u.code: u.name for u in reporting}
    late = {u.code for u in reporting if u.name in LATE_REPORTERS}
    early_months = months_between((2019, 1), (2022, 11))
    n_rec = sum(len(v) for v in cases_by_month.values())
    n_rev = len(reviews)
    target_cases = TARGET_CASES - n_rec
    target_reviews = TARGET_REVIEWS - n_rev

    rows: dict[tuple[str, str], dict] = {}
    raw_c: dict[tuple[str, str], float] = {}
    raw_r: dict[tuple[str, str], float] = {}
    for t, (y, m) in enumerate(early_months):
        month = f"{y:04d}-{m:02d}"
        depts = [c for c in weight if not (c in late and (y, m) < (2020, 7))]
        level = (1.0e6 + 1.05e6 * t / (len(early_months) - 1)) * _season(y, m)
        wsum = sum(weight[c] for c in depts)
        for c in depts:
            raw_c[month, c] = level * weight[c] / wsum * rng.uniform(0.9, 1.1)
            raw_r[month, c] = raw_c[month, c] * (0.5 + 0.28 * t / 46) * rng.uniform(0.95, 1.05)

    def wan_month(month: str) -> bool:
        return month <= "2022-06"

    police = reporting[0].code
    inline_wan = {(mo, police) for mo in ("2022-07", "2022-08", "2022-09", "2022-10", "2022-11")}

    def settle(raw: dict, target: int, exclude: set) -> dict[tuple[str, str], int]:
        scale = target / sum(raw.values())
        vals: dict[tuple[str, str], int] = {}
        for k, v in raw.items():
            v *= scale
            vals[k] = round(v / 1000) * 1000 if (wan_month(k[0]) or k in exclude) else round(v)
        plain = [k for k in vals if not wan_month(k[0]) and k not in exclude]
        fix = max(plain, key=lambda k: vals[k])
        vals[fix] += target - sum(vals.values())
        assert sum(vals.values()) == target
        return vals

    cases = settle(raw_c, target_cases, inline_wan)
    valid = settle(raw_r, target_reviews, set())
    for (month, dept), c in cases.items():
        t = early_months.index((int(month[:4]), int(month[5:])))
        share = min(0.96, (0.62 + 0.32 * t / 46) * rng.uniform(0.97, 1.02))
        online = int(c * share)
        if wan_month(month) or (month, dept) in inline_wan:
            online = online // 1000 * 1000
        v = valid[month, dept]
        if wan_month(month):
            bad = round(v * rng.uniform(0.001, 0.004) / 1000) * 1000
            good = (int(v * rng.uniform(0.975, 0.99)) // 1000) * 1000
        else:
            bad = round(v * rng.uniform(0.001, 0.004))
            good = int(v * rng.uniform(0.975, 0.99))
        good = min(good, v - bad)
        rows[month, dept] = {
            "month": month,
            "dept_code": dept,
            "dept_name": name_of[dept],
            "cases": c,
            "online_cases": online,
            "valid_reviews": v,
            "good_reviews": good,
            "bad_reviews": bad,
            "wan": wan_month(month),
            "inline_wan": (month, dept) in inline_wan,
        }

    # overlap months: the monthly report against the record-level data (gap < 0.5 %)
    reconciliation = {}
    for month in ("2022-12", "2023-01"):
        recs = cases_by_month[month]
        per = Counter(c.dept_code for c in recs)
        per_online = Counter(c.dept_code for c in recs if c.channel in ONLINE)
        rev = [r for r in reviews if ym(r.reviewed_at) == month and r.dept_code in weight]
        per_rev = Counter(r.dept_code for r in rev)
        per_good = Counter(r.dept_code for r in rev if r.rating >= 4)
        per_bad = Counter(r.dept_code for r in rev if r.rating <= 2)
        gap = OVERLAP_GAP[month]
        bump = rng.sample([c for c in weight if per[c] > 30], abs(gap))
        for dept in weight:
            c = per[dept] + (int(math.copysign(1, gap)) if dept in bump else 0)
            rows[month, dept] = {
                "month": month,
                "dept_code": dept,
                "dept_name": name_of[dept],
                "cases": c,
                "online_cases": min(c, per_online[dept]),
                "valid_reviews": per_rev[dept],
                "good_reviews": per_good[dept],
                "bad_reviews": per_bad[dept],
                "wan": False,
                "inline_wan": False,
            }
        monthly_total = sum(rows[month, d]["cases"] for d in weight)
        reconciliation[month] = {
            "monthly_report_cases": monthly_total,
            "record_cases": len(recs),
            "gap": monthly_total - len(recs),
            "gap_share": (monthly_total - len(recs)) / len(recs),
        }
        assert abs(reconciliation[month]["gap_share"]) < 0.005
    for r in rows.values():
        assert 0 <= r["online_cases"] <= r["cases"]
        assert r["good_reviews"] + r["bad_reviews"] <= r["valid_reviews"]
    early_sum = sum(r["cases"] for r in rows.values() if r["month"] < FIRST_RECORD_MONTH)
    early_rev = sum(r["valid_reviews"] for r in rows.values() if r["month"] < FIRST_RECORD_MONTH)
    assert early_sum + n_rec == TARGET_CASES and early_rev + n_rev == TARGET_REVIEWS
    return {
        "rows": rows,
        "reconciliation": reconciliation,
        "early_cases": early_sum,
        "early_reviews": early_rev,
        "gone_dept": org["gone_dept"],
        "months": sorted({k[0] for k in rows}),
    }


def write_monthly(monthly: dict, out: Path, log: FileLog) -> None:
    rows = monthly["rows"]
    rng = rng_for("case_volume_monthly_write")

    def zh_month(month: str) -> str:
        return f"{int(month[:4])}年{int(month[5:])}月"

    # ---- 2019-2021: XLSX, title row, unit row, two-row merged header, two sheets, 小计/合计,
    #      blank rows
    rel = "case_volume_monthly/办件量月报_2019-2021.xlsx"
    wb = new_workbook(out / rel)
    title = wb.add_format({"bold": True, "font_size": 16, "align": "center"})
    unit = wb.add_format({"align": "right"})
    head = wb.add_format(
        {"bold": True, "align": "center", "valign": "vcenter", "border": 1, "bg_color": "#FCE4D6"}
    )
    num = wb.add_format({"num_format": "0.0"})
    tot = wb.add_format({"bold": True, "num_format": "0.0"})
    totl = wb.add_format({"bold": True})
    sheets = {"2019-2020年": ["2019", "2020"], "2021年": ["2021"]}
    read, skipped, per_sheet = 0, 0, {}
    for sheet, years in sheets.items():
        ws = wb.add_worksheet(sheet)
        ws.merge_range(0, 0, 0, 7, "沈阳市政务服务办件量统计表", title)
        ws.merge_range(1, 0, 1, 7, "单位：万件", unit)
        for c, h in enumerate(["统计月份", "实施部门编码", "部门名称", "办件量", "其中网上办件量"]):
            ws.merge_range(2, c, 3, c, h, head)
        ws.merge_range(2, 5, 2, 7, "好差评（万条）", head)
        for c, h in enumerate(["有效评价数", "好评数", "差评数"], start=5):
            ws.write_string(3, c, h, head)
        x, n_sheet = 4, 0
        grand = [0] * 5
        for year in years:
            sub = [0] * 5
            for month in sorted({k[0] for k in rows if k[0][:4] == year}):
                for dept in sorted(d for m, d in rows if m == month):
                    r = rows[month, dept]
                    vals = [
                        r["cases"],
                        r["online_cases"],
                        r["valid_reviews"],
                        r["good_reviews"],
                        r["bad_reviews"],
                    ]
                    ws.write_string(x, 0, zh_month(month))
                    ws.write_string(x, 1, dept)
                    ws.write_string(x, 2, r["dept_name"])
                    as_text = rng.random() < 0.15  # numbers stored as text
                    for c, v in enumerate(vals, start=3):
                        if as_text:
                            ws.write_string(x, c, wan(v // 1000))
                        else:
                            ws.write_number(x, c, float(wan(v // 1000)), num)
                    sub = [a + b // 1000 for a, b in zip(sub, vals, strict=True)]
                    x += 1
                    n_sheet += 1
            if len(years) > 1:
                ws.write_string(x, 0, "小计", totl)
                for c, v in enumerate(sub, start=3):
                    ws.write_number(x, c, float(wan(v)), tot)
                x += 2  # a blank row after each subtotal
                n_sheet += 1
                skipped += 1
            grand = [a + b for a, b in zip(grand, sub, strict=True)]
        ws.write_string(x, 0, "合计", totl)
        for c, v in enumerate(grand, start=3):
            ws.write_number(x, c, float(wan(v)), tot)
        n_sheet += 1
        skipped += 1
        ws.set_column(0, 0, 12)
        ws.set_column(1, 1, 22)
        ws.set_column(2, 2, 28)
        per_sheet[sheet] = n_sheet
        read += n_sheet
    wb.close()
    log.add(rel, read, rows_skipped=skipped, sheets=per_sheet, header_rows=[3, 4])

    # ---- 2022-01..06: UTF-8 CSV, the unit in the header ('办件量（万件）' with '152.3')
    rel = "case_volume_monthly/办件量月报_2022年1-6月.csv"
    header = [
        "统计月份",
        "实施部门编码",
        "部门名称",
        "办件量（万件）",
        "其中网上办件量（万件）",
        "有效评价数（万条）",
        "好评数（万条）",
        "差评数（万条）",
    ]
    out_rows = []
    for (month, dept), r in sorted(rows.items()):
        if "2022-01" <= month <= "2022-06":
            out_rows.append(
                [month, dept, r["dept_name"]]
                + [
                    wan(r[k] // 1000)
                    for k in (
                        "cases",
                        "online_cases",
                        "valid_reviews",
                        "good_reviews",
                        "bad_reviews",
                    )
                ]
            )
    write_csv(out / rel, header, out_rows, "utf-8")
    log.add(rel, len(out_rows))

    # ---- 2022-07..2023-01: GBK CSV, plain integers (one department writes '152.3万'), bad rows
    rel = "case_volume_monthly/办件量月报_2022年7月-2023年1月.csv"
    header = [
        "月份",
        "部门编码",
        "单位名称",
        "办件数",
        "网上办件量",
        "有效好差评数",
        "好评",
        "差评",
    ]
    out_rows, bad_rows = [], []
    gone_code, gone_name = monthly["gone_dept"]
    for (month, dept), r in sorted(rows.items()):
        if month < "2022-07":
            continue
        mtxt = zh_month(month) if rng.random() < 0.5 else month
        if r["inline_wan"]:
            c, o = wan(r["cases"] // 1000) + "万", wan(r["online_cases"] // 1000) + "万"
        else:
            c, o = str(r["cases"]), str(r["online_cases"])
        out_rows.append(
            [
                mtxt,
                dept,
                r["dept_name"],
                c,
                o,
                str(r["valid_reviews"]),
                str(r["good_reviews"]),
                str(r["bad_reviews"]),
            ]
        )
        if (month, dept) == ("2022-09", sorted(d for m, d in rows if m == "2022-09")[5]):
            # a correction line: negative count (a clerk's 退件冲减), quarantined;
            # the row above stays
            out_rows.append(
                ["2022年9月", dept, r["dept_name"] + "（退件冲减）", "-2317", "", "", "", ""]
            )
            bad_rows.append({"row": len(out_rows) + 1, "rule": "out_of_range", "value": "-2317"})
        if (month, dept) == ("2022-10", sorted(d for m, d in rows if m == "2022-10")[-1]):
            out_rows.append(
                ["2022年10月", gone_code, gone_name, "18652", "15113", "12022", "11890", "31"]
            )
            bad_rows.append(
                {"row": len(out_rows) + 1, "rule": "unknown_reference", "value": gone_code}
            )
    write_csv(out / rel, header, out_rows, "gbk")
    log.add(rel, len(out_rows), bad_rows, encoding="gbk")


# --------------------------------------------------------------------------------------
# indicators
# --------------------------------------------------------------------------------------
def write_indicators(out: Path, log: FileLog) -> dict:
    # ---- long form: XLSX with a title row
    rel = "indicators/指标报送表_2022年4月.xlsx"
    big = "沈阳市大数据管理局"
    long_rows = [
        (big, "互联网出口带宽", "2020年", "4.5G", "Gbps", "政务外网互联网出口总带宽"),
        (big, "政务外网互联网出口带宽", "2022年4月", "20G", "", "扩容后"),
        (big, "累计关停部门自有小危机房", "2022年4月", "21", "个", "累计数"),
        (big, "建成基础库", "2022-04", "5", "个", "人口、法人、自然资源、电子证照、信用"),
        (big, "形成主题库", "2022-04", "24", "类", "健康保障、社会保障等"),
        (big, "可共享政务数据资源目录", "2021年", "8,102", "条", "上年末"),
        (big, "可共享政务数据资源目录", "2022年4月", "9,339", "条", "通过政务数据共享交换平台发布"),
        (big, "累计归集数据信息", "2022年4月", "49亿条", "条", ""),
        (
            "沈阳市城市管理行政执法局",
            "智慧路灯数",
            "2022年4月",
            "12,806",
            "盏",
            "新增指标，目录中尚无",
        ),
    ]
    wb = new_workbook(out / rel)
    ws = wb.add_worksheet("指标")
    title = wb.add_format({"bold": True, "font_size": 14})
    head = wb.add_format({"bold": True, "border": 1})
    ws.merge_range(0, 0, 0, 5, "沈阳市数字政府建设指标报送表（2022年4月）", title)
    for c, h in enumerate(["报送单位", "指标名称", "统计期", "数值", "单位", "口径说明"]):
        ws.write_string(1, c, h, head)
    for r, row in enumerate(long_rows, start=2):
        for c, v in enumerate(row):
            if c == 3 and v.isdigit():
                ws.write_number(r, c, int(v))
            elif v:
                ws.write_string(r, c, v)
    ws.set_column(0, 1, 26)
    wb.close()
    log.add(
        rel,
        len(long_rows),
        [
            {
                "row": len(long_rows) + 2,
                "rule": "unreadable_value",
                "value": "智慧路灯数",
                "note": "indicator name not in the catalogue (the loader may name the rule "
                "not_in_set); quarantined, never guessed",
            }
        ],
        header_row=2,
    )

    # ---- wide form: GBK CSV, one column per indicator, empty cells = not reported
    rel = "indicators/各部门指标报送_宽表.csv"
    header = [
        "填报单位",
        "统计期",
        "互联网医院数",
        "基层医疗卫生机构上线疫情防控系统",
        "接入停车场数",
        "掌上办高频服务事项",
        "一件事上线",
        "累计政策支持上云企业",
        "上云补贴",
    ]
    wide = [
        ["沈阳市卫生健康委员会", "2022年4月", "16", "５２１１", "", "", "", "", ""],
        ["沈阳市交通运输局", "2022年4月", "", "", "588", "", "", "", ""],
        ["沈阳市营商环境建设局", "2022年4月", "", "", "", "260", "610", "", ""],
        ["沈阳市工业和信息化局", "2021年", "", "", "", "", "", "631", "3亿元"],
    ]
    write_csv(out / rel, header, wide, "gbk")
    # The loader unpivots a wide table: each filled indicator cell is one row read and loaded.
    log.add(
        rel,
        sum(1 for r in wide for v in r[2:] if v),
        encoding="gbk",
        source_rows=len(wide),
        shape="wide",
    )
    return {
        "egress_bandwidth_gbps": 20,
        "machine_rooms_closed": 21,
        "base_libraries": 5,
        "theme_libraries": 24,
        "shared_catalog_entries": 9339,
        "records_aggregated": 4_900_000_000,
        "internet_hospitals": 16,
        "grassroots_medical_on_system": 5211,
        "parking_lots_connected": 588,
        "mobile_services": 260,
        "one_thing_items": 610,
        "enterprises_to_cloud": 631,
        "cloud_subsidy_yuan": 300_000_000,
    }


# --------------------------------------------------------------------------------------
# extranet_nodes
# --------------------------------------------------------------------------------------
def write_extranet(org: dict, out: Path, log: FileLog) -> dict:
    rng = rng_for("extranet_nodes")
    nodes = []  # (unit, level, region, bandwidth, dual, opened, status)
    city_regions = ["210103", "210103", "210102", "210112", "210105"]
    for u in org["city"]:
        nodes.append((u.name, "市级", rng.choice(city_regions)))
    for u in rng.sample(org["city"], 42):
        nodes.append((u.name + "（第二节点）", "市级", rng.choice(city_regions)))
    for d in org["districts"]:
        gov = "人民政府"
        nodes.append((d.name + gov, "区县级", d.code))
    for u in org["district_depts"]:
        nodes.append((u.name, "区县级", u.parent))
    streets = org["streets"]
    for s in streets:
        nodes.append(
            (s.name + ("办事处" if s.name.endswith("街道") else "人民政府"), "街道乡镇级", s.code)
        )
    for s in rng.sample(streets, 150):
        nodes.append((s.name + "便民服务中心", "街道乡镇级", s.code))
    comms = org["communities"]
    for c in comms:
        nodes.append(
            (
                c.name + ("居民委员会" if c.name.endswith("社区") else "村民委员会"),
                "社区村级",
                c.code,
            )
        )
    n_second = EXTRANET_IN_USE - len(nodes)
    for c in rng.sample(comms, n_second):
        nodes.append((c.name + "党群服务中心", "社区村级", c.code))
    assert len(nodes) == EXTRANET_IN_USE
    revoked = []
    for c in rng.sample(comms, 31):
        revoked.append((c.name + "警务室", "社区村级", c.code))
    for s in rng.sample(streets, 9):
        revoked.append((s.name + "综治中心", "街道乡镇级", s.code))
    for u in rng.sample(org["district_depts"], 3):
        revoked.append((u.name + "（旧址）", "区县级", u.parent))

    bw = {
        "市级": ["1000", "1000", "1G", "500"],
        "区县级": ["1000", "500", "500"],
        "街道乡镇级": ["200", "100"],
        "社区村级": ["100", "50", "20", "100"],
    }
    dual_p = {"市级": 1.0, "区县级": 1.0, "街道乡镇级": 0.93, "社区村级": 0.64}
    records = [(n, "在用") for n in nodes] + [(n, "撤销") for n in revoked]
    rng.shuffle(records)
    rows, dual_in_use, levels = [], 0, Counter()
    for i, ((unit, level, region), status) in enumerate(records, start=1):
        band = rng.choice(bw[level])
        if rng.random() < 0.02:
            band = band.translate(FULLWIDTH)
        dual = rng.random() < dual_p[level]
        opened = dt.date(2015, 6, 1) + dt.timedelta(days=rng.randrange(0, 2500))
        style = rng.random()
        opened_txt = (
            f"{opened.year}/{opened.month}/{opened.day}"
            if style < 0.5
            else opened.isoformat()
            if style < 0.85
            else f"{opened.year}年{opened.month}月{opened.day}日"
        )
        rows.append(
            [f"SYZWW{i:05d}", unit, level, region, band, "1" if dual else "0", opened_txt, status]
        )
        if status == "在用":
            dual_in_use += dual
            levels[level] += 1
    rel = "extranet_nodes/政务外网接入点清单.csv"
    write_csv(
        out / rel,
        [
            "接入点编号",
            "接入单位",
            "层级",
            "行政区划代码",
            "接入带宽(Mbps)",
            "是否IPv6双栈",
            "开通日期",
            "状态",
        ],
        rows,
        "gbk",
        title=f"沈阳市电子政务外网接入点清单（截至{zh_date(AS_OF['extranet_nodes'])}）",
    )
    log.add(rel, len(rows), encoding="gbk", header_row=2)
    return {
        "in_use": EXTRANET_IN_USE,
        "dual_in_use": dual_in_use,
        "levels": dict(levels),
        "revoked": len(revoked),
    }


# --------------------------------------------------------------------------------------
# cloud_systems
# --------------------------------------------------------------------------------------
SYSTEM_KINDS = [
    "业务审批系统",
    "综合管理平台",
    "数据共享平台",
    "办公自动化系统",
    "监管平台",
    "公共服务平台",
    "信息管理系统",
    "门户网站",
    "指挥调度系统",
    "统计分析系统",
    "档案管理系统",
    "视频会议系统",
]


def write_cloud(org: dict, out: Path, log: FileLog) -> dict:
    rng = rng_for("cloud_systems")
    owners = [u for u in org["city"]] + rng.sample(org["district_depts"], 120)
    specs = (
        [(False, True)] * CLOUD_NONCLASSIFIED_ON
        + [(False, False)] * (CLOUD_NONCLASSIFIED - CLOUD_NONCLASSIFIED_ON)
        + [(True, True)] * CLOUD_CLASSIFIED_ON
        + [(True, False)] * CLOUD_CLASSIFIED_OFF
    )
    rng.shuffle(specs)
    seen = set()
    rel = "cloud_systems/政务云业务系统清单_2022年4月.xlsx"
    wb = new_workbook(out / rel)
    ws = wb.add_worksheet("业务系统")
    title = wb.add_format({"bold": True, "font_size": 14})
    head = wb.add_format({"bold": True, "border": 1})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    # 截至2022年4月: a month in the title means its last day
    ws.merge_range(0, 0, 0, 7, "沈阳市政务云业务系统清单（截至2022年4月）", title)
    for c, h in enumerate(
        [
            "系统编号",
            "系统名称",
            "所属部门编码",
            "所属部门",
            "是否涉密",
            "是否上云",
            "上云日期",
            "云平台",
        ]
    ):
        ws.write_string(1, c, h, head)
    platforms = ["沈阳市政务云（移动）", "沈阳市政务云（联通）", "沈阳市政务云（电信）"]
    for i, (classified, on_cloud) in enumerate(specs):
        while True:
            owner = rng.choice(owners)
            name = owner.name + rng.choice(SYSTEM_KINDS)
            if name not in seen:
                seen.add(name)
                break
        x = i + 2
        ws.write_string(x, 0, f"ZWY{2016 + i % 7}{i + 1:04d}")
        ws.write_string(x, 1, name)
        ws.write_string(x, 2, owner.code)
        ws.write_string(x, 3, owner.name)
        ws.write_string(x, 4, "Y" if classified else "N")
        ws.write_string(x, 5, "Y" if on_cloud else "N")
        if on_cloud:
            d = dt.date(2018, 3, 1) + dt.timedelta(days=rng.randrange(0, 1500))
            if rng.random() < 0.8:
                ws.write_datetime(x, 6, dt.datetime.combine(d, dt.time()), date_fmt)
            else:
                ws.write_string(x, 6, f"{d.year}年{d.month}月{d.day}日")
            ws.write_string(x, 7, rng.choice(platforms))
    ws.set_column(1, 1, 40)
    ws.set_column(2, 2, 22)
    ws.set_column(6, 6, 12)
    wb.close()
    log.add(rel, len(specs), header_row=2)
    return {
        "systems": len(specs),
        "on_cloud": CLOUD_NONCLASSIFIED_ON + CLOUD_CLASSIFIED_ON,
        "nonclassified": CLOUD_NONCLASSIFIED,
        "nonclassified_on_cloud": CLOUD_NONCLASSIFIED_ON,
    }


# --------------------------------------------------------------------------------------
# expected KPIs, computed from the good rows written above
# --------------------------------------------------------------------------------------
def compute_kpis(
    org, items, cases_by_month, reviews, monthly, indicators, extranet, cloud
) -> tuple[dict, dict]:
    in_use = items["in_use"]
    n_items = len(in_use)
    march = cases_by_month[REFERENCE_PERIOD]
    finished = [c for c in march if c.status == "已办结"]
    assert all(c.finished_at is not None for c in finished) and len(finished) % 2 == 1
    promised = {it.item_code: it.promised_days for it in in_use}
    on_time = 0
    for c in finished:
        # working days after the day of acceptance, up to and including the day of finishing
        days = workdays_between(c.accepted_at.date(), c.finished_at.date())
        on_time += days <= promised[c.item_code]
    durations = sorted(working_seconds(c.accepted_at, c.finished_at) / 86400 for c in finished)
    rev_march = [r for r in reviews if ym(r.reviewed_at) == REFERENCE_PERIOD]
    bad = [r for r in rev_march if r.rating <= 2]
    online_march = sum(c.channel in ONLINE for c in march)
    n_rec = sum(len(v) for v in cases_by_month.values())
    kpis = {
        "case_volume_cumulative": monthly["early_cases"] + n_rec,
        "review_valid_cumulative": monthly["early_reviews"] + len(reviews),
        "item_online_rate": sum(it.online_available for it in in_use) / n_items,
        "item_full_online_share": sum(it.full_online for it in in_use) / n_items,
        "item_instant_share": sum(it.handling_type == "即办件" for it in in_use) / n_items,
        "case_online_rate": online_march / len(march),
        "departments_onboarded": sum(
            bool(u.on_platform) for u in org["city"] + org["district_depts"]
        ),
        "street_portals": sum(bool(s.has_homepage) for s in org["streets"]),
        "community_portals": sum(bool(c.has_homepage) for c in org["communities"]),
        "extranet_nodes": extranet["in_use"],
        "extranet_levels_covered": len(extranet["levels"]),
        "ipv6_dual_stack_share": extranet["dual_in_use"] / extranet["in_use"],
        "cloud_systems_hosted": cloud["on_cloud"],
        "cloud_rate_nonclassified": cloud["nonclassified_on_cloud"] / cloud["nonclassified"],
        **indicators,
        "satisfaction_rate": sum(r.rating >= 4 for r in rev_march) / len(rev_march),
        "bad_review_rectification_rate": sum(r.rectification == "已整改" for r in bad) / len(bad),
        "auto_review_share": sum(r.auto_review for r in rev_march) / len(rev_march),
        "on_time_completion_rate": on_time / len(finished),
        "median_handling_days": statistics.median(durations),
    }
    assert Fraction(online_march, len(march)) == Fraction(942, 1000)
    fractions = {
        "item_online_rate": [sum(it.online_available for it in in_use), n_items],
        "item_full_online_share": [sum(it.full_online for it in in_use), n_items],
        "item_instant_share": [sum(it.handling_type == "即办件" for it in in_use), n_items],
        "case_online_rate": [online_march, len(march)],
        "ipv6_dual_stack_share": [extranet["dual_in_use"], extranet["in_use"]],
        "cloud_rate_nonclassified": [cloud["nonclassified_on_cloud"], cloud["nonclassified"]],
        "satisfaction_rate": [sum(r.rating >= 4 for r in rev_march), len(rev_march)],
        "bad_review_rectification_rate": [sum(r.rectification == "已整改" for r in bad), len(bad)],
        "auto_review_share": [sum(r.auto_review for r in rev_march), len(rev_march)],
        "on_time_completion_rate": [on_time, len(finished)],
    }
    per_month_cases = {m: len(v) for m, v in cases_by_month.items()}
    per_month_reviews = Counter(ym(r.reviewed_at) for r in reviews)
    details = {
        "numerator_denominator": fractions,
        "median_handling_days_n": len(durations),
        "record_cases_per_month": per_month_cases,
        "record_online_cases_per_month": {
            m: sum(c.channel in ONLINE for c in v) for m, v in cases_by_month.items()
        },
        "record_valid_reviews_per_month": dict(sorted(per_month_reviews.items())),
        "orphan_reviews": {
            "count": sum(r.orphan for r in reviews),
            "case_nos": sorted(r.case_no for r in reviews if r.orphan),
        },
        "monthly_report_cases_before_records": monthly["early_cases"],
        "monthly_report_valid_reviews_before_records": monthly["early_reviews"],
        "monthly_report_months": [monthly["months"][0], monthly["months"][-1]],
        "reconciliation": monthly["reconciliation"],
        "extranet_in_use_per_level": extranet["levels"],
        "service_items": {
            "rows": len(items["rows"]),
            "in_use": n_items,
            "stopped": len(items["rows"]) - n_items,
        },
        "org_units": {
            "city_departments": len(org["city"]),
            "district_departments": len(org["district_depts"]),
            "districts": len(org["districts"]),
            "streets": len(org["streets"]),
            "communities": len(org["communities"]),
        },
    }
    return kpis, details


# --------------------------------------------------------------------------------------
def main(out_dir: Path | str = DEFAULT_OUT) -> dict:
    out = Path(out_dir)
    landing = out / "landing"
    if landing.exists():
        shutil.rmtree(landing)
    landing.mkdir(parents=True)
    log = FileLog()

    org = build_org_units()
    items = build_items(org)
    cases = build_cases(org, items)["months"]
    reviews = build_reviews(cases, org)
    monthly = build_monthly(org, cases, reviews)

    write_org_units(org, landing, log)
    write_items(items, landing, log)
    write_cases(cases, org, landing, log)
    write_reviews(reviews, landing, log)
    write_monthly(monthly, landing, log)
    indicators = write_indicators(landing, log)
    extranet = write_extranet(org, landing, log)
    cloud = write_cloud(org, landing, log)

    kpis, details = compute_kpis(org, items, cases, reviews, monthly, indicators, extranet, cloud)
    expected = {
        "reference_period": REFERENCE_PERIOD,
        "kpis": kpis,
        "register_as_of": {k: v.isoformat() for k, v in sorted(AS_OF.items())},
        "files": dict(sorted(log.files.items())),
        "details": details,
        "notes": {
            "rates": "fractions 0..1, exact numerator/denominator in details.numerator_denominator",
            "row": "row numbers are the ones a clerk sees: CSV line number (header = 1); "
            "XLSX Excel row number "
            "in its sheet; JSON/Parquet 1-based position",
            "rows_read": "data rows incl. bad rows and totals rows (合计/小计), "
            "excluding title, unit, header and "
            "blank rows; the wide indicators file counts one row per filled indicator cell "
            "(source_rows = its 4 lines)",
            "on_time": "working days of the mainland calendar (this script's own 2023 holiday "
            "table, independent of the pipeline's chinesecalendar): finished within the item's "
            "promised working days counted from the day after acceptance; handling time = time "
            "on working days, in days of 24 h",
            "as_of": "each register's date as its file states it (column, title row, or the "
            "title of the workbook's first sheet); KPIs for reference_period read the latest "
            "snapshot on or before its month-end",
            "unpublished_kpis": "for reference_period: reviews by reviewed_at month, "
            "cases by applied_at month",
        },
    }
    path = out / "expected_kpis.json"
    path.write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return expected


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default: data/sample)"
    )
    args = parser.parse_args()
    result = main(args.out)
    for name, value in result["kpis"].items():
        print(f"{name:32} {value}")
