"""What the CLI does around a refresh: preflight, the writer lock, the instance, recovery.

Every refusal is one line on stderr and a distinct exit status, never a traceback:
2 misconfiguration (preflight, key mismatch), 75 another refresh holds the lock (EX_TEMPFAIL:
try again later). Order matters: the cheap checks run before anything is created, the lock
before the Dagster instance is opened (so concurrent first starts never migrate it twice),
recovery before the key is compared (it replays a killed run's WAL).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from pipelines import preflight
from pipelines.instance import open_instance
from pipelines.lock import WriterBusy, writer_lock
from warehouse import keyring
from warehouse.recovery import recover

EXIT_CONFIG = 2
EXIT_BUSY = 75


@dataclass
class Guarded:
    instance: dg.DagsterInstance
    run_id: str
    warehouse: Path


def refuse(message: str, status: int) -> SystemExit:
    print(f"govmetrics: {message}", file=sys.stderr)
    return SystemExit(status)


@contextmanager
def guarded_refresh(wait_seconds: float = 0, rotate_key: bool = False) -> Iterator[Guarded]:
    """Yield (instance, run id) for one refresh while holding the writer lock; exit on refusal.

    ``rotate_key``: instead of refusing a key the warehouse was not built with, set the old
    warehouse aside (``warehouse.keyring.set_aside``) so the run reloads everything with it.
    """
    try:
        warnings = preflight.check_all()
    except preflight.PreflightError as exc:
        raise refuse(str(exc), EXIT_CONFIG) from None
    for warning in warnings:
        print(warning, file=sys.stderr)
    warehouse = Path(os.environ["GOVMETRICS_WAREHOUSE"]).resolve()
    run_id = str(uuid.uuid4())
    with ExitStack() as stack:
        try:
            dead = stack.enter_context(writer_lock(warehouse, run_id, wait_seconds))
        except WriterBusy as exc:
            raise refuse(str(exc), EXIT_BUSY) from None
        instance = stack.enter_context(open_instance())
        # With no dead holder this still removes temp files of writers that died unnoticed.
        done = recover(warehouse, dead.run_id if dead else None, instance)
        if dead is not None:
            print(done.summary(), file=sys.stderr)
        if rotate_key:
            for kept in keyring.set_aside(warehouse):
                print(f"旧仓库已保留为 {kept}（旧密钥的哈希值）；本次用新密钥从落地目录重新载入全部文件",
                      file=sys.stderr)
        try:
            keyring.check_key(warehouse, os.environ["GOVMETRICS_PII_KEY"].encode("utf-8"))
        except keyring.KeyMismatch as exc:
            raise refuse(str(exc), EXIT_CONFIG) from None
        yield Guarded(instance, run_id, warehouse)
