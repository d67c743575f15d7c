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

from warehouse.writer import open_writer, publish

# Defaults for a checkout: the bundled sample in, a git-ignored var/ folder out.
DEFAULTS = {
    "GOVMETRICS_LANDING": "data/sample/landing",
    "GOVMETRICS_WAREHOUSE": "var/warehouse/govmetrics.duckdb",
    "GOVMETRICS_EXPORTS": "var/exports",
    # Development only: a real deployment sets its own secret key. Hashes made with this key
    # are reproducible by anyone who reads this file.
    "GOVMETRICS_PII_KEY": "DEVELOPMENT-ONLY-KEY-not-for-production",
}


def apply_defaults(environ: dict[str, str] | None = None) -> None:
    """Fill unset GOVMETRICS_* variables with the checkout defaults (called by launchers, not at import)."""
    environ = os.environ if environ is None else environ
    for name, value in DEFAULTS.items():
        environ.setdefault(name, value)


def dagster_home() -> Path:
    """``DAGSTER_HOME`` (default ``var/dagster_home``): run history in SQLite, shared by the CLI and the UI."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path("var/dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or not config.read_text().strip():
        # The default instance (a file, so Dagster does not warn), without the usage-statistics
        # upload and its 16-line banner on the first run: a government pipeline sends nothing out.
        config.write_text("telemetry:\n  enabled: false\n")
    return home


class LandingFolder(dg.ConfigurableResource):
    """The folder departments deliver into: ``<path>/<dataset>/<any name>.<csv|xlsx|json|parquet>``."""

    path: str

    @property
    def root(self) -> Path:
        return Path(self.path).resolve()


class Warehouse(dg.ConfigurableResource):
    """The DuckDB warehouse analysts open (``path``); the pipeline writes a private working copy."""

    path: str
    # DuckDB spills to disk past this, so a file of any size loads in bounded memory.
    memory_limit: str = "1GB"

    @property
    def published(self) -> Path:
        return Path(self.path).resolve()

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_writer(self.published, self.memory_limit) as con:
            yield con

    def publish(self) -> Path:
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

    @property
    def key_bytes(self) -> bytes:
        return self.key.encode("utf-8")
