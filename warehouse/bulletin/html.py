"""The HTML edition: ``templates/bulletin/page.html`` rendered by Jinja2 with autoescaping.

Every value from the data reaches the page through the template, so Jinja escapes it; the
only markup passed in is the SVG of the charts, whose text :mod:`warehouse.bulletin.charts`
escapes where it draws it. The page is self-contained (no script, font or image fetched), so it
opens from a file, a mail attachment or the print-to-PDF renderer alike.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from warehouse.bulletin import charts, content
from warehouse.bulletin.collect import BulletinData
from warehouse.bulletin.sentences import MISSING_NOTE, change_sentences, sentences

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "bulletin"
ORGANISATION = "沈阳市大数据管理局"
CITY = "沈阳市"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["ranges"] = content.ranges
    return env


def title(data: BulletinData) -> str:
    return f"{CITY}政务数据运行公报（截至{data.period_label}）"


def render_html(data: BulletinData, edition: str = "public", generated: str | None = None) -> str:
    """One edition of the bulletin as a self-contained HTML page."""
    case_chart, case_note = charts.chart_case_volume(data)
    review_chart, review_note = charts.chart_reviews(data)
    headers, _, kpi_rows = content.kpi_table(data, edition)
    return environment().get_template("page.html").render(
        edition=edition,
        title=title(data),
        organisation=ORGANISATION,
        period_label=data.period_label,
        generated=generated or content.beijing(),
        run_id=data.run_id,
        marts_run_ids=data.marts_run_ids,
        sections=sentences(data),
        refs=lambda f: content.refs(f, edition),
        shared_refs=lambda figs: content.shared_refs(figs, edition),
        missing=[n for _, n in data.missing],
        missing_note=MISSING_NOTE,
        changes=change_sentences(data),
        volume_range=content.volume_range(data),
        case_chart=Markup(case_chart),
        case_note=case_note,
        review_chart=Markup(review_chart),
        review_note=review_note,
        channel_chart=Markup(charts.chart_channels(data)),
        kpi_headers=headers,
        kpi_rows=kpi_rows,
        quality=data.quality,
        quality_cards=content.quality_cards(data),
        quarantine_rows=content.quarantine_rows(data),
        problem_rows=content.problem_rows(data),
        check_rows=content.check_rows(data),
        blocking=sum(1 for c in data.quality["checks_failed"] if c["severity"] == "error"),
        sources=[
            {"number": s.number, "path": p, "description": d}
            for s in data.sources
            for p, d in [content.source_text(s)]
        ],
        public_sources=data.public_sources,
    )
