"""Platform-shaped exports for the benchmarks: registers, case records and reviews.

Every column is a vectorised polars expression of the row number, written in chunks of
``CHUNK`` rows appended to one file, so the full volume (70,854,000 cases, 46,522,000 reviews,
about 16 GB of CSV) is generated in bounded memory. Deterministic: the same arguments give the
same bytes. By design one case in 72 has its finish time before its acceptance time, and one
review in 97 a 差评 marked 无需整改: the pipeline quarantines those rows, as it must.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

CHUNK = 2_000_000
FULL_CASES = 70_854_000  # 7085.4万 件, the bureau's cumulative case count
FULL_REVIEWS = 46_522_000  # 4652.2万 条 reviews
DEPTS = [f"D{i:03d}" for i in range(50)]
REGIONS = [f"2101{i:02d}" for i in range(2, 16)]


def registers(landing: Path) -> None:
    """The org-unit and service-item registers the case records reference."""
    (landing / "org_units").mkdir(parents=True, exist_ok=True)
    (landing / "service_items").mkdir(parents=True, exist_ok=True)
    pl.DataFrame({
        "编码": DEPTS + REGIONS, "名称": [f"单位{c}" for c in DEPTS + REGIONS],
        "类型": ["市级部门"] * len(DEPTS) + ["区县"] * len(REGIONS),
        "是否接入平台": ["是"] * (len(DEPTS) + len(REGIONS)),
    }).write_csv(landing / "org_units" / "org_units.csv")
    pl.DataFrame({"事项编码": [f"I{i:04d}" for i in range(500)]}).with_columns(
        pl.lit("事项").alias("事项名称"),
        pl.format("D{}", (pl.int_range(0, 500) % 50).cast(pl.String).str.zfill(3)).alias("实施部门编码"),
        pl.lit("即办件").alias("办理类型"), pl.lit("是").alias("是否可网办"), pl.lit("是").alias("是否全程网办"),
        pl.lit("5").alias("承诺办结时限（工作日）"), pl.lit("1").alias("版本号"), pl.lit("在用").alias("事项状态"),
    ).write_csv(landing / "service_items" / "items.csv")


def case_chunk(start: int, stop: int, first_case: int = 0) -> pl.DataFrame:
    """Cases ``start`` ≤ n < ``stop`` (numbers from ``first_case`` on, applied from 2023-01-01)."""
    n = pl.int_range(start, stop, eager=True) + first_case
    applied = pl.datetime(2023, 1, 1) + pl.duration(minutes=n * 7 % (90 * 24 * 60))
    return pl.select(
        办件编号=pl.format("SY{}", n + 10_000_000),
        事项编码=pl.format("I{}", (n * 7919 % 500).cast(pl.String).str.zfill(4)),
        实施部门编码=pl.format("D{}", (n % 50).cast(pl.String).str.zfill(3)),
        行政区划代码=pl.format("2101{}", (n % 14 + 2).cast(pl.String).str.zfill(2)),
        申办渠道=pl.when(n % 17 == 0).then(pl.lit("窗口办理"))
        .when(n % 3 == 0).then(pl.lit("移动端"))
        .otherwise(pl.lit("网上办理")),
        申请时间=applied.dt.strftime("%Y-%m-%d %H:%M:%S"),
        受理时间=(applied + pl.duration(minutes=30)).dt.strftime("%Y-%m-%d %H:%M:%S"),
        办结时间=(applied + pl.duration(hours=n % 72)).dt.strftime("%Y/%m/%d %H:%M"),
        办理状态=pl.lit("已办结"),
        是否全程网办=pl.when(n % 5 == 0).then(pl.lit("否")).otherwise(pl.lit("是")),
        申请人证件号码=pl.format("2101{}", (n * 104729 % 10**14).cast(pl.String).str.zfill(14)),
        联系电话=pl.format("13{}", (n * 7 % 10**9).cast(pl.String).str.zfill(9)),
    )


def review_chunk(start: int, stop: int, cases: int) -> pl.DataFrame:
    """Reviews ``start`` ≤ n < ``stop`` of the first ``cases`` cases."""
    n = pl.int_range(start, stop, eager=True)
    case = n * 3 % max(cases, 1)
    rating = pl.when(n % 97 == 0).then(1).when(n % 41 == 0).then(2).when(n % 7 == 0).then(4).otherwise(5)
    reviewed = pl.datetime(2023, 1, 2) + pl.duration(minutes=case * 7 % (90 * 24 * 60))
    bad = rating <= 2
    return pl.select(
        评价编号=pl.format("PJ{}", n + 100_000_000),
        办件编号=pl.format("SY{}", case + 10_000_000),
        评价等级=rating.cast(pl.String),
        评价渠道=pl.when(n % 4 == 0).then(pl.lit("APP")).when(n % 4 == 1).then(pl.lit("小程序"))
        .otherwise(pl.lit("政务服务网")),
        评价时间=reviewed.dt.strftime("%Y-%m-%d %H:%M:%S"),
        是否默认评价=pl.when(n % 3 == 0).then(pl.lit("是")).otherwise(pl.lit("否")),
        # one review in 97 is a 差评 marked 无需整改: quarantined by bad_review_needs_rectification
        整改状态=pl.when(n % 97 == 0).then(pl.lit("无需整改")).when(bad).then(pl.lit("已整改"))
        .otherwise(pl.lit("无需整改")),
        整改完成时间=pl.when(bad & (n % 97 != 0)).then((reviewed + pl.duration(days=2)).dt.strftime(
            "%Y-%m-%d %H:%M:%S")).otherwise(pl.lit(None, dtype=pl.String)),
    )


def write_chunks(path: Path, rows: int, make, encoding: str = "utf-8") -> Path:
    """Write ``make(start, stop)`` for consecutive chunks of ``rows`` rows as one CSV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for start in range(0, rows, CHUNK):
            text = make(start, min(start + CHUNK, rows)).write_csv(include_header=start == 0)
            f.write(text.encode(encoding))
    return path


def cases(landing: Path, rows: int, encoding: str = "utf-8", first_case: int = 0, name: str | None = None) -> Path:
    path = landing / "service_cases" / (name or f"cases_{rows}.csv")
    return write_chunks(path, rows, lambda a, b: case_chunk(a, b, first_case), encoding)


def reviews(landing: Path, rows: int, cases_count: int, encoding: str = "utf-8") -> Path:
    path = landing / "service_reviews" / f"reviews_{rows}.csv"
    return write_chunks(path, rows, lambda a, b: review_chunk(a, b, cases_count), encoding)
