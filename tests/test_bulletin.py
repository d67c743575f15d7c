"""The bureau's bulletin: figures in the bureau's words, charts, quality summary, traceability."""

from __future__ import annotations

import html
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests import sample_warehouse
from warehouse.bulletin import collect, period_label, write_bulletin

CHROMIUM_NAMES = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
    "headless_shell",
)


@pytest.fixture()
def con(tmp_path):
    con = sample_warehouse.connect_copy(tmp_path / "db")
    yield con
    con.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One bulletin of the sample warehouse for the tests that only read it."""
    folder = tmp_path_factory.mktemp("bulletin")
    con = sample_warehouse.connect_copy(folder / "db")
    paths = write_bulletin(con, folder / "out", "run-2023-04-02")
    yield con, paths
    con.close()


def _text(document: str) -> str:
    """The HTML as a reader reads the sentences: no source marks, no tags, entities decoded."""
    document = re.sub(r"<sup\b.*?</sup>", "", document, flags=re.S)
    document = re.sub(r"<(svg|style|title)\b.*?</\1>", "", document, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", document))


def _md_tables(md: str) -> list[list[str]]:
    """The Markdown tables, each checked: every row has as many cells as its header (a pipe from
    the data would add one)."""
    tables, current = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    for table in tables:
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table}
        assert len(widths) == 1, table
    return tables


def _md_text(document: str) -> str:
    document = re.sub(r"<sup>.*?</sup>", "", document)
    return document.replace("**", "").replace("\\", "")


BUREAU_SENTENCES = [
    "截至2023年3月，一体化政务服务平台累计办件量7085.4万件，归集有效“好差评”数据4652.2万条。",
    "全市依申请政务服务事项可网办率达100%，全程网办事项占比达99.4%，即办事项占比达70.3%，网上实办率达94.2%。",
    "一体化政务服务平台汇聚市、区两级433个部门网上办事能力，全市已有180个街道（乡镇）、2413个社区（村）建设线上服务主页。",
    "全市政务外网接入点位已达3991个，实现四级全覆盖，互联网出口带宽由4.5G提升至20G（2022年4月28日）",
    "政务云现已承载业务系统241个，非涉密业务系统上云率达80%",
    "累计归集数据信息49亿条（2023年第一季度）",
    "发布可共享的政务数据资源目录9339条",
    "截至2021年，全市累计政策支持上云企业631户，市区两级累计拨付上云补贴资金3亿元。",
    "完成16家互联网医院建设，在5211家基层医疗卫生机构部署上线疫情防控信息化管理系统。",
]


def test_title_and_period(shared):
    _, paths = shared
    page = paths["html"].read_text(encoding="utf-8")
    assert "<title>沈阳市政务数据运行公报（截至2023年3月）</title>" in page
    assert "<h1>沈阳市政务数据运行公报（截至2023年3月）</h1>" in page
    md = paths["md"].read_text(encoding="utf-8")
    assert md.startswith("# 沈阳市政务数据运行公报（截至2023年3月）\n")


@pytest.mark.parametrize("sentence", BUREAU_SENTENCES)
def test_figures_in_the_bureaus_words(shared, sentence):
    _, paths = shared
    assert sentence in _text(paths["html"].read_text(encoding="utf-8"))
    assert sentence in _md_text(paths["md"].read_text(encoding="utf-8"))


def test_latest_city_figure_of_each_kpi(shared):
    con, paths = shared
    page = _text(paths["html"].read_text(encoding="utf-8"))
    assert "7021.2万" not in page  # February's cumulative figure
    assert "1234.6万" not in page  # a district's figure
    assert "93.8%" not in page and "96.1%" not in page
    data = collect(con, "x")
    assert data.figures["case_online_rate"].grain == "month"  # the month wins over the quarter
    assert (
        data.figures["egress_bandwidth_gbps"].value == 20
        and data.figures["egress_bandwidth_gbps"].previous == 4.5
    )


def test_reference_figures_are_checked_in_the_internal_edition(shared):
    _, paths = shared
    page = paths["internal_html"].read_text(encoding="utf-8")
    assert "⚠" not in page  # every sample figure is the published one
    assert page.count("✓ 一致") == 26  # the KPIs with a published figure
    assert "✓ 一致" not in paths["html"].read_text(encoding="utf-8")


def test_a_figure_that_differs_from_the_published_one_is_marked(con, tmp_path):
    con.execute("UPDATE marts.kpi_values SET value = 3990 WHERE kpi_code = 'extranet_nodes'")
    con.execute(
        "UPDATE marts.kpi_values SET value = 70853000 WHERE kpi_code = 'case_volume_cumulative' "
        "AND scope = 'city' AND period_start = DATE '2023-03-01'"
    )
    paths = write_bulletin(con, tmp_path / "out", "run-x")
    page = _text(paths["internal_html"].read_text(encoding="utf-8"))
    assert "全市政务外网接入点位已达3990个⚠公布数为3991个" in page
    assert "累计办件量7085.3万件⚠公布数为7085.4万件" in page
    assert page.count("⚠ 不一致") == 2
    md = paths["internal_md"].read_text(encoding="utf-8")
    assert "**3990个**" in md and "⚠公布数为3991个" in md
    public = _text(paths["html"].read_text(encoding="utf-8"))
    assert "全市政务外网接入点位已达3990个" in public and "⚠" not in public


def test_missing_kpi_is_absent_never_zero(con, tmp_path):
    con.execute(
        "DELETE FROM marts.kpi_values WHERE kpi_code IN ('satisfaction_rate', 'extranet_nodes')"
    )
    paths = write_bulletin(con, tmp_path / "out", "run-x")
    page = _text(paths["html"].read_text(encoding="utf-8"))
    assert "好评率为" not in page and "接入点位已达" not in page
    assert "以下指标本期无数据" in page and "好评率" in page.split("以下指标本期无数据")[1]
    assert "实现四级全覆盖" in page  # the rest of the sentence still stands


def test_self_contained_html_with_inline_svg(shared):
    _, paths = shared
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count("<svg") == 3 and page.count("</svg>") == 3
    assert "http://" not in page and "https://" not in page
    for forbidden in (
        "<script",
        "<link",
        "@import",
        "url(",
        " src=",
        "<img",
        "<iframe",
        "@font-face",
    ):
        assert forbidden not in page.lower(), forbidden
    assert '<meta charset="utf-8">' in page


def test_charts_hold_the_series(shared):
    _, paths = shared
    page = paths["html"].read_text(encoding="utf-8")
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    cases, reviews, channels = svgs
    assert "办件量（明细）" in cases and "办件量（月报）" in cases
    assert cases.count("<rect") > 40  # a bar per month and source
    assert (
        "有效评价（明细）" in reviews and "有效评价（月报）" in reviews and "<polyline" in reviews
    )
    # channel mix of March 2023 (60 cases in the sample month, April's cases not counted)
    for text in (
        "网上办理",
        "30件（50%）",
        "移动端",
        "15件（25%）",
        "窗口办理",
        "10件（16.7%）",
        "自助终端",
        "5件（8.3%）",
    ):
        assert text in channels, text


def test_quality_summary_in_the_internal_edition(shared):
    _, paths = shared
    page = _text(paths["internal_html"].read_text(encoding="utf-8"))
    assert "共14个" in page  # April's batch is after the bulletin month
    for text in (
        "已载入8个",
        "部分载入3个",
        "已被取代1个",
        "重复报送1个",
        "失败1个",
        "读取行数25712行",
        "载入行数25706行",
        "隔离行数6行",
        "跳过的合计行4行",
        "受理时间早于申请时间，请核对这两个时间",
        "其中网上办件量大于办件量，请核对两列数字",
        "文件无法读取：不是有效的CSV或Excel文件",
        "共4项校验，2项未通过",
        "reconcile_with_case_volume_monthly",
    ):
        assert text in page, text
    assert (
        "expect_column_values_to_be_unique" not in page
    )  # passing checks are not listed one by one


def test_every_figure_cites_its_batches(shared):
    con, paths = shared
    page = paths["internal_html"].read_text(encoding="utf-8")
    data = collect(con, "x")
    for code, fig in data.figures.items():
        assert fig.sources, code
    by_batch = {s.batch_id: s for s in data.sources}
    cited = {b for f in data.figures.values() for b in f.batch_ids}
    assert set(by_batch) == cited
    for source in by_batch.values():
        assert f'id="src-{source.number}"' in page
        assert html.escape(source.source_path) in page
    # 累计办件量 cites the monthly reports and the case files it adds up
    numbers = {by_batch[b].number for b in ("b-cvm-1", "b-cvm-2", "b-cases-1", "b-cases-2")}
    assert data.figures["case_volume_cumulative"].sources == sorted(numbers)
    md = paths["internal_md"].read_text(encoding="utf-8")
    assert "`service_cases/办件明细_2023-03.csv`" in md and "`indicators/指标报送_2023Q1.csv`" in md


def test_text_from_data_is_escaped(con, tmp_path):
    con.execute(
        "UPDATE quality.load_batches SET source_path = 'org_units/<script>alert(1)</script>.xlsx' "
        "WHERE batch_id = 'b-org-1'"
    )
    con.execute(
        "UPDATE quality.quarantine SET message = '<b onmouseover=x>编码</b> | *粗*' "
        "WHERE source_row = 17"
    )
    con.execute(
        "UPDATE marts.kpi_values SET name_zh = '接入<i>部门</i>数' "
        "WHERE kpi_code = 'departments_onboarded'"
    )
    paths = write_bulletin(con, tmp_path / "out", "run-<x>")
    page = paths["internal_html"].read_text(encoding="utf-8")
    assert "<script" not in page and "<b onmouseover" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b onmouseover=x&gt;" in page
    assert "run-&lt;x&gt;" in page
    assert "<i>" not in paths["html"].read_text(encoding="utf-8")
    md = paths["internal_md"].read_text(encoding="utf-8")
    outside_code = re.sub(r"``.*?``|`[^`]*`", "", md)  # a code span shows its text literally
    assert (
        "<script" not in outside_code
        and "<b onmouseover" not in outside_code
        and "<i>" not in outside_code
    )
    assert "`org_units/<script>alert(1)</script>.xlsx`" in md
    assert "\\| \\*粗\\*" in md  # a pipe in a table cell and emphasis marks are escaped
    _md_tables(md)


def test_markdown_tables_and_figures(shared):
    _, paths = shared
    md = paths["md"].read_text(encoding="utf-8")
    assert "| 累计办件量 | 7085.4万件 | 2023年3月 |" in md
    internal = paths["internal_md"].read_text(encoding="utf-8")
    assert "| 累计办件量 `case_volume_cumulative` | 7085.4万件 | 2023年3月 |" in internal
    assert "| 2023年3月 | 310.2万 |" in md
    assert "| 网上办理 | 30件 | 50% |" in md
    assert len(_md_tables(md)) == 3  # volumes, channels, KPIs
    assert len(_md_tables(internal)) == 6  # ... and quarantine, files not fully loaded, checks


def test_period_labels():
    from datetime import date

    assert period_label("month", date(2023, 3, 1)) == "2023年3月"
    assert period_label("quarter", date(2023, 4, 1)) == "2023年第二季度"
    assert period_label("year", date(2021, 1, 1)) == "2021年"
    assert period_label("snapshot", date(2023, 3, 31)) == "2023年3月31日"
    assert period_label("day", date(2022, 4, 28)) == "2022年4月28日"


def test_empty_warehouse_still_writes_a_bulletin(tmp_path):
    import duckdb

    con = duckdb.connect()
    from warehouse.ddl import create_all

    create_all(con)
    con.execute(sample_warehouse.MARTS_DDL)
    paths = write_bulletin(con, tmp_path / "out", "run-x")
    page = paths["html"].read_text(encoding="utf-8")
    assert "暂无数据" in page and "<svg" in page


# --------------------------------------------------------------------------------------------
# Rendering in a real browser


def _chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _png_size_and_pixels(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def _cjk_font_installed() -> bool | None:
    if not shutil.which("fc-list"):
        return None
    out = subprocess.run(
        ["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=60
    ).stdout
    return bool(out.strip())


def test_renders_in_headless_chromium(shared, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary found (apt-get install -y chromium fonts-noto-cjk)")
    assert _cjk_font_installed() is not False, (
        "no Chinese font installed: the bulletin would render as boxes "
        "(apt-get install -y fonts-noto-cjk)"
    )
    _, paths = shared
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,2400",
            paths["html"].resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert shot.exists(), f"chromium wrote no screenshot: {result.stderr[-2000:]}"
    width, height, pixels = _png_size_and_pixels(shot)
    assert (width, height) == (1280, 2400)
    assert shot.stat().st_size > 50_000  # a blank page is a few kilobytes
    assert len(set(pixels)) > 64  # text, charts and colours, not a flat page


# --------------------------------------------------------------------------------------------
# One bulletin per month, editions, charts that do not mislead


def test_a_months_bulletin_states_only_figures_of_that_month_or_before(con, tmp_path):
    from datetime import date

    data = collect(con, "x", date(2023, 2, 1))
    assert data.period_label == "2023年2月"
    assert data.figures["case_volume_cumulative"].value == 70_212_345  # February's, not March's
    assert data.figures["case_online_rate"].period_start == date(2023, 2, 1)
    assert "records_aggregated" not in data.figures  # 2023Q1 ends after February
    assert "extranet_nodes" not in data.figures  # the register describes 2023-03-31
    assert ("extranet_nodes", "政务外网接入点") in data.missing
    paths = write_bulletin(con, tmp_path / "out", "run-x", date(2023, 2, 1))
    for key in ("html", "internal_html"):
        page = _text(paths[key].read_text(encoding="utf-8"))
        assert "截至2023年2月，一体化政务服务平台累计办件量7021.2万件" in page
        stated = {(int(y), int(m)) for y, m in re.findall(r"(\d{4})年(\d{1,2})月", page)}
        assert max(stated) == (2023, 2)


def test_month_on_month_and_year_on_year_only_within_one_source(con, tmp_path):
    from datetime import date

    # hand-computed from sample_warehouse: records months 2022-04.., monthly reports ..2022-06
    march = _text(write_bulletin(con, tmp_path / "m", "x")["html"].read_text(encoding="utf-8"))
    assert (
        "2023年3月全市办件量310.2万件（明细口径），环比增长11.2%，"
        "同比：上年同月为月报数据，口径不同，不作比较。" in march
    )  # 3,102,000 / 2,790,000
    june21 = _text(write_bulletin(con, tmp_path / "j", "x", date(2021, 6, 1))["html"].read_text(encoding="utf-8"))
    assert "2021年6月全市办件量227.2万件（月报口径），环比增长0.8%，同比增长10.5%。" in june21
    first = _text(write_bulletin(con, tmp_path / "f", "x", date(2019, 1, 1))["html"].read_text(encoding="utf-8"))
    assert "环比：上月无数据，同比：上年同月无数据。" in first


def _panels(svg: str) -> int:
    return svg.count('<g class="panel">')


def test_sources_of_very_different_scale_get_their_own_panels(con, tmp_path):
    page = write_bulletin(con, tmp_path / "same", "x")["html"].read_text(encoding="utf-8")
    cases, reviews, _ = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    assert _panels(cases) == 1  # monthly reports and records in the same range: one axis
    assert _panels(reviews) == 2  # bad reviews (hundreds) would sit on zero next to 1.3 million
    assert "差评（合计）最大值约为有效评价（明细）的1/" in _text(page)

    # a small record-level sample next to monthly reports of millions (the bundled sample's case)
    con.execute("UPDATE marts.service_volume_monthly SET cases = cases // 1000 WHERE source = 'records'")
    page = write_bulletin(con, tmp_path / "small", "x")["html"].read_text(encoding="utf-8")
    cases = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)[0]
    assert _panels(cases) == 2 and cases.count(">件</text>") == 2  # each panel its own axis
    caption = _text(page).split("图1")[1].split("图2")[0]
    assert "办件量（明细）最大值约为办件量（月报）的" in caption and "分图绘制，各图刻度不同" in caption


def test_all_zero_series_gets_its_own_panel():
    from datetime import date

    from warehouse.bulletin.charts import Series, panel_chart

    months = [date(2023, m, 1) for m in (1, 2, 3)]
    series = [Series("有效评价", "#000", "line", [900, 950, 990]), Series("差评", "#b00", "dash", [0, 0, 0])]
    svg, note = panel_chart("t", "条", months, series)
    assert _panels(svg) == 2 and "差评各月均为0" in note


def test_public_edition_has_no_run_batch_or_file_detail(shared):
    con, paths = shared
    data = collect(con, "x")
    public = paths["html"].read_text(encoding="utf-8") + paths["md"].read_text(encoding="utf-8")
    internal = paths["internal_html"].read_text(encoding="utf-8") + paths["internal_md"].read_text(encoding="utf-8")
    for detail in ["run-2023-04-02", *(s.batch_id for s in data.sources), ".xlsx", ".csv", ".json", "隔离"]:
        assert detail not in public, detail
        assert detail in internal, detail
    for document in (public, internal):
        assert "（北京时间）" in document
    text = _text(paths["html"].read_text(encoding="utf-8"))
    # the plain-language note on sources: who sent what, for which period
    assert "办件量月报：各实施部门报送（2023年3月）" in text
    assert "指标报送表：沈阳市大数据管理局报送（2021年至2023年第一季度）" in text


def test_file_names_in_markdown_render_inert(con, tmp_path):
    """A file name with backticks or an ``<img onerror=…>`` shows as text in a Markdown viewer."""
    from markdown_it import MarkdownIt

    evil = "org_units/``a`<img src=x onerror=alert(1)>|`b.xlsx"
    con.execute("UPDATE quality.load_batches SET source_path = ? WHERE batch_id = 'b-org-1'", [evil])
    con.execute("UPDATE marts.kpi_values SET name_zh = '接入<img src=x onerror=alert(2)>`部门`数' "
                "WHERE kpi_code = 'departments_onboarded'")
    paths = write_bulletin(con, tmp_path / "out", "run-x")
    for key in ("md", "internal_md"):
        md = paths[key].read_text(encoding="utf-8")
        rendered = MarkdownIt("commonmark").enable("table").render(md)
        assert "<img" not in rendered, key
        _md_tables(md)
    rendered = MarkdownIt("commonmark").enable("table").render(paths["internal_md"].read_text(encoding="utf-8"))
    assert html.escape("``a`<img src=x onerror=alert(1)>|`b.xlsx", quote=False) in rendered
