"""Compute the next items of an iterator on a thread while the consumer works on the current one.

The loader reads and normalises a chunk (polars, and DuckDB hashing on its own in-memory
connection) while the previous chunk is judged and staged (DuckDB, the writer connection). Both
release the GIL, so on two cores the two halves overlap: a 10M-row case file's load used 1.51
cores on average without this and 1.85 with it (83.6 s -> 78.8 s).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def read_ahead(items: Iterator[T], depth: int = 1, name: str = "govmetrics-read-ahead") -> Iterator[T]:
    """Yield what ``items`` yields, in order, computing up to ``depth`` items ahead on a thread.

    An exception ``items`` raises is raised here, at the item where it happened. When the consumer
    stops early (an exception, ``close()``), the thread stops after the item it is computing and
    ``items`` is closed on it (a reader's ``finally`` removes its temporary files), before this
    generator returns: memory stays bounded by ``depth + 2`` items.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((None, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item, exc = handoff.get()
            if exc is not None:
                raise exc
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join()
