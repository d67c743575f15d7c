"""Run a dataset's expectation suite with Great Expectations (1.x) inside a DuckDB file.

``run_suite(database, "latest.service_cases", suite_name, specs)`` builds an ephemeral GX
context, a datasource on the DuckDB file, a table asset for the view, a whole-table batch
definition, an ``ExpectationSuite`` from the specs (``expectations.suites``) and a
``ValidationDefinition``, runs it, and returns one :class:`ExpectationOutcome` per spec.

``great_expectations`` is imported lazily (it takes ~2 s); importing this module is cheap.

Why a DuckDB-specific datasource (see :func:`_gx_types`): GX's stock SQL path reports every
expectation as failed on DuckDB without raising, and cannot read a view outside the default
schema. Both are fixed by a small ``SQLDatasource`` subclass with its own ``type`` whose
execution engine is a ``SqlAlchemyExecutionEngine`` subclass. An ``UnexpectedRowsExpectation``
spec runs as a subclass that counts and samples its rows with one query
(:func:`_unexpected_rows_type`).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import functools
import hashlib
import importlib.util
import logging
import math
import re
import sys
import threading
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from expectations.suites import ExpectationSpec

# How many unexpected values / rows an outcome carries as a sample (counts are always exact).
SAMPLE_SIZE = 20

_DATASOURCE_TYPE = "govmetrics_duckdb"
_RUN_LOCK = threading.Lock()


@dataclass
class ExpectationOutcome:
    name: str
    gx_type: str
    severity: str
    success: bool
    observed_value: object | None  # JSON-serialisable
    unexpected_count: int | None
    element_count: int | None
    details: dict = field(default_factory=dict)  # JSON-serialisable summary
    error: str | None = None  # GX raised / could not compute; success is then False


# --------------------------------------------------------------------------- GX plumbing


def _defer_scipy_stats() -> None:
    """Make ``scipy.stats`` load when it is first used, not when GX is imported.

    GX's metric registry imports every metric module, and three of them (the KS-test and
    KL-divergence expectations, which no suite here uses) run ``from scipy import stats`` at
    import time: 0.9 of the 2.9 s that importing GX takes, paid by every run. A module created
    by ``importlib.util.LazyLoader`` keeps those imports working and executes on its first
    attribute access, if there is one.
    """
    if "scipy.stats" in sys.modules:
        return
    spec = importlib.util.find_spec("scipy.stats")  # imports the package ``scipy`` itself (4 ms)
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["scipy.stats"] = module
    # ``from scipy import stats`` finds the attribute and binds it; without it, scipy's own
    # ``__getattr__`` imports the submodule, and the import system's look at its ``__spec__``
    # would load it at once
    sys.modules["scipy"].stats = module
    spec.loader.exec_module(module)


@functools.cache
def _gx_types() -> tuple[Any, Any]:
    """Import GX once and define the DuckDB datasource / execution engine (registered once).

    GX registers a fluent datasource class in its type registry when the class is defined,
    so the classes are built once per process, here, after the lazy import.
    """
    _defer_scipy_stats()
    import great_expectations  # noqa: F401  (the slow import)
    import sqlalchemy as sa
    from great_expectations.datasource.fluent import SQLDatasource
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine

    for name in ("great_expectations", "great_expectations.expectations.metrics"):
        logging.getLogger(name).setLevel(logging.ERROR)

    class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
        """``SqlAlchemyExecutionEngine`` that works on DuckDB through duckdb-engine.

        **Empty results** (GX issues #10738 and #11579: on DuckDB every expectation "fails"
        with an empty result and no exception). ``SqlAlchemyExecutionEngine.execute_query``
        runs ``with self.get_connection() as connection: result = connection.execute(q)``
        and returns the *un-fetched* result. Leaving the ``with`` block returns the
        connection to the pool, which rolls the DuckDB connection back, and DuckDB discards
        the pending result; the caller's ``.fetchall()`` then gives ``[]`` and
        ``resolve_metric_bundle`` fails with ``IndexError`` for every metric. GX avoids this
        only for the dialects in ``_PERSISTED_CONNECTION_DIALECTS`` (sqlite, mssql, ...),
        which duckdb is not. Here the connection that produced a result stays checked out
        until the next query (or ``close()``), so the result can be fetched. Unlike
        buffering (``result.freeze()``) this does not materialise a whole unexpected-rows
        query in memory when GX only wants ``fetchmany(200)``, and unlike one persisted
        connection a failing query cannot leave an aborted DuckDB transaction behind for
        the next expectation (each query still gets its own checkout and rollback).
        Every GX call site fetches right after ``execute_query``, which is what this relies
        on. ``execute_query_in_transaction`` is left alone: GX uses it only to create temp
        tables (SQL Server, or ``create_temp_table=True``, which we do not set).

        **Views outside ``main``**: duckdb-engine 0.17's inspector fails on SQLAlchemy 2.1
        (its PostgreSQL reflection queries ``pg_catalog.pg_collation``, which DuckDB lacks),
        so GX falls back to ``SELECT * FROM <table> LIMIT 1`` *without the schema* to learn
        the columns. ``search_path`` (set per DBAPI connection) makes that name resolve to
        the asset's schema (``latest``).
        """

        def __init__(self, *args: Any, search_path: str | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pending_connection = None
            if search_path:
                statement = "SET search_path = '" + search_path.replace("'", "''") + "'"

                def _on_connect(dbapi_connection: Any, _record: Any) -> None:
                    dbapi_connection.execute(statement)

                sa.event.listen(self.engine, "connect", _on_connect)

        def _release_pending(self) -> None:
            connection, self._pending_connection = self._pending_connection, None
            if connection is not None:
                connection.close()

        def execute_query(self, query: Any) -> Any:
            self._release_pending()
            connection = self.engine.connect()
            # GX's own helper (rolls back and retries after a PendingRollbackError).
            execute = getattr(self, "_execute_query_with_recovery", None)
            try:
                result = execute(connection, query) if execute else connection.execute(query)
            except BaseException:
                connection.close()
                raise
            self._pending_connection = connection
            return result

        def close(self) -> None:
            self._release_pending()
            super().close()

    from typing import Literal, Optional

    class GovmetricsDuckDBDatasource(SQLDatasource):
        """A DuckDB file; ``search_path`` is handed to :class:`DuckDBExecutionEngine`."""

        type: Literal["govmetrics_duckdb"] = "govmetrics_duckdb"  # type: ignore[assignment]
        search_path: Optional[str] = None  # noqa: UP045 (pydantic v1 model)

        @property
        def execution_engine_type(self) -> type[SqlAlchemyExecutionEngine]:
            return DuckDBExecutionEngine

        def dispose(self) -> None:
            """Close every connection GX opened on the file, so it is free afterwards."""
            if self._execution_engine is not None:
                self._execution_engine.close()
            if self._engine is not None:
                self._engine.dispose()

    # This module uses `from __future__ import annotations`, so pydantic (v1, as GX uses it)
    # sees the field annotations as strings naming locals of this function.
    GovmetricsDuckDBDatasource.update_forward_refs(Literal=Literal, Optional=Optional)
    return GovmetricsDuckDBDatasource, DuckDBExecutionEngine


@functools.cache
def _unexpected_rows_type() -> type:
    """``UnexpectedRowsExpectation`` that counts and samples its rows with one query.

    GX's own computes two metrics, each running the query: the rows (fetching at most
    ``MAX_RESULT_RECORDS``, 200, as the sample) and ``SELECT COUNT(*)`` of them. A query that
    finds many rows therefore ran twice, and an expensive one is expensive both times: the
    reference check of 46 million reviews against 76 million cases (10 s + 11 s), of the 1.9
    million reviews still awaiting their case in every month run (1.9 s + 1.5 s). Here one
    metric, ``govmetrics_unexpected_rows.count_and_sample``, runs
    ``SELECT count(*), min_by(t, t, 200) FROM (<query>) AS t`` (``t`` the row as a struct, by an
    alias no column has): the exact count and the 200 least rows (ordered by their columns, the
    key first; a bounded heap, not a sort) in one pass (12.9 s and 1.6 s for the two checks
    above). Same arguments and result shape as GX's (``observed_value`` is the exact row count,
    the sample a list of row dicts); the class is registered with GX under its own name,
    ``govmetrics_unexpected_rows``.
    """
    _gx_types()
    import sqlalchemy as sa
    from great_expectations.constants import MAX_RESULT_RECORDS
    from great_expectations.core.metric_domain_types import MetricDomainTypes
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine
    from great_expectations.expectations import UnexpectedRowsExpectation
    from great_expectations.expectations.metrics.metric_provider import metric_value
    from great_expectations.expectations.metrics.query_metric_provider import QueryMetricProvider

    metric = "govmetrics_unexpected_rows.count_and_sample"
    alias = "govmetrics_unexpected_row"  # the row as a struct; a column of this name would win

    class UnexpectedRowsCountAndSample(QueryMetricProvider):
        metric_name = metric
        value_keys = ("unexpected_rows_query",)
        query_param_name = "unexpected_rows_query"

        @metric_value(engine=SqlAlchemyExecutionEngine)
        def _sqlalchemy(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics,
                        runtime_configuration) -> dict:
            batch, _, _ = execution_engine.get_compute_domain(metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE)
            query = cls._get_substituted_batch_subquery_from_query_and_batch_selectable(
                query=cls._get_query_from_metric_value_kwargs(metric_value_kwargs), batch_selectable=batch,
                execution_engine=execution_engine)
            sql = f"SELECT count(*), min_by({alias}, {alias}, {MAX_RESULT_RECORDS}) FROM ({query}) AS {alias}"
            count, rows = execution_engine.execute_query(sa.text(sql)).fetchone()
            return {"count": count, "rows": [dict(row) for row in rows or []]}

    class GovmetricsUnexpectedRows(UnexpectedRowsExpectation):
        metric_dependencies = (metric,)

        def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
            found = metrics[metric]
            return super()._validate({"unexpected_rows_query.table": found["rows"],
                                      "unexpected_rows_query.row_count": found["count"]},
                                     runtime_configuration, execution_engine)

    return GovmetricsUnexpectedRows


def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _get_or_create_datasource(context: Any, name: str, url: str, search_path: str) -> Any:
    try:
        return context.data_sources.get(name)
    except KeyError:
        add = getattr(context.data_sources, f"add_{_DATASOURCE_TYPE}")
        return add(name=name, connection_string=url, search_path=search_path)


def _get_or_create_asset(datasource: Any, name: str, table: str, schema: str) -> Any:
    try:
        return datasource.get_asset(name)
    except LookupError:
        return datasource.add_table_asset(name=name, table_name=table, schema_name=schema)


def _get_or_create_batch_definition(asset: Any, name: str) -> Any:
    try:
        return asset.get_batch_definition(name)
    except KeyError:
        return asset.add_batch_definition_whole_table(name)


# --------------------------------------------------------------------------- results


def _json_safe(value: Any) -> Any:
    """Plain JSON types only (dates as ISO text, decimals as numbers, NaN as None)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    if hasattr(value, "to_json_dict"):
        return _json_safe(value.to_json_dict())
    return str(value)


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _exception_message(exception_info: Any) -> str | None:
    """GX puts either one {raised_exception, exception_message} or one per failed metric."""
    if not exception_info:
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(
        exception_info.values()
    )
    messages = []
    for info in infos:
        info = info if isinstance(info, dict) else getattr(info, "to_json_dict", dict)()
        if info.get("raised_exception") or info.get("exception_message"):
            messages.append(str(info.get("exception_message") or "unknown error"))
    return "; ".join(dict.fromkeys(messages)) or None


