"""The Markdown edition: the same content as the HTML, for the bureau's document systems.

Every string that comes from the data or a file name is escaped: HTML is turned into entities
(a Markdown viewer renders ``&lt;img onerror=…&gt;`` as text, never as a tag), Markdown syntax
is backslash-escaped, a line break cannot start a new block, and code (file names, rule
names) goes into a code span whose fence is longer than any run of backticks inside it.
"""

from __future__ import annotations

import html
import re

from warehouse.bulletin import content
from warehouse.bulletin.collect import BulletinData
from warehouse.bulletin.html import ORGANISATION, title
from warehouse.bulletin.sentences import MISSING_NOTE, FigurePiece, Sentence, change_sentences, sentences
from warehouse.formatting import format_magnitude, format_percent

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#<>!])")


def escape(text: object) -> str:
    """Markdown-safe text: no raw HTML, markdown syntax escaped, on one line."""
    text = html.escape("" if text is None else str(text), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.splitlines()))


def code(text: object, in_table: bool = False) -> str:
    """A code span that shows ``text`` literally, whatever backticks it holds (in a table, a pipe is
    escaped too: GFM splits cells before it reads code spans)."""
    text = " ".join(("" if text is None else str(text)).splitlines())
    if in_table:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}" if longest else f"{fence}{text}{fence}"


def _cell(value: object) -> str:
    if isinstance(value, content.Cell):
        shown = code(value.text, True) if value.code else escape(value.text)
        return f"{shown} {code(value.sub, True)}" if value.sub else shown
    return escape(value)


def table(headers: list[str], align: str, rows: list[list]) -> list[str]:
    """Lines of a Markdown table; ``align`` is one letter per column, ``l`` or ``r``."""
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    return [
        "| " + " | ".join(headers) + " |",
        rule,
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows),
    ]


def _refs(numbers: list[int]) -> str:
    return f"<sup>\\[{escape(content.ranges(numbers))}\\]</sup>" if numbers else ""


def _figure(p: FigurePiece, edition: str) -> str:
    out = f"**{escape(p.text)}**"
    if p.previous:
        return out
    if p.when:
        out += f"（{escape(p.when)}）"
    if p.own_refs:
        out += _refs(content.refs(p.figure, edition))
    if edition == "internal" and p.figure.differs:
        out += f" ⚠公布数为{escape(p.figure.reference_text)}"
    return out


def _sentence(s: Sentence, edition: str) -> str:
    body = "".join(_figure(p, edition) if isinstance(p, FigurePiece) else escape(p) for p in s.pieces)
    if s.shared:
        body += _refs(content.shared_refs(s.shared, edition))
    return (f"截至{escape(s.label)}，" if s.label else "") + body + escape(s.end)


def _volume(data: BulletinData) -> list[str]:
    def cell(by: dict, source: str, measure: str) -> str:
        v = (by.get(source) or {}).get(measure)
        return "" if v is None else format_magnitude(v)

    rows = []
    for m, by in data.volume[-12:]:
        bad = [v["bad_reviews"] for v in by.values() if v.get("bad_reviews") is not None]
        rows.append(
            [
                f"{m.year}年{m.month}月",
                cell(by, "records", "cases"),
                cell(by, "monthly_report", "cases"),
                cell(by, "records", "reviews"),
                cell(by, "monthly_report", "reviews"),
                format_magnitude(sum(bad)) if bad else "",
            ]
        )
    headers = ["月份", "办件量（明细）", "办件量（月报）", "有效评价（明细）", "有效评价（月报）", "差评"]
    return table(headers, "lrrrrr", rows)


def _quality(data: BulletinData) -> list[str]:
    q = data.quality
    lines = [
        "## 本期数据质量",
        "",
        f"范围：数据统计期不晚于{escape(data.period_label)}的文件批次，以及登记表和无法读取的文件，"
        f"共{q['batches']}个。",
        "",
    ]
    for cards in content.quality_cards(data):
        lines.append("，".join(f"{escape(k)}{escape(v)}" for k, v in cards) + "。")
        lines.append("")
    for heading, headers, align, rows in (
        ("隔离行（按规则）", ["数据集", "规则", "说明", "行数", "涉及文件"], "lllrr", content.quarantine_rows(data)),
        ("未完全载入的文件", ["文件", "数据集", "状态", "原因"], "llll", content.problem_rows(data)),
    ):
        if rows:
            lines += [f"### {heading}", "", *table(headers, align, rows), ""]
    failed = q["checks_failed"]
    lines += ["### 数据校验", "", f"共{q['checks_run']}项校验，{len(failed)}项未通过。", ""]
    if failed:
        headers = ["数据集", "校验项", "级别", "观测值", "不符行数"]
        lines += [*table(headers, "llllr", content.check_rows(data)), ""]
    if data.marts_run_ids:
        lines += ["指标计算运行：" + "、".join(code(r) for r in data.marts_run_ids), ""]
    return lines


def _sources(data: BulletinData, edition: str) -> list[str]:
    lines = ["## 数据来源", ""]
    if edition == "internal":
        for s in data.sources:
            path, description = content.source_text(s)
            lines.append(f"{s.number}. {code(path)}　{escape(description)}")
    else:
        lines += ["本公报的数字来自下列部门报送的数据，括号内为所用数字的统计期。", ""]
        for s in data.public_sources:
            period = f"（{escape(s.period)}）" if s.period else ""
            lines.append(f"{s.number}. {escape(s.title_zh)}：{escape(s.provider)}报送{period}")
    if not (data.sources if edition == "internal" else data.public_sources):
        lines.append("无。")
    return lines + [""]


def render_markdown(data: BulletinData, edition: str = "public", generated: str | None = None) -> str:
    period = escape(data.period_label)
    meta = f"{ORGANISATION}　·　数据截至{period}　·　生成时间 {generated or content.beijing()}（北京时间）"
    if edition == "internal":
        meta += f"　·　生成运行 {code(data.run_id)}"
    lines = [f"# {escape(title(data))}", ""]
    if edition == "internal":
        lines += ["**内部版 · 供数据团队核查，不对外发布**", ""]
    lines += [meta, ""]
    for heading, stated in sentences(data):
        lines += [f"## {escape(heading)}", ""]
        for s in stated:
            lines += [_sentence(s, edition), ""]
    if data.missing:
        lines += [f"{MISSING_NOTE}：{escape('、'.join(n for _, n in data.missing))}。", ""]

    lines += ["## 月度走势", ""]
    lines += [x for line in change_sentences(data) for x in (escape(line), "")]
    if data.volume:
        lines += [*_volume(data), "", "（最近12个月；HTML版有完整图表。）", ""]
    else:
        lines += ["暂无月度办件数据。", ""]
    lines += [f"### {period}办件申办渠道构成", ""]
    if data.channels:
        total = sum(n for _, n in data.channels)
        rows = [[c, format_magnitude(n, "件"), format_percent(100 * n / total)] for c, n in data.channels]
        lines += table(["申办渠道", "办件量", "占比"], "lrr", rows)
    else:
        lines.append("本月暂无办件明细。")
    lines.append("")

    headers, align, rows = content.kpi_table(data, edition)
    lines += ["## 指标一览", "", *table(headers, align, rows), ""]
    if edition == "internal":
        lines += _quality(data)
    lines += _sources(data, edition)
    return "\n".join(lines)
