"""Shared fixtures: the bundled sample run once per session through the real `refresh` job."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """One real `refresh` run on the bundled sample, then the latest month's `bulletin` run (as
    `govmetrics refresh` does), shared by every test that reads their outputs."""
    out = tmp_path_factory.mktemp("sample")
    env = {
        "GOVMETRICS_LANDING": str(SAMPLE / "landing"),
        "GOVMETRICS_WAREHOUSE": str(out / "wh" / "govmetrics.duckdb"),
        "GOVMETRICS_EXPORTS": str(out / "exports"),
        "GOVMETRICS_PII_KEY": "sample-test-key",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from pipelines.definitions import defs, run_bulletin_after

        with dg.DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def("refresh").execute_in_process(instance=instance, raise_on_error=False)
            bulletin = run_bulletin_after(result, instance)
        yield {"result": result, "bulletin": bulletin, "warehouse": Path(env["GOVMETRICS_WAREHOUSE"]),
               "exports": out / "exports"}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
