"""Core assets: one per contract, loading every pending landed file into ``core.<dataset>``.

Each asset carries one asset check per expectation of its dataset's suite (derived from the
contract by ``expectations.suites``); severity ``error`` checks are blocking, so a failure
stops the marts from publishing. The suite itself runs with Great Expectations inside
DuckDB after the load (``expectations.gx_runner``, imported lazily: GX takes ~2 s to import).
"""


import json
import time
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg
import polars as pl

from assets.ingest import corrections
from assets.ingest.batch import (
    BatchResult,
    SeenFiles,
    load_file,
    peak_rss_mib,
    pending_files,
    recover_interrupted,
    refresh_reference_flags,
)
from assets.metadata import md_table, query_frame
from expectations import scope
from expectations.contract import Contract, all_contracts
from expectations.gx_runner import ExpectationOutcome
from expectations.sql import quote
from expectations.suites import ExpectationSpec, suite_for
from pipelines.preflight import PreflightError, check_key, check_landing, is_production
from pipelines.resources import LandingFolder, PersonalDataKey, Warehouse
from warehouse.keyring import KeyMismatch, ensure_key
from warehouse.stages import stage
from warehouse.writer import now, writer_config, writer_path

OWNERS = ["team:data-engineering"]


def landing_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", dataset])


def core_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(["core", dataset])


def landing_spec(contract: Contract) -> dg.AssetSpec:
    """The landing folder of a dataset: files departments deliver, outside Dagster's control."""
    return dg.AssetSpec(
        landing_key(contract.name),
        group_name="landing",
        description=f"{contract.title_zh}：部门报送文件（landing/{contract.name}/）",
        owners=OWNERS,
        kinds={"file"},
    )


def check_spec(contract: Contract, spec: ExpectationSpec) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        spec.name,
        asset=core_key(contract.name),
        description=spec.description,
        blocking=spec.severity == "error",
        metadata={"gx_type": spec.gx_type, "severity": spec.severity},
    )


@dataclass(frozen=True)
class Checked:
    """An expectation's outcome and the rows it read (``expectations.scope``)."""

    outcome: ExpectationOutcome
    scope: str  # scope.WHOLE or scope.NEW_ROWS
    why_whole: str | None = None  # why an expectation that could read fewer rows read them all
    scope_rows: int | None = None  # rows in the scope, for scope.NEW_ROWS
    with_flagged: bool = False  # the scope holds the rows awaiting their reference (scope.reads_flagged)

    @property
    def scope_text(self) -> str:
        if self.scope == scope.NEW_ROWS:
            rows = f"{self.scope_rows or 0:,}"
            zh, en = (("本次运行载入的行及待匹配的行", "this run's rows and rows awaiting their reference")
                      if self.with_flagged else ("本次运行载入的行", "this run's rows"))
            return f"{rows} 行：{zh}（其余行此前已通过，定义未变）/ {rows} rows: {en}"
        return "全表当前数据 / whole table" + (f" ({self.why_whole})" if self.why_whole else "")


