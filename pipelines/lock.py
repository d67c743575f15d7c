"""One writer at a time: an exclusive ``flock`` on ``<warehouse>.lock`` next to the warehouse.

Two refreshes writing the same DuckDB working file fail on DuckDB's own lock with a traceback
(issue 8). The CLI takes this lock before it starts a run, and every run of the job takes it
when its ``Warehouse`` resource is set up (daemon-launched runs too), so the second writer
waits or says plainly who is writing. The kernel drops a ``flock`` when its process dies, so a
``kill -9`` never leaves the warehouse locked.

The file also says who holds the lock (run id, pid). A holder that ends, even by an exception,
empties it; a holder found in the file by the next process to get the lock died mid-run, and
``warehouse.recovery`` cleans up after it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Holder:
    run_id: str
    pid: int


class WriterBusy(Exception):
    """Another process holds the writer lock."""

    def __init__(self, holder: Holder | None):
        self.holder = holder
        run = holder.run_id if holder else "?"
        pid = holder.pid if holder else "?"
        super().__init__(f"另一个刷新正在运行（run {run}, pid {pid}）")


def lock_path(published: Path) -> Path:
    return published.with_name(published.name + ".lock")


# Locks this process holds, by path: a run started by the CLI finds its own lock already held.
_held: dict[Path, tuple[int, int]] = {}


def _read(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace").strip()
    try:
        data = json.loads(text) if text else None
        return Holder(str(data["run_id"]), int(data["pid"])) if data else None
    except (ValueError, KeyError, TypeError):
        return None


def _write(fd: int, holder: Holder | None) -> None:
    os.ftruncate(fd, 0)
    if holder:
        os.pwrite(fd, json.dumps({"run_id": holder.run_id, "pid": holder.pid}).encode(), 0)
    os.fsync(fd)


def current_holder(published: Path) -> Holder | None:
    """Who the lock file names (for messages); None when nobody wrote into it."""
    path = lock_path(published)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        return _read(fd)
    finally:
        os.close(fd)


@contextmanager
def writer_lock(published: Path, run_id: str, wait_seconds: float = 0) -> Iterator[Holder | None]:
    """Hold the writer lock; yields the holder a killed process left in the file, if any.

    ``wait_seconds`` 0 raises ``WriterBusy`` at once; otherwise polls until the lock is free.
    Re-entrant within a process (the CLI holds it while the run's resources take it again).
    """
    path = lock_path(published.resolve())
    if path in _held:
        fd, depth = _held[path]
        _held[path] = (fd, depth + 1)
        try:
            yield None
        finally:
            _held[path] = (fd, _held[path][1] - 1)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WriterBusy(_read(fd)) from None
                time.sleep(0.5)
        stale = _read(fd)
        _write(fd, Holder(run_id, os.getpid()))
        _held[path] = (fd, 1)
        try:
            yield stale
        finally:  # this process is alive to get here: nothing for the next run to recover
            _write(fd, None)
            del _held[path]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_held_here(published: Path) -> bool:
    return lock_path(published.resolve()) in _held
