"""Real Dagster runs of the core assets into a real DuckDB file, on departmental-looking files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.core import core_assets, cross_checks, landing_specs
from assets.quality import load_summary
from pipelines.report import BLOCKED, step_failures
from pipelines.resources import ExportsFolder, LandingFolder, PersonalDataKey, Warehouse
from tests import departments as dep
from warehouse.ddl import create_all

KEY = "test-key"


def run_core(landing: Path, warehouse: Path, exports: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*landing_specs, *core_assets, *cross_checks, load_summary],
        resources={
            "landing": LandingFolder(path=str(landing)),
            "warehouse": Warehouse(path=str(warehouse)),
            "exports": ExportsFolder(path=str(exports)),
            "personal_data_key": PersonalDataKey(key=KEY),
        },
        raise_on_error=False,
    )


def batches(db: Path) -> dict[str, tuple]:
    with duckdb.connect(str(db.with_name(db.stem + ".writer.duckdb")), read_only=True) as con:
        rows = con.execute("""SELECT source_path, status, rows_read, rows_loaded, rows_quarantined,
                                     rows_skipped, reason, batch_id FROM quality.load_batches""").fetchall()
    return {r[0]: r[1:] for r in rows}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    landing, warehouse, exports = root / "landing", root / "wh" / "gm.duckdb", root / "exports"
    dep.registers(landing)
    facts = {"gbk": dep.cases_gbk(landing), "json": dep.cases_json(landing),
             "parquet": dep.cases_parquet(landing), "sql": dep.sql_header_file(landing)}
    facts.update(dep.broken_files(landing))
    # the same bytes delivered twice under another name
    copy = landing / "service_cases" / "platform_export (1).json"
    shutil.copyfile(facts["json"]["path"], copy)
    original = facts["json"]["path"].stat().st_mtime
    os.utime(copy, (original + 60, original + 60))  # delivered a minute later
    result = run_core(landing, warehouse, exports)
    return {"root": root, "landing": landing, "warehouse": warehouse, "exports": exports,
            "facts": facts, "result": result}


def writer(loaded) -> duckdb.DuckDBPyConnection:
    w = loaded["warehouse"]
    return duckdb.connect(str(w.with_name(w.stem + ".writer.duckdb")), read_only=True)


def test_run_succeeds_and_every_file_has_its_batch(loaded):
    assert loaded["result"].success
    b = batches(loaded["warehouse"])
    gbk = b["service_cases/办件明细_202303.csv"]
    assert gbk[:5] == ("partially_loaded", 8, 3, 5, 0)
    assert b["service_cases/platform_export.json"][:4] == ("loaded", 2, 2, 0)
    assert b["service_cases/platform_export (1).json"][0] == "duplicate"
    assert b["service_cases/cases_2023_01.parquet"][:4] == ("loaded", 2, 2, 0)
    assert b["service_cases/损坏文件.xlsx"][0] == "failed" and b["service_cases/损坏文件.xlsx"][5]
    assert b["service_cases/empty.csv"][0] == "failed"
    assert b["org_units/部门与区划.csv"][:3] == ("loaded", 6, 6)


def test_rows_read_equal_loaded_plus_quarantined_plus_skipped(loaded):
    with writer(loaded) as con:
        bad = con.execute("""SELECT source_path FROM quality.load_batches WHERE status <> 'duplicate'
                             AND rows_read <> rows_loaded + rows_quarantined + rows_skipped""").fetchall()
        quarantined = con.execute("""SELECT b.batch_id, b.rows_quarantined, count(q.batch_id)
                                     FROM quality.load_batches b LEFT JOIN quality.quarantine q USING (batch_id)
                                     GROUP BY ALL HAVING b.rows_quarantined <> count(q.batch_id)""").fetchall()
    assert bad == [] and quarantined == []


def test_bad_rows_are_quarantined_with_their_rule_and_clerk_message(loaded):
    facts = loaded["facts"]["gbk"]
    with writer(loaded) as con:
        rows = con.execute("""SELECT q.source_row, q.rule, q.message, q.raw_values
                              FROM quality.quarantine q JOIN quality.load_batches b USING (batch_id)
                              WHERE b.source_path = 'service_cases/办件明细_202303.csv'""").fetchall()
    assert {r[0]: r[1] for r in rows} == facts["rules"]
    for _, _, message, raw in rows:
        assert message and not message.isascii()  # written for a clerk, in Chinese
        assert "办件编号" in raw  # raw values keyed by the department's own headers


def test_good_rows_land_in_core_once(loaded):
    with writer(loaded) as con:
        cases = dict(con.execute("SELECT case_no, channel FROM latest.service_cases").fetchall())
        total = con.execute("SELECT count(*) FROM core.service_cases").fetchone()[0]
    assert set(cases) == {"C0001", "C0002", "C0003", "C1001", "C1002", "C2001", "C2002", "C3001"}
    assert total == len(cases)  # the duplicate delivery added nothing


def test_sql_looking_header_is_kept_as_data(loaded):
    with writer(loaded) as con:
        extras = con.execute("SELECT extras FROM latest.service_cases WHERE case_no = 'C3001'").fetchone()[0]
        assert con.execute("SELECT count(*) FROM core.service_cases").fetchone()[0] > 0
    assert "DROP TABLE" in extras


def test_no_personal_data_in_clear_anywhere(loaded):
    root: Path = loaded["root"]
    outputs = [p for p in root.rglob("*") if p.is_file() and "landing" not in p.parts]
    assert outputs
    for path in outputs:
        data = path.read_bytes()
        for secret in dep.ID_NUMBERS + dep.PHONES:
            assert secret.encode() not in data, f"{secret} in clear in {path}"
    with writer(loaded) as con:
        hashed = con.execute("SELECT applicant_id_no FROM latest.service_cases WHERE case_no='C0001'").fetchone()[0]
    assert len(hashed) == 64


def test_asset_checks_reported_for_every_expectation(loaded):
    evaluations = loaded["result"].get_asset_check_evaluations()
    assert evaluations
    by_asset = {}
    for e in evaluations:
        by_asset.setdefault(e.asset_key.to_user_string(), []).append(e)
    assert "core/service_cases" in by_asset
    with writer(loaded) as con:
        recorded = con.execute("SELECT count(DISTINCT expectation) FROM quality.check_results "
                               "WHERE dataset = 'service_cases'").fetchone()[0]
    assert recorded == len(by_asset["core/service_cases"])


def test_rerun_with_nothing_new_changes_nothing(loaded):
    before = batches(loaded["warehouse"])
    with writer(loaded) as con:
        rows_before = con.execute("SELECT count(*) FROM core.service_cases").fetchone()[0]
    result = run_core(loaded["landing"], loaded["warehouse"], loaded["exports"])
    assert result.success
    assert batches(loaded["warehouse"]) == before
    with writer(loaded) as con:
        assert con.execute("SELECT count(*) FROM core.service_cases").fetchone()[0] == rows_before


def test_a_file_unchanged_since_it_was_read_is_not_hashed_again(loaded, monkeypatch):
    """Size and modification time as when read: no SHA-256 of it (a full landing folder is 13.6 GB).
    A touched file is hashed again, and with the same content it is still not pending."""
    from assets.ingest import batch

    hashed: list[str] = []
    real = batch.sha256_of
    monkeypatch.setattr(batch, "sha256_of", lambda p: hashed.append(p.name) or real(p))
    with writer(loaded) as con:
        read = {Path(p).name for (p,) in con.execute(
            "SELECT source_path FROM quality.load_batches WHERE dataset = 'service_cases' "
            "AND status IN ('loaded', 'partially_loaded', 'duplicate')").fetchall()}
        assert read and batch.pending_files(con, loaded["landing"], "service_cases") == []
        assert not read & set(hashed)
        path = loaded["facts"]["gbk"]["path"]
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))
        assert batch.pending_files(con, loaded["landing"], "service_cases") == []
    assert path.name in hashed


def test_a_new_file_is_hashed_once_per_run(tmp_path, monkeypatch):
    """The digest ``pending_files`` computed is the one ``load_file`` records (hashing a 10M-row
    export takes 1.3 s); a file that changed in between is hashed again."""
    from assets.ingest import batch
    from expectations.contract import get_contract

    def case(case_no: str) -> list[str]:
        return [dep.PHONES[0], case_no, "I001", "2023-03-05 09:30", "网上办理", "D001", "210102", "", "",
                "在办", "是", dep.ID_NUMBERS[0], ""]

    landing = tmp_path / "landing"
    dep.write_csv(landing / "service_cases" / "a.csv", dep.CASE_HEADER, [case("C1")])
    dep.write_csv(landing / "service_cases" / "b.csv", dep.CASE_HEADER, [case("C2")])
    hashed: list[str] = []
    real = batch.sha256_of
    monkeypatch.setattr(batch, "sha256_of", lambda p: hashed.append(p.name) or real(p))
    con = duckdb.connect()
    create_all(con)
    seen = batch.SeenFiles(con, "service_cases")
    pending = batch.pending_files(con, landing, "service_cases", seen)
    assert sorted(hashed) == ["a.csv", "b.csv"]
    changed = landing / "service_cases" / "b.csv"  # rewritten after it was found pending
    dep.write_csv(changed, dep.CASE_HEADER, [case("C3")])
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 1))
    hashed.clear()
    for path in pending:
        result = batch.load_file(con, get_contract("service_cases"), path, landing, KEY.encode(),
                                 known_digest=seen.digest(path))
        assert result.status == "loaded"
        (recorded,), = con.execute("SELECT sha256 FROM quality.load_batches WHERE batch_id = ?",
                                   [result.batch_id]).fetchall()
        assert recorded == real(path)
    assert hashed == ["b.csv"]


def test_seen_files_reads_a_warehouse_published_before_sizes_were_recorded(tmp_path):
    """An analysts' file from before ``source_bytes``/``source_mtime_ns`` (read-only: not grown)."""
    from assets.ingest.batch import SeenFiles, sha256_of

    landed = tmp_path / "landing" / "service_cases" / "a.csv"
    landed.parent.mkdir(parents=True)
    landed.write_text("办件编号\nC1\n", encoding="utf-8")
    con = duckdb.connect()
    con.execute("CREATE SCHEMA quality; CREATE TABLE quality.load_batches "
                "(dataset VARCHAR, source_path VARCHAR, sha256 VARCHAR, failure_kind VARCHAR)")
    con.execute("INSERT INTO quality.load_batches VALUES ('service_cases', 'service_cases/a.csv', ?, NULL)",
                [sha256_of(landed)])
    assert SeenFiles(con).has("service_cases", landed, tmp_path / "landing")
    landed.write_text("办件编号\nC2\n", encoding="utf-8")
    assert not SeenFiles(con).has("service_cases", landed, tmp_path / "landing")


