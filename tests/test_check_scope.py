"""A suite re-reads only the rows a run touched when its earlier outcome vouches for the rest,
and the whole table whenever it cannot (``expectations.scope``)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import duckdb
import pytest

from assets.core import run_checks
from expectations import scope
from expectations.contract import all_contracts
from expectations.suites import suite_for
from pipelines.resources import Warehouse
from tests import departments as dep
from tests.test_ingest_e2e import run_core

CASES = all_contracts()["service_cases"]
SPECS = [s for s in suite_for(CASES) if not s.needs]
LOG = logging.getLogger("test_check_scope")


def results(warehouse: Path, run_id: str) -> dict[str, tuple]:
    """expectation -> (scope, success, unexpected_count) recorded by ``run_id``."""
    with duckdb.connect(str(warehouse.with_name(warehouse.stem + ".writer.duckdb")), read_only=True) as con:
        return {e: rest for e, *rest in con.execute(
            """SELECT DISTINCT expectation, scope, success, unexpected_count FROM quality.check_results
               WHERE dataset = 'service_cases' AND run_id = ?""", [run_id]).fetchall()}


def evaluations(result, dataset: str = "service_cases") -> dict[str, dict]:
    return {e.check_name: e.metadata for e in result.get_asset_check_evaluations()
            if e.asset_key.to_user_string() == f"core/{dataset}"}


@pytest.fixture
def site(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "wh" / "gm.duckdb"
    dep.registers(landing)
    dep.cases_gbk(landing)
    first = run_core(landing, warehouse, tmp_path / "exports")
    assert first.success
    return {"landing": landing, "warehouse": warehouse, "exports": tmp_path / "exports", "first": first}


def deliver(site, name: str, case_nos: list[str]) -> None:
    rows = [[dep.PHONES[0], no, "I001", "2023-04-03 09:00", "网上办理", "D001", "210102", "2023-04-03 09:30",
             "2023-04-04 09:00", "已办结", "是", dep.ID_NUMBERS[0], ""] for no in case_nos]
    dep.write_csv(site["landing"] / "service_cases" / name, dep.CASE_HEADER, rows)


def test_the_first_run_reads_every_row(site):
    recorded = results(site["warehouse"], site["first"].run_id)
    assert set(recorded) == {s.name for s in SPECS}
    assert {s for s, _, _ in recorded.values()} == {scope.WHOLE}


def test_a_delivery_is_checked_on_its_own_rows(site):
    deliver(site, "办件明细_202304.csv", ["C0101", "C0102"])
    second = run_core(site["landing"], site["warehouse"], site["exports"])
    assert second.success
    recorded = results(site["warehouse"], second.run_id)
    assert recorded["row_count_positive"][0] == scope.WHOLE
    assert {recorded[s.name][0] for s in SPECS if s.name != "row_count_positive"} == {scope.NEW_ROWS}
    shown = evaluations(second)
    assert shown["status_in_set"]["element_count"].value == 2  # the two new cases, not the five
    assert shown["keys_unique"]["scope"].value.startswith("2 行：本次运行载入的行")
    assert shown["row_count_positive"]["observed_value"].value == "5"  # counted over the whole table
    working = site["warehouse"].with_name(site["warehouse"].stem + ".writer.duckdb")
    with duckdb.connect(str(working), read_only=True) as con:  # nothing left behind
        assert con.execute("SELECT count(*) FROM information_schema.tables "
                           "WHERE table_name LIKE 'gx_scope_%'").fetchall() == [(0,)]


def test_the_scope_holds_the_keys_and_the_columns_its_expectations_read(site):
    warehouse = Warehouse(path=str(site["warehouse"]))
    reads_phone = dataclasses.replace(SPECS[1], kwargs={"column": "applicant_phone"})

    def columns(specs) -> set[str]:
        with warehouse.writer() as con:
            batches, rows = con.execute("SELECT list(DISTINCT batch_id), count(*) FROM latest.service_cases").fetchone()
            assert scope.create_scope(con, CASES, batches, specs=specs) == rows
            names = {c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {scope.scope_table(CASES.name)})")
                     .fetchall()}
            scope.drop_scope(con, CASES.name)
        return names

    assert {"applicant_id_no", "applicant_phone"} <= columns(None)  # nobody said what reads it
    assert not {"applicant_id_no", "applicant_phone"} & columns(SPECS)
    assert {"applicant_id_no", "applicant_phone"} & columns([*SPECS, reads_phone]) == {"applicant_phone"}
    [reference] = [s for s in SPECS if s.name == "item_code_references_service_items"]
    assert columns([reference]) == {"case_no", "item_code"}  # the key, and the one column it checks


def test_a_broken_new_row_fails_and_the_table_is_read_whole_until_it_is_gone(site):
    warehouse = Warehouse(path=str(site["warehouse"]))
    with warehouse.writer() as con:  # a loader bug: a second current version of C0001
        con.execute("""INSERT INTO core.service_cases SELECT * REPLACE ('bad-batch' AS batch_id)
                       FROM latest.service_cases WHERE case_no = 'C0001'""")
    checked = {c.outcome.name: c for c in run_checks(LOG, warehouse, CASES, SPECS, ["bad-batch"], "run-2",
                                                     scoped=True)}
    unique = checked["keys_unique"]
    assert unique.scope == scope.NEW_ROWS and not unique.outcome.success
    assert unique.outcome.unexpected_count == 2  # the new row and the old one it duplicates
    again = {c.outcome.name: c for c in run_checks(LOG, warehouse, CASES, SPECS, [], "run-3", scoped=True)}
    assert again["keys_unique"].scope == scope.WHOLE and not again["keys_unique"].outcome.success
    assert again["keys_unique"].why_whole == "it failed last time"
    assert again["status_in_set"].scope == scope.NEW_ROWS and again["status_in_set"].outcome.element_count == 0


def test_a_changed_definition_reads_the_whole_table(site):
    warehouse = Warehouse(path=str(site["warehouse"]))
    changed = [dataclasses.replace(s, severity="warn") if s.name == "status_in_set" else s for s in SPECS]
    with warehouse.writer() as con:
        split = scope.plan(con, CASES, changed)
    assert split.reasons == {"row_count_positive": "a whole-table figure",
                             "status_in_set": "its definition changed"}


def test_a_reference_is_read_whole_only_when_the_register_lost_a_value_or_was_empty(site):
    (site["landing"] / "service_items" / "items_v2.csv").write_bytes(  # the same items again
        next((site["landing"] / "service_items").iterdir()).read_bytes().replace(b"\n", b"\r\n"))
    again = run_core(site["landing"], site["warehouse"], site["exports"])
    assert again.success
    assert results(site["warehouse"], again.run_id)["item_code_references_service_items"][0] == scope.NEW_ROWS

    warehouse = Warehouse(path=str(site["warehouse"]))
    reference = "item_code_references_service_items"
    with warehouse.writer() as con:  # the register drops I003 after the last check
        con.execute("UPDATE core.service_items SET valid_to = now()::TIMESTAMP + INTERVAL 1 HOUR "
                    "WHERE item_code = 'I003'")
        assert scope.plan(con, CASES, SPECS).reasons[reference] == \
            "service_items no longer has 1 value(s) of item_code it had"
        con.execute("UPDATE core.service_items SET valid_to = NULL, "  # as if first loaded after the check
                    "valid_from = now()::TIMESTAMP + INTERVAL 1 HOUR")
        assert scope.plan(con, CASES, SPECS).reasons[reference] == \
            "service_items had no current rows at the last check"
        con.execute("UPDATE core.service_items SET valid_from = TIMESTAMP '2020-01-01'")
        assert reference not in scope.plan(con, CASES, SPECS).reasons


def reviews(site, name: str, rows: list[tuple[str, str]]) -> None:
    header = ["评价编号", "办件编号", "评价等级", "评价渠道", "评价时间"]
    dep.write_csv(site["landing"] / "service_reviews" / name, header,
                  [[review, case, "5", "APP", "2023-04-05 10:00"] for review, case in rows])


def review_results(warehouse: Path, run_id: str) -> dict[str, tuple]:
    with duckdb.connect(str(warehouse.with_name(warehouse.stem + ".writer.duckdb")), read_only=True) as con:
        return {e: rest for e, *rest in con.execute(
            """SELECT DISTINCT expectation, scope, success, unexpected_count FROM quality.check_results
               WHERE dataset = 'service_reviews' AND run_id = ?""", [run_id]).fetchall()}


def test_reviews_of_cases_not_loaded_yet_stay_in_the_scope_until_their_cases_arrive(site):
    reference = "case_no_references_service_cases"
    reviews(site, "评价_1.csv", [("R1", "C0001"), ("R2", "C0999")])  # C0999 is not exported yet
    first = run_core(site["landing"], site["warehouse"], site["exports"])
    # (the fixture's run checked the empty review table: this one reads the new reviews only)
    assert review_results(site["warehouse"], first.run_id)[reference] == [scope.NEW_ROWS, False, 1]

    reviews(site, "评价_2.csv", [("R3", "C0002")])
    second = run_core(site["landing"], site["warehouse"], site["exports"])
    # read from the scope (R3 and the flagged R2), still failing for R2 alone: a warning
    assert review_results(site["warehouse"], second.run_id)[reference] == [scope.NEW_ROWS, False, 1]
    assert evaluations(second, "service_reviews")[reference]["scope"].value.startswith("2 行")
    # the other checks read R3 alone: they passed on R2 when it was loaded
    others = evaluations(second, "service_reviews")["rating_between"]["scope"].value
    assert others.startswith("1 行：本次运行载入的行（")

    deliver(site, "办件明细_补报.csv", ["C0999"])  # the case arrives: R2's flag is cleared
    third = run_core(site["landing"], site["warehouse"], site["exports"])
    assert review_results(site["warehouse"], third.run_id)[reference] == [scope.NEW_ROWS, True, 0]



def test_a_failure_recorded_in_the_same_second_as_a_pass_counts(tmp_path):
    """checked_at has whole seconds: two quick runs can record one expectation at the same time.
    Whatever order the rows come back in, the failed outcome is the one that decides."""
    from warehouse.ddl import create_all

    [unique] = [s for s in SPECS if s.name == "keys_unique"]
    con = duckdb.connect(str(tmp_path / "tie.duckdb"))
    create_all(con)
    for run_id, success in (("run-a", True), ("run-b", False), ("run-c", True)):
        con.execute("""INSERT INTO quality.check_results (run_id, dataset, suite, expectation, severity, success,
                       checked_at, scope, expectation_digest)
                       VALUES (?, 'service_cases', 'service_cases_suite', 'keys_unique', 'error', ?,
                               TIMESTAMP '2026-12-01 10:00:00', 'whole', ?)""",
                    [run_id, success, scope.digest(unique)])
    decided = scope.plan(con, CASES, [unique])
    assert decided.whole == [unique] and decided.reasons["keys_unique"] == "it failed last time"
