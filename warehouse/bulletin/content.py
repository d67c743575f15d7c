"""What each edition shows, as plain values both renderers use (HTML escapes them in Jinja,
Markdown escapes them in :mod:`warehouse.bulletin.markdown`): tables as rows of cells, source
lists, times in Beijing time.

Public edition: figures, sentences, charts, the KPI table and a plain-language note on sources
(who sent the data, for which period). Internal edition, for the bureau's data team, adds what
a citizen has no use for and a data engineer needs: the check against the published figures,
the data-quality summary with quarantine detail, batch ids, file paths and run ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from warehouse.bulletin.collect import (
    STATUS_ORDER,
    STATUS_ZH,
    BulletinData,
    Figure,
    Source,
    dataset_zh,
    period_label,
)
from warehouse.formatting import format_magnitude

BEIJING = ZoneInfo("Asia/Shanghai")
SEVERITY_ZH = {"error": "阻断", "warn": "提示"}
EDITIONS = ("public", "internal")


@dataclass
class Cell:
    """A table cell that is more than text: right-aligned number, status colour, or code."""

    text: str
    css: str = ""
    code: bool = False  # shown as code (file names, rule names)
    sub: str = ""  # a code shown under the text (a KPI's code in the internal edition)


def num(value: object) -> Cell:
    return Cell("" if value is None else str(value), "num")


def beijing(moment: datetime | None = None) -> str:
    """``2023-04-02 14:00`` in Beijing time; a naive moment is the machine's local time (as written
    by the pipeline's ``datetime.now()``)."""
    moment = moment or datetime.now().astimezone()
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``'1–3, 5'``."""
    out, i = [], 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(str(numbers[i]) if i == j else f"{numbers[i]}–{numbers[j]}")
        i = j + 1
    return ", ".join(out)


def refs(figure: Figure, edition: str) -> list[int]:
    """The source numbers a figure cites: batches (internal) or datasets (public)."""
    return figure.sources if edition == "internal" else figure.datasets


def shared_refs(figures: list[Figure], edition: str) -> list[int]:
    return sorted({n for f in figures for n in refs(f, edition)})


def ratio(fig: Figure) -> str:
    if fig.numerator is None or fig.denominator is None:
        return ""
    return f"{format_magnitude(fig.numerator)} / {format_magnitude(fig.denominator)}"


def check_mark(fig: Figure) -> Cell:
    if fig.reference is None:
        return Cell("")
    return Cell("⚠ 不一致", "bad") if fig.differs else Cell("✓ 一致", "ok")


def kpi_table(data: BulletinData, edition: str) -> tuple[list[str], str, list[list]]:
    """(headers, alignment per column ``l``/``r``, rows)."""
    internal = edition == "internal"
    headers = ["指标", "数值", "统计期", "分子 / 分母"] + (["公布数", "核对"] if internal else []) + ["来源"]
    align = "lrlr" + ("rl" if internal else "") + "l"
    rows = []
    for code in data.order:
        fig = data.figures.get(code)
        if fig is None:
            continue
        name = Cell(fig.name_zh, sub=code if internal else "")
        row = [name, Cell(fig.text, "num"), fig.period_label, num(ratio(fig))]
        if internal:
            row += [num(fig.reference_text or ""), check_mark(fig)]
        rows.append(row + [ranges(refs(fig, edition))])
    return headers, align, rows


def quality_cards(data: BulletinData) -> list[list[tuple[str, str]]]:
    q, t = data.quality, data.quality["totals"]
    statuses = sorted(q["by_status"], key=lambda s: STATUS_ORDER.index(s) if s in STATUS_ORDER else 99)
    return [
        [("文件批次", f"{q['batches']}个")] + [(STATUS_ZH.get(s, s), f"{q['by_status'][s]}个") for s in statuses],
        [
            ("读取行数", format_magnitude(t["rows_read"], "行")),
            ("载入行数", format_magnitude(t["rows_loaded"], "行")),
            ("隔离行数", format_magnitude(t["rows_quarantined"], "行")),
            ("跳过的合计行", format_magnitude(t["rows_skipped"], "行")),
        ],
    ]


def quarantine_rows(data: BulletinData) -> list[list]:
    return [
        [dataset_zh(r["dataset"]), Cell(r["rule"], code=True), r["message"], num(r["rows"]), num(r["files"])]
        for r in data.quality["rules"]
    ]


def problem_rows(data: BulletinData) -> list[list]:
    return [
        [
            Cell(p["source_path"], code=True),
            dataset_zh(p["dataset"]),
            Cell(STATUS_ZH.get(p["status"], p["status"]), "bad" if p["status"] == "failed" else "warn"),
            p["reason"],
        ]
        for p in data.quality["problems"]
    ]


def check_rows(data: BulletinData) -> list[list]:
    return [
        [
            dataset_zh(c["dataset"]),
            Cell(c["expectation"], code=True),
            Cell(SEVERITY_ZH.get(c["severity"], c["severity"]), "bad" if c["severity"] == "error" else "warn"),
            c["observed"],
            num(c["unexpected"]),
        ]
        for c in data.quality["checks_failed"]
    ]


def source_text(s: Source) -> tuple[str, str]:
    """(file, description) of a source batch (internal edition)."""
    if s.source_path is None:
        return s.batch_id, "未在载入记录中找到该批次"
    when = f"{beijing(s.received_at)}接收，" if s.received_at else ""
    return s.source_path, f"{dataset_zh(s.dataset)}，批次 {s.batch_id}，{when}{STATUS_ZH.get(s.status, s.status)}"


def volume_range(data: BulletinData) -> str:
    if not data.volume:
        return ""
    return f"{period_label('month', data.volume[0][0])}至{period_label('month', data.volume[-1][0])}"