def _outcome(spec: ExpectationSpec, result: Any) -> ExpectationOutcome:
    res = dict(result.result or {})
    error = _exception_message(result.exception_info)
    details: dict[str, Any] = {}
    for key in ("unexpected_percent", "missing_count", "missing_percent"):
        if res.get(key) is not None:
            details[key] = res[key]
    if "partial_unexpected_list" in res:
        details["partial_unexpected_list"] = res["partial_unexpected_list"][:SAMPLE_SIZE]
    if "partial_unexpected_counts" in res:
        details["partial_unexpected_counts"] = res["partial_unexpected_counts"][:SAMPLE_SIZE]
    rows = (res.get("details") or {}).get("unexpected_rows")
    if rows is not None:
        details["unexpected_rows_sample"] = list(rows)[:SAMPLE_SIZE]

    observed = res.get("observed_value")
    unexpected = _int_or_none(res.get("unexpected_count"))
    element = _int_or_none(res.get("element_count"))
    if spec.gx_type == "UnexpectedRowsExpectation":
        unexpected = _int_or_none(observed)  # observed_value is the exact row count
    success = bool(result.success)
    if error is None and not success and not res:
        # The signature of GX issues #10738/#11579: "failed" with nothing computed.
        error = "Great Expectations returned no result for this expectation"
    if error is not None:
        success = False
    return ExpectationOutcome(
        name=spec.name,
        gx_type=spec.gx_type,
        severity=spec.severity,
        success=success,
        observed_value=_json_safe(observed),
        unexpected_count=unexpected,
        element_count=element,
        details=_json_safe(details),
        error=error,
    )


