"""The PDF edition: the HTML page printed to an A4 PDF by headless Chromium.

Chromium lays the page out exactly as a reader's browser does (the same CSS, with
``@page { size: A4 }``) and embeds the subset of the CJK font it used (Noto Sans CJK from
Debian's ``fonts-noto-cjk``), so the PDF reads the same on a machine without Chinese fonts.
Chromium is a system package (``apt-get install chromium fonts-noto-cjk``; ``.ci/run``
installs it): without it the HTML and Markdown are still written and the PDF is reported as
skipped, so the pipeline runs on a bare developer machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    return None


def print_pdf(html_path: Path, pdf_path: Path, chromium: str) -> Path:
    """Print ``html_path`` to ``pdf_path`` (A4, no browser header or footer), atomically."""
    tmp = pdf_path.with_name(f".{pdf_path.name}.{os.getpid()}.tmp")
    with tempfile.TemporaryDirectory(prefix="govmetrics-chromium-") as profile:
        result = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-pdf-header-footer",
                f"--user-data-dir={profile}",
                f"--print-to-pdf={tmp}",
                html_path.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    if not tmp.exists() or tmp.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no PDF for {html_path.name}: {result.stderr[-1500:]}")
    tmp.replace(pdf_path)
    return pdf_path