def _check_result(contract: Contract, checked: Checked) -> dg.AssetCheckResult:
    outcome = checked.outcome
    metadata = {
        "observed_value": json.dumps(_jsonable(outcome.observed_value), ensure_ascii=False),
        "unexpected_count": outcome.unexpected_count if outcome.unexpected_count is not None else -1,
        "element_count": outcome.element_count if outcome.element_count is not None else -1,
        "scope": checked.scope_text,
        "details": dg.MetadataValue.json(_jsonable(outcome.details)),
    }
    if outcome.error:
        metadata["error"] = outcome.error
    return dg.AssetCheckResult(
        asset_key=core_key(contract.name),
        check_name=outcome.name,
        passed=bool(outcome.success),
        severity=dg.AssetCheckSeverity.ERROR if outcome.severity == "error" else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def _jsonable(value):
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def run_checks(log, warehouse: Warehouse, contract: Contract, specs: list[ExpectationSpec],
               batch_ids: list[str], run_id: str, *, scoped: bool = False) -> list[Checked]:
    """Validate ``latest.<dataset>`` with GX and record one row per expectation (per new batch).

    ``scoped``: expectations whose earlier outcome still vouches for the rows already there
    read only the rows ``batch_ids`` touched (``expectations.scope``); the others read all.
    """
    from expectations.gx_runner import run_suite  # lazy: GX import is slow

    # GX opens the writer's working file; the writer connection is closed at this point.
    work = writer_path(warehouse.published)
    settings = writer_config(work, warehouse.memory_limit)
    suite = f"{contract.name}_suite"
    split = scope.Plan(list(specs), [], {})
    scoped_groups: dict[bool, list[ExpectationSpec]] = {}  # with the flagged rows or not -> specs
    scope_rows: dict[bool, int] = {}
    if scoped:
        with warehouse.writer() as con:
            split = scope.plan(con, contract, specs)
            for spec in split.new_rows:
                scoped_groups.setdefault(scope.reads_flagged(contract, spec), []).append(spec)
            for flagged in scoped_groups:
                scope_rows[flagged] = scope.create_scope(con, contract, batch_ids, flagged, scoped_groups[flagged])
    try:
        outcomes = {o.name: Checked(o, scope.WHOLE, split.reasons.get(o.name) if scoped else None)
                    for o in run_suite(work, f"latest.{contract.name}", suite, split.whole, settings)}
        for flagged, group in scoped_groups.items():
            table = scope.scope_table(contract.name, flagged)
            outcomes |= {o.name: Checked(o, scope.NEW_ROWS, scope_rows=scope_rows[flagged], with_flagged=flagged)
                         for o in run_suite(work, table, suite, group, settings)}
    finally:
        if scoped_groups:
            with warehouse.writer() as con:
                scope.drop_scope(con, contract.name)
    checked = [outcomes[s.name] for s in specs]
    checked_at = now()
    with warehouse.writer() as con:
        con.executemany(
            """INSERT INTO quality.check_results
               (run_id, batch_id, dataset, suite, expectation, severity, success, observed_value,
                unexpected_count, checked_at, scope, expectation_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [[run_id, batch_id, contract.name, suite, c.outcome.name, c.outcome.severity, bool(c.outcome.success),
              json.dumps(_jsonable(c.outcome.observed_value), ensure_ascii=False), c.outcome.unexpected_count,
              checked_at, c.scope, scope.digest(spec)]
             for c, spec in zip(checked, specs, strict=True) for batch_id in (batch_ids or [None])])
    stage("checking")  # this dataset's results are in, the run's other checks are not
    for c in checked:
        o = c.outcome
        if not o.success:
            log.warning(f"check {contract.name}.{o.name} ({o.severity}) failed: unexpected={o.unexpected_count} "
                        f"observed={o.observed_value} {o.error or ''}")
    if split.new_rows:
        log.info(f"{contract.name}: {len(split.new_rows)} expectation(s) read only the rows of this run's "
                 f"batches, {len(split.whole)} the whole table")
    return checked


def guard_inputs(landing: LandingFolder, key: PersonalDataKey) -> None:
    """The preflight checks a run repeats for itself (a daemon-launched run has no CLI before it)."""
    try:
        check_landing(landing.root)
        if key.key.strip():  # an empty key is the loader's to report per file, and to retry
            check_key(key.key, is_production())
    except PreflightError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


def build_core_asset(contract: Contract) -> dg.AssetsDefinition:
    own_specs = [s for s in suite_for(contract) if not s.needs]
    deps = [landing_key(contract.name), *(core_key(d) for d in contract.upstream)]
    freshness = (dg.FreshnessPolicy.time_window(fail_window=timedelta(days=contract.freshness_days))
                 if contract.freshness_days else None)

    @dg.asset(
        key=core_key(contract.name),
        deps=deps,
        group_name="core",
        description=f"{contract.title_zh}（core.{contract.name}）：{contract.description}",
        owners=OWNERS,
        kinds={"duckdb", "polars"},
        check_specs=[check_spec(contract, s) for s in own_specs],
        freshness_policy=freshness,
        metadata={"contract": str(contract.path.name) if contract.path else contract.name,
                  "keys": ", ".join(contract.keys)},
    )
    def _core(context: dg.AssetExecutionContext, landing: LandingFolder, warehouse: Warehouse,
              personal_data_key: PersonalDataKey) -> dg.MaterializeResult:
        results: list[BatchResult] = []
        guard_inputs(landing, personal_data_key)
        with warehouse.writer() as con:
            try:
                if personal_data_key.key.strip():  # never record the fingerprint of no key
                    ensure_key(con, personal_data_key.key_bytes)
            except KeyMismatch as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from None
            recover_interrupted(con, contract.name)
            seen = SeenFiles(con, contract.name)
            files = pending_files(con, landing.root, contract.name, seen)
            context.log.info(f"{contract.name}: {len(files)} new file(s) in {landing.root / contract.name}")
            for i, path in enumerate(files, 1):
                context.log.info(f"[{i}/{len(files)}] loading {path.name}")
                results.append(load_file(con, contract, path, landing.root, personal_data_key.key_bytes,
                                         context.run.run_id, progress=context.log.info,
                                         limits=landing.limits, known_digest=seen.digest(path)))
                if results[-1].status != "duplicate" and corrections.is_correction(path):
                    outcome = corrections.apply(con, contract, results[-1].batch_id, personal_data_key.key_bytes)
                    context.log.info(f"{path.name}: returned workbook, {outcome}")
            flagged = refresh_reference_flags(con, contract)
            table = f"latest.{quote(contract.name)}"
            current = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            preview = query_frame(con, f"SELECT * EXCLUDE (extras) FROM {table} LIMIT 5")
        broken = [r for r in results if r.failure_kind == "pipeline"]
        if broken:  # not the departments' doing: the run fails, and these files are retried next run
            raise dg.Failure(
                description="；".join(f"{r.source_path}: {r.reason}" for r in broken),
                metadata={"failed_files": [r.source_path for r in broken],
                          "batches": dg.MetadataValue.md(_batches_md(results))},
            )
        new_batches = [r.batch_id for r in results if r.status != "duplicate"]
        started = time.perf_counter()
        checked = run_checks(context.log, warehouse, contract, own_specs, new_batches, context.run.run_id,
                             scoped=True)
        seconds, peaks = _phases(results)
        seconds["gx"], peaks["gx"] = time.perf_counter() - started, peak_rss_mib()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": current,
                "new_batches": len(results),
                "rows_loaded": sum(r.rows_loaded for r in results),
                "rows_quarantined": sum(r.rows_quarantined for r in results),
                "rows_skipped": sum(r.rows_skipped for r in results),
                "failed_batches": sum(r.status == "failed" for r in results),
                "reference_flags_refreshed": flagged,
                "phase_seconds": dg.MetadataValue.json({k: round(v, 3) for k, v in seconds.items()}),
                "phase_peak_mib": dg.MetadataValue.json({k: round(v) for k, v in peaks.items()}),
                "batches": dg.MetadataValue.md(_batches_md(results)),
                "preview": dg.MetadataValue.md(md_table(preview)),
            },
            check_results=[_check_result(contract, c) for c in checked],
        )

    return _core


def _phases(results: list[BatchResult]) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per loading phase summed over the batches, and the peak memory at each phase's end."""
    seconds: dict[str, float] = {}
    peaks: dict[str, float] = {}
    for r in results:
        for phase, s in r.seconds.items():
            seconds[phase] = seconds.get(phase, 0.0) + s
            peaks[phase] = max(peaks.get(phase, 0.0), r.peak_mib.get(phase, 0.0))
    return seconds, peaks


def _batches_md(results: list[BatchResult]) -> str:
    if not results:
        return "没有新文件 (no new files)"
    return md_table(pl.DataFrame([{k: v for k, v in r.as_dict().items() if k not in ("merge", "seconds", "peak_mib")}
                                  for r in results]))


def build_cross_check(contract: Contract, spec: ExpectationSpec) -> dg.AssetChecksDefinition:
    """An expectation that reads other datasets runs as a standalone check, after they load."""

    @dg.asset_check(
        asset=core_key(contract.name),
        name=spec.name,
        description=spec.description,
        blocking=spec.severity == "error",
        additional_deps=[core_key(d) for d in spec.needs],
        metadata={"gx_type": spec.gx_type, "severity": spec.severity},
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        (checked,) = run_checks(context.log, warehouse, contract, [spec], [], context.run.run_id)
        return _check_result(contract, checked)

    return _check


CONTRACTS = all_contracts()
landing_specs = [landing_spec(c) for c in CONTRACTS.values()]
core_assets = [build_core_asset(c) for c in CONTRACTS.values()]
cross_checks = [build_cross_check(c, s) for c in CONTRACTS.values() for s in suite_for(c) if s.needs]