def _failed(spec: ExpectationSpec, error: str) -> ExpectationOutcome:
    return ExpectationOutcome(spec.name, spec.gx_type, spec.severity, False, None, None, None,
                              {}, error)


# --------------------------------------------------------------------------- entry point


def run_suite(
    database: str | Path, table: str, suite_name: str, specs: list[ExpectationSpec],
    settings: dict[str, str] | None = None,
) -> list[ExpectationOutcome]:
    """Run ``specs`` against ``table`` (e.g. ``'latest.service_cases'``) in the DuckDB file.

    Returns one outcome per spec, in the same order. A spec GX cannot build or compute comes
    back with ``success=False`` and ``error`` set; so do all of them if the table cannot be
    read. Unexpected counts are exact (GX counts in SQL; only the samples are capped).
    The caller must have closed its own connection to ``database`` (DuckDB refuses a second
    in-process connection with a different configuration); every connection opened here is
    closed before returning, so the file is free again afterwards. ``settings`` are DuckDB
    settings for GX's connections (the writer's memory limit and temp directory: a suite over
    70 million rows must spill, not grow).
    """
    path = Path(database).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"DuckDB database {path} does not exist")
    schema, _, name = table.rpartition(".")
    schema = schema or "main"
    if not specs:
        return []
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate expectation names in {suite_name}: {names}")

    with _RUN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _run(path, schema, name, suite_name, specs, settings or {})


