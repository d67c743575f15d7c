"""Where bulletins are written: one folder per month, and an index page over all of them.

``<root>/YYYY-MM/`` holds the month's public edition (``bulletin.html``, ``.md``, ``.pdf``) and
the internal one (``internal.html``, ``.md``, ``.pdf``); ``<root>/index.html`` lists the months.
A month's files depend only on the warehouse and the month, except the generation line (time,
and the run in the internal edition): re-running a month reproduces it. Each file is written
under a temporary name and renamed, so a reader never opens half a bulletin.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import duckdb

from warehouse.bulletin.collect import collect, period_label
from warehouse.bulletin.content import beijing
from warehouse.bulletin.html import environment, render_html
from warehouse.bulletin.markdown import render_markdown
from warehouse.bulletin.pdf import print_pdf

EDITIONS = {"public": "bulletin", "internal": "internal"}  # edition -> file stem
MONTH_FOLDER = re.compile(r"^\d{4}-\d{2}$")


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_bulletin(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    run_id: str,
    month: date | None = None,
    chromium: str | None = None,
) -> dict[str, Path]:
    """Write both editions of the bulletin for ``month`` (default: the latest) into ``out_dir``.

    Returns ``{"html", "md", "internal_html", "internal_md"}`` paths, plus ``"pdf"`` and
    ``"internal_pdf"`` when a Chromium binary is given.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = collect(con, run_id, month)
    generated = beijing()
    written: dict[str, Path] = {}
    for edition, stem in EDITIONS.items():
        prefix = "" if edition == "public" else f"{edition}_"
        page = _write(out_dir / f"{stem}.html", render_html(data, edition, generated))
        written[f"{prefix}html"] = page
        written[f"{prefix}md"] = _write(out_dir / f"{stem}.md", render_markdown(data, edition, generated))
        if chromium:
            written[f"{prefix}pdf"] = print_pdf(page, out_dir / f"{stem}.pdf", chromium)
    return written


def write_month(
    con: duckdb.DuckDBPyConnection, root: Path, month: date, run_id: str, chromium: str | None = None
) -> dict[str, Path]:
    """The bulletin for ``month`` under ``root/YYYY-MM/``, and the index page brought up to date."""
    written = write_bulletin(con, Path(root) / f"{month:%Y-%m}", run_id, month, chromium)
    written["index"] = write_index(root)
    return written


def write_index(root: Path) -> Path:
    """``root/index.html``: every month folder with a bulletin, newest first, with its files."""
    root = Path(root)
    months = []
    for folder in sorted((p for p in root.iterdir() if p.is_dir() and MONTH_FOLDER.match(p.name)), reverse=True):
        files = {f.name for f in folder.iterdir() if f.is_file()}
        if "bulletin.html" not in files:
            continue
        month = date.fromisoformat(f"{folder.name}-01")
        months.append({
            "folder": folder.name,
            "label": period_label("month", month),
            "files": [(n, f"{folder.name}/{n}") for n in (
                "bulletin.html", "bulletin.pdf", "bulletin.md", "internal.html", "internal.pdf", "internal.md"
            ) if n in files],
        })
    page = environment().get_template("index.html").render(months=months)
    return _write(root / "index.html", page)
