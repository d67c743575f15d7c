"""How far the loader is: a small hook the loader calls and a terminal (or anything) listens to.

The loader knows rows and stages; only the launcher knows how to draw them (``govmetrics
refresh`` draws one bar per file). This module sits between the two so that neither imports
the other, and so that the loader can be rewritten without touching the terminal: it calls
:func:`report` with ``(dataset, source, rows, bytes_done, bytes_total, stage)`` and nothing
else. With no listener (Dagster UI runs, tests) a report costs one list lookup.

``bytes_done`` may be ``None``: polars does not say how far into a CSV it is, so
:func:`report` estimates it from the rows staged and the average line length of the file's
first megabyte, capped below the file size until the stage is ``done``. For binary formats
(XLSX, JSON, Parquet) there is no estimate: the bar counts rows and fills when the file is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Stages of one file, in order: staging chunks, judging the batch (duplicates, merge), finished.
STAGES = ("read", "judge", "done")
TEXT_SUFFIXES = {".csv", ".txt"}
SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True)
class Progress:
    dataset: str
    source: str  # path relative to the landing folder
    rows: int
    bytes_done: int | None
    bytes_total: int | None
    stage: str  # one of STAGES, or a dataset-level stage such as "checks"


Listener = Callable[[Progress], None]
_listeners: list[Listener] = []


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call ``listener`` with every report made inside the block (in the reporting thread)."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def report(dataset: str, source: str, rows: int, bytes_done: int | None = None,
           bytes_total: int | None = None, stage: str = "read", path: Path | None = None) -> None:
    """Tell whoever listens how far ``source`` is; never raises into the loader."""
    if not _listeners:
        return
    if bytes_done is None and path is not None and bytes_total:
        per_row = _bytes_per_row(str(path), bytes_total)
        if per_row:
            bytes_done = bytes_total if stage == "done" else min(int(rows * per_row), bytes_total - 1)
    event = Progress(dataset, source, rows, bytes_done, bytes_total, stage)
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # noqa: BLE001 - a broken progress bar must never fail a load
            pass


@lru_cache(maxsize=256)
def _bytes_per_row(path: str, size: int) -> float | None:
    """Average bytes per line of a text file's first megabyte (None for binary formats)."""
    if Path(path).suffix.lower() not in TEXT_SUFFIXES:
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(SAMPLE_BYTES)
    except OSError:
        return None
    lines = head.count(b"\n")
    return len(head) / lines if lines else None