def _run(path: Path, schema: str, table: str, suite_name: str,
         specs: list[ExpectationSpec], settings: dict[str, str]) -> list[ExpectationOutcome]:
    _gx_types()
    import great_expectations as gx
    import great_expectations.expectations as gxe

    outcomes: dict[str, ExpectationOutcome] = {}
    # UnexpectedRowsExpectation runs with result_format COMPLETE, which makes GX return a
    # sample of the offending rows (at most 200 are fetched); the others run with SUMMARY,
    # which gives exact unexpected counts plus a capped sample of values without fetching
    # every unexpected value the way COMPLETE would.
    groups: dict[str, list[tuple[ExpectationSpec, Any]]] = {"SUMMARY": [], "COMPLETE": []}
    for spec in specs:
        cls = (_unexpected_rows_type() if spec.gx_type == "UnexpectedRowsExpectation"
               else getattr(gxe, spec.gx_type, None))
        if not (isinstance(cls, type) and issubclass(cls, gxe.Expectation)):
            outcomes[spec.name] = _failed(spec, f"unknown GX expectation type {spec.gx_type!r}")
            continue
        try:
            expectation = cls(**spec.kwargs, description=spec.description,
                              meta={"govmetrics_name": spec.name, "severity": spec.severity})
        except Exception as exc:  # noqa: BLE001 (bad kwargs: report, do not abort the suite)
            outcomes[spec.name] = _failed(spec, f"cannot build expectation: {exc}")
            continue
        fmt = "COMPLETE" if spec.gx_type == "UnexpectedRowsExpectation" else "SUMMARY"
        groups[fmt].append((spec, expectation))

    context = _context()
    digest = hashlib.sha1(f"{path}|{schema}".encode()).hexdigest()[:12]
    datasource = None
    try:
        url = "duckdb:///" + path.as_posix() + (("?" + urlencode(settings)) if settings else "")
        datasource = _get_or_create_datasource(context, f"duckdb_{digest}", url, schema)
        asset = _get_or_create_asset(datasource, f"{schema}.{table}", table, schema)
        batch_definition = _get_or_create_batch_definition(asset, "whole_table")
        for fmt, members in groups.items():
            if not members:
                continue
            name = suite_name if fmt == "SUMMARY" else f"{suite_name}.rows"
            suite = context.suites.add_or_update(gx.ExpectationSuite(
                name=name, expectations=[e for _, e in members]))
            validation = context.validation_definitions.add_or_update(gx.ValidationDefinition(
                name=f"{name}.{schema}.{table}", data=batch_definition, suite=suite))
            result = validation.run(result_format={
                "result_format": fmt,
                "partial_unexpected_count": SAMPLE_SIZE,
                "include_unexpected_rows": False,
            })
            by_name = {r.expectation_config.meta.get("govmetrics_name"): r for r in result.results}
            for spec, _ in members:
                r = by_name.get(spec.name)
                outcomes[spec.name] = (
                    _outcome(spec, r) if r is not None
                    else _failed(spec, "Great Expectations returned no result")
                )
    except Exception as exc:  # noqa: BLE001 (e.g. the table does not exist)
        message = f"{type(exc).__name__}: {exc}"
        message = re.sub(r"\s+", " ", message).strip()
        for spec in specs:
            outcomes.setdefault(spec.name, _failed(spec, message))
    finally:
        if datasource is not None:
            datasource.dispose()
    return [outcomes[s.name] for s in specs]

