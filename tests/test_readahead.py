"""read_ahead: the loader's next chunk computed on a thread, in order, errors where they happened."""

from __future__ import annotations

import threading
import time

import pytest

from assets.ingest.readahead import read_ahead


def test_yields_every_item_in_order_from_another_thread() -> None:
    threads = set()

    def items():
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    assert list(read_ahead(items(), depth=3)) == list(range(50))
    assert threads == {"govmetrics-read-ahead"}


def test_an_error_is_raised_at_the_item_where_it_happened() -> None:
    def items():
        yield 1
        yield 2
        raise ValueError("chunk 3 is broken")

    got = []
    with pytest.raises(ValueError, match="chunk 3 is broken"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_the_thread_and_closes_the_source() -> None:
    produced, closed = [], threading.Event()

    def items():
        try:
            for i in range(1_000):
                produced.append(i)
                yield i
        finally:
            closed.set()  # a reader removes its transcoded copy here

    reader = read_ahead(items(), depth=1)
    assert next(reader) == 0
    time.sleep(0.2)  # the thread runs ahead as far as the hand-off allows, and waits there
    reader.close()
    assert closed.is_set()
    assert len(produced) <= 3  # the item handed over, the one waiting, the one being made
    assert not any(t.name == "govmetrics-read-ahead" for t in threading.enumerate())
