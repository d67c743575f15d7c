"""Resources: where the landing folder, warehouse and exports live, and the personal-data key.

Configured in ``pipelines.definitions`` with ``EnvVar`` (read when a run starts, never at
import). ``pipelines.cli`` and the Makefile fill the variables with the bundled-sample
defaults below when they are unset, so ``dagster dev`` and ``govmetrics refresh`` agree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from assets.ingest.limits import MB, Limits
from pipelines import preflight
from pipelines.lock import writer_lock
from warehouse.recovery import recover
from warehouse.snapshot import Snapshot, publish
from warehouse.writer import open_writer

# Defaults for a checkout: the bundled sample in, a git-ignored var/ folder out.
DEFAULTS = {
    "GOVMETRICS_LANDING": "data/sample/landing",
    "GOVMETRICS_WAREHOUSE": "var/warehouse/govmetrics.duckdb",
    "GOVMETRICS_EXPORTS": "var/exports",
    # Development only: a real deployment sets its own secret key. Hashes made with this key
    # are reproducible by anyone who reads this file; every run that uses it says so.
    "GOVMETRICS_PII_KEY": preflight.DEV_KEY,
}


def apply_defaults(environ: dict[str, str] | None = None) -> None:
    """Fill unset GOVMETRICS_* variables with the checkout defaults (called by launchers, not at import).

    With ``GOVMETRICS_ENV=production`` nothing is filled: a production run names its own folders
    and key, and preflight refuses what is missing.
    """
    environ = os.environ if environ is None else environ
    if preflight.is_production(environ):
        return
    for name, value in DEFAULTS.items():
        environ.setdefault(name, value)


class LandingFolder(dg.ConfigurableResource):
    """The folder departments deliver into: ``<path>/<dataset>/<any name>.<csv|xlsx|json|parquet>``."""

    path: str
    # What one landed file may make the loader read (assets.ingest.limits); a file past a limit
    # becomes a failed batch with a reason for the department. Per run: run config (README).
    max_file_mb: int = Limits.max_file_bytes // MB
    max_xlsx_uncompressed_mb: int = Limits.max_xlsx_uncompressed_bytes // MB
    max_sheet_rows: int = Limits.max_sheet_rows
    max_columns: int = Limits.max_columns
    max_field_chars: int = Limits.max_field_chars

    @property
    def root(self) -> Path:
        return Path(self.path).resolve()

    @property
    def limits(self) -> Limits:
        return Limits(self.max_file_mb * MB, self.max_xlsx_uncompressed_mb * MB, self.max_sheet_rows,
                      self.max_columns, self.max_field_chars)


class Warehouse(dg.ConfigurableResource):
    """The DuckDB warehouse analysts open (``path``); the pipeline writes a private working copy."""

    path: str
    # DuckDB spills to disk past this, so a file of any size loads in bounded memory.
    memory_limit: str = "1GB"
    # A run that finds another writer (pipelines.lock) waits this long for it, then fails.
    lock_wait_seconds: float = 3600

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[Warehouse]:
        """For a whole run: check the folder, hold the writer lock, clean up after a killed run.

        The CLI does the same before starting a run, so there this finds its own lock held.
        """
        preflight.check_warehouse(self.published)
        run_id = context.run.run_id if context.run else "?"
        with writer_lock(self.published, run_id, self.lock_wait_seconds) as dead:
            if dead is not None:
                done = recover(self.published, dead.run_id, context.instance)
                context.log.warning(done.summary())
            yield self

    @property
    def published(self) -> Path:
        return Path(self.path).resolve()

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_writer(self.published, self.memory_limit) as con:
            yield con

    def publish(self) -> Snapshot:
        return publish(self.published)


class ExportsFolder(dg.ConfigurableResource):
    """Where Parquet exports, the manifest and the bulletin are written."""

    path: str
    # Run folders kept under exports/runs/ (each run's Parquet files and manifest; see export_runs.py).
    keep_runs: int = 10

    @property
    def root(self) -> Path:
        return Path(self.path).resolve()


class PersonalDataKey(dg.ConfigurableResource):
    """Key of the HMAC that replaces ID numbers and phone numbers before anything is written."""

    key: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if not self.key.strip():  # an empty key fails each file's load, retried once fixed (assets.ingest.batch)
            return
        for warning in preflight.check_key(self.key, preflight.is_production()):
            context.log.warning(warning)

    @property
    def key_bytes(self) -> bytes:
        return self.key.encode("utf-8")

