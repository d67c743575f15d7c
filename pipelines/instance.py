"""The Dagster instance: SQLite under ``var/dagster_home`` on a laptop, PostgreSQL in production.

``GOVMETRICS_DAGSTER_PG_URL`` (``postgresql://user:password@host:port/db``) selects the
PostgreSQL run, event-log and schedule storage (``dagster-postgres``); unset, the instance
keeps Dagster's SQLite default under ``DAGSTER_HOME``. Either way ``dagster.yaml`` also holds
the writer policy: daemon-launched runs of the ``refresh`` job are queued one at a time
(tag ``govmetrics/writer``), and, on PostgreSQL, run monitoring marks a run whose process
died as failed. Any other run that writes the warehouse (an asset materialised by hand in
the UI) waits for the writer lock its ``Warehouse`` resource takes (``pipelines.lock``).

We only manage a ``dagster.yaml`` that is empty or carries our marker, so an operator's own
file is never overwritten. Creating the instance the first time migrates its SQLite storage;
two processes doing that at once left two alembic heads (issue 8), so ``open_instance``
serialises creation with a lock file in ``DAGSTER_HOME``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

PG_URL_VAR = "GOVMETRICS_DAGSTER_PG_URL"
MARKER = "# managed by govmetrics (pipelines/instance.py)"
WRITER_TAG = "govmetrics/writer"

# One writer at a time for runs the daemon launches; the CLI also takes pipelines.lock.
POLICY = f"""\
concurrency:
  runs:
    tag_concurrency_limits:
      - key: {WRITER_TAG}
        limit: 1
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 60
"""

POSTGRES = f"""\
storage:
  postgres:
    postgres_url:
      env: {PG_URL_VAR}
"""

# A government bureau's pipeline reports nothing to outside services.
NO_TELEMETRY = "telemetry:\n  enabled: false\n"

# The SQLite default keeps run monitoring off: a laptop rarely runs the daemon, and the CLI's
# own recovery (warehouse.recovery) marks a killed run as failed on the next refresh.
SQLITE_POLICY = POLICY.split("run_monitoring:")[0]


# What earlier versions wrote: still ours to replace.
LEGACY = ("", "telemetry:\n  enabled: false")


def instance_yaml(environ: dict[str, str] | None = None) -> str:
    """The ``dagster.yaml`` for this environment: PostgreSQL storage when the URL is set."""
    environ = os.environ if environ is None else environ
    if environ.get(PG_URL_VAR):
        return f"{MARKER}\n{POSTGRES}{POLICY}{NO_TELEMETRY}"
    return f"{MARKER}\n{SQLITE_POLICY}{NO_TELEMETRY}"


def with_driver(url: str) -> str:
    """``postgresql://`` → ``postgresql+psycopg2://``: SQLAlchemy 2.1 maps the bare scheme to psycopg 3,
    which dagster-postgres does not use (it ships psycopg2)."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare):]
    return url


def dagster_home(environ: dict[str, str] | None = None) -> Path:
    """``DAGSTER_HOME`` (default ``var/dagster_home``) with a ``dagster.yaml`` for this environment."""
    environ = os.environ if environ is None else environ
    if environ.get(PG_URL_VAR):
        environ[PG_URL_VAR] = with_driver(environ[PG_URL_VAR])
    home = Path(environ.setdefault("DAGSTER_HOME", str(Path("var/dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    current = config.read_text(encoding="utf-8") if config.exists() else ""
    wanted = instance_yaml(environ)
    if current != wanted and (current.strip() in LEGACY or current.startswith(MARKER)):
        tmp = config.with_name(f".dagster.yaml.{os.getpid()}.tmp")
        tmp.write_text(wanted, encoding="utf-8")
        os.replace(tmp, config)
    return home


@contextmanager
def open_instance() -> Iterator[dg.DagsterInstance]:
    """The instance under ``DAGSTER_HOME``, created (and migrated) by one process at a time."""
    home = dagster_home()
    with open(home / ".instance.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held only while the storage is created and migrated
        try:
            instance = dg.DagsterInstance.get()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    with instance:
        yield instance