def test_corrected_file_supersedes_and_history_stays(loaded):
    landing = loaded["landing"]
    # The JSON export is corrected: C1002 is now finished.
    path = loaded["facts"]["json"]["path"]
    text = path.read_text(encoding="utf-8").replace('"办结时间": null, "办理状态": "在办"',
                                                    '"办结时间": "2023-02-05 10:00:00", "办理状态": "已办结"')
    text = text.replace('"受理时间": null', '"受理时间": "2023-02-02 11:00:00"')
    (landing / "service_cases" / "platform_export (1).json").unlink()
    path.write_text(text, encoding="utf-8")
    assert run_core(landing, loaded["warehouse"], loaded["exports"]).success
    with writer(loaded) as con:
        versions = con.execute("""SELECT status, valid_to IS NULL FROM core.service_cases
                                  WHERE case_no = 'C1002' ORDER BY valid_from""").fetchall()
        superseded = con.execute("""SELECT status FROM quality.load_batches
                                    WHERE source_path = 'service_cases/platform_export.json'
                                    ORDER BY received_at""").fetchall()
    assert versions == [("在办", False), ("已办结", True)]
    # the first delivery still has C1001 current (unchanged), so it is not wholly superseded
    assert [s[0] for s in superseded] == ["loaded", "loaded"]


def test_reconciliation_runs_after_case_records_and_blocks_downstream(tmp_path):
    landing = tmp_path / "landing"
    dep.registers(landing)
    dep.cases_gbk(landing)  # 3 good cases applied in 2023-03
    dep.write_csv(landing / "case_volume_monthly" / "月报.csv", ["统计月份", "实施部门编码", "办件量"],
                  [["2023年3月", "D001", "100"]])
    result = run_core(landing, tmp_path / "wh" / "gm.duckdb", tmp_path / "exports")
    evaluation = {e.check_name: e for e in result.get_asset_check_evaluations()
                  if e.asset_key.to_user_string() == "core/case_volume_monthly"}
    assert evaluation["reconciles_with_case_records"].passed is False  # 100 reported vs 3 records
    assert not result.success
    executed = {e.step_key for e in result.get_step_success_events()}
    assert "core__service_cases" in executed and "quality__load_summary" not in executed
    # `govmetrics refresh` reports this as blocked publishing, not as a failed run (exit 0)
    assert [cls for _, cls, _ in step_failures(result)] == [BLOCKED]
