"""The monthly bulletin archive: Dagster runs per month partition on the bundled sample, the
index page, reproducible months, and the A4 PDF checked by rendering it and reading its text."""

from __future__ import annotations

import re
import shutil
import subprocess

import dagster as dg
import duckdb
import pytest

from assets.exports import BULLETIN_MONTHS
from tests.test_bulletin import _png_size_and_pixels
from warehouse.formatting import format_kpi

# The first month of the archive, and the sample's record-level months (the last is the latest).
MONTHS = ["2019-01", "2022-12", "2023-01", "2023-02", "2023-03"]
FILES = ["bulletin.html", "bulletin.md", "bulletin.pdf", "internal.html", "internal.md", "internal.pdf"]
GENERATED = re.compile(r"生成时间 \d{4}-\d{2}-\d{2} \d{2}:\d{2}（北京时间）")


def _tools() -> None:
    from warehouse.bulletin.pdf import find_chromium

    if find_chromium() is None or not shutil.which("pdftotext") or not shutil.which("pdftoppm"):
        pytest.skip("needs chromium and poppler-utils (apt-get install -y chromium fonts-noto-cjk poppler-utils)")


@pytest.fixture(scope="module")
def archive(sample_run):
    """After the refresh and its latest-month bulletin: one `bulletin` run per month, as a Dagster
    backfill launches them."""
    _tools()
    root = sample_run["exports"] / "bulletin"
    latest = {name: (root / "2023-03" / name).read_text(encoding="utf-8") for name in ("bulletin.html", "internal.md")}
    from pipelines.archive import backfill, months_with_data

    assert months_with_data(sample_run["warehouse"])[::25] == ["2019-01", "2021-02", "2023-03"]  # 51 months
    with dg.DagsterInstance.ephemeral() as instance:
        results = backfill(instance, MONTHS)
    return {"root": root, "results": results, "latest_before": latest, "warehouse": sample_run["warehouse"]}


def test_months_from_2019_in_beijing_time():
    keys = BULLETIN_MONTHS.get_partition_keys()
    assert keys[0] == "2019-01" and "2023-03" in keys
    assert BULLETIN_MONTHS.timezone == "Asia/Shanghai"


def test_backfill_writes_one_bulletin_per_month_and_an_index(archive):
    root = archive["root"]
    for month, result in archive["results"].items():
        assert result.success, month
        assert result.dagster_run.tags["dagster/partition"] == month
        for name in FILES:
            assert (root / month / name).stat().st_size > 1000, (month, name)
        year, last = map(int, month.split("-"))
        page = (root / month / "bulletin.html").read_text(encoding="utf-8")
        assert f"<h1>沈阳市政务数据运行公报（截至{year}年{last}月）</h1>" in page
        stated = {(int(y), int(m)) for y, m in re.findall(r"(\d{4})年(\d{1,2})月", page)}
        assert max(stated) <= (year, last), month
    index = (root / "index.html").read_text(encoding="utf-8")
    for month in MONTHS:
        year, last = map(int, month.split("-"))
        assert f"<td>{year}年{last}月</td>" in index
        for name in FILES:
            assert f'href="{month}/{name}"' in index
    listed = re.findall(r"<td>(\d{4})年(\d{1,2})月</td>", index)
    assert listed == sorted(listed, key=lambda ym: (int(ym[0]), int(ym[1])), reverse=True)  # newest first


def test_rerunning_a_month_reproduces_it_apart_from_the_generation_line(archive):
    def strip(text: str) -> str:
        return GENERATED.sub("", re.sub(r"生成运行 \S+", "", text))

    root = archive["root"]
    for name, before in archive["latest_before"].items():
        after = (root / "2023-03" / name).read_text(encoding="utf-8")
        assert GENERATED.search(after)
        assert strip(after) == strip(before), name


def test_pdf_is_a4_with_embedded_cjk_fonts_and_the_headline_figures(archive, tmp_path):
    with duckdb.connect(str(archive["warehouse"]), read_only=True) as con:
        cumulative = dict(con.execute(
            "SELECT strftime(period_start, '%Y-%m'), value FROM marts.kpi_values WHERE scope = 'city' "
            "AND kpi_code = 'case_volume_cumulative' AND period_grain = 'month'").fetchall())
        batches = con.execute("SELECT batch_id, source_path FROM quality.load_batches").fetchall()
    for month in MONTHS:
        pdf = archive["root"] / month / "bulletin.pdf"
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        assert re.search(r"Page size:\s+59[45](\.\d+)? x 84[12](\.\d+)? pts \(A4\)", info), info
        fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
        rows = fonts.splitlines()[2:]
        assert rows and all(" yes " in row for row in rows), fonts  # every font embedded
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        year, last = map(int, month.split("-"))
        assert f"沈阳市政务数据运行公报（截至{year}年{last}月）" in text
        assert "北京时间" in text
        headline = format_kpi(cumulative[month], "件")
        assert f"累计办件量{headline}" in re.sub(r"\s+", "", text), (month, headline)
    latest = subprocess.run(["pdftotext", str(archive["root"] / "2023-03" / "bulletin.pdf"), "-"],
                            capture_output=True, text=True, check=True).stdout
    assert "7085.4万件" in latest and "4652.2万条" in latest
    flat = re.sub(r"\s+", "", latest)
    for batch_id, path in batches:  # the public PDF carries no batches or files
        assert batch_id not in flat and path.rsplit("/", 1)[-1] not in flat

    subprocess.run(["pdftoppm", "-r", "60", "-f", "1", "-l", "1", "-png",
                    str(archive["root"] / "2023-03" / "bulletin.pdf"), str(tmp_path / "page")], check=True)
    png = next(tmp_path.glob("page*.png"))
    width, height, pixels = _png_size_and_pixels(png)
    assert (width, height) == (496, 702)  # A4 at 60 dpi
    assert len(set(pixels)) > 32  # text and colour, not a blank page


def test_the_snapshot_names_the_bulletin_partition():
    from pipelines.automation import bulletin_partition

    keys = BULLETIN_MONTHS.get_partition_keys()
    assert bulletin_partition({"bulletin_month": dg.MetadataValue.text("2023-03")}) == "2023-03"
    assert bulletin_partition({"bulletin_month": "2099-01"}) == keys[-1]  # the current month is not over
    assert bulletin_partition({"bulletin_month": "2018-12"}) is None  # before the archive
    assert bulletin_partition({"bulletin_month": ""}) is None  # nothing published yet
