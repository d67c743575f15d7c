"""run_suite: Great Expectations for real against a DuckDB file (no mocks).

The test database is built here from the contracts (core tables + ``latest`` views, with the
bookkeeping columns), so the suite under test is exactly what ``suite_for`` derives.
GX is imported once per test session (~2 s); each run_suite afterwards takes well under 1 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import duckdb
import pytest

from expectations.contract import all_contracts, get_contract
from expectations.gx_runner import ExpectationOutcome, run_suite
from expectations.suites import ExpectationSpec, suite_for


def q(name: str) -> str:
    return '"' + name + '"'


def build_db(path: Path, rows: dict[str, list[dict]], history: dict[str, list[dict]] | None = None):
    """Warehouse-shaped DuckDB file: core.<ds> (contract + bookkeeping columns), latest.<ds>."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA core; CREATE SCHEMA latest")
        for c in all_contracts().values():
            cols = [f"{q(col.name)} {col.duckdb_type}" for col in c.columns]
            cols += [f"{q(flag)} BOOLEAN" for flag in c.flag_columns]
            cols += ["batch_id VARCHAR NOT NULL", "source_row BIGINT", "extras JSON",
                     "valid_from TIMESTAMP NOT NULL", "valid_to TIMESTAMP"]
            con.execute(f"CREATE TABLE core.{q(c.name)} ({', '.join(cols)})")
            con.execute(f"CREATE VIEW latest.{q(c.name)} AS "
                        f"SELECT * FROM core.{q(c.name)} WHERE valid_to IS NULL")
        for dataset, current in rows.items():
            insert(con, dataset, current)
        for dataset, old in (history or {}).items():
            insert(con, dataset, old, valid_to="2024-06-01 00:00:00")
    finally:
        con.close()


def insert(con, dataset: str, rows: list[dict], valid_to: str | None = None) -> None:
    for i, row in enumerate(rows, start=1):
        names = [*row, "batch_id", "source_row", "valid_from", "valid_to"]
        values = [*row.values(), "b-test", i + 1, "2024-05-01 00:00:00", valid_to]
        con.execute(
            f"INSERT INTO core.{q(dataset)} ({', '.join(q(n) for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})",
            values,
        )


ORG_UNITS = [
    {"code": "D1", "name": "市数据局", "unit_type": "市级部门"},
    {"code": "D2", "name": "市市场监管局", "unit_type": "市级部门"},
    {"code": "110101", "name": "某区", "unit_type": "区县"},
    {"code": "110101001", "name": "某街道", "unit_type": "街道乡镇"},
]
SERVICE_ITEMS = [
    {"item_code": code, "item_name": f"事项{code}", "dept_code": "D1", "handling_type": "即办件",
     "online_available": True, "full_online": True, "version": "1", "item_status": "在用",
     "promised_days": 5}
    for code in ("I1", "I2")
]


def case(case_no: str, **overrides) -> dict:
    row = {
        "case_no": case_no, "item_code": "I1", "dept_code": "D1", "region_code": "110101001",
        "channel": "网上办理", "applied_at": "2024-01-05 09:00:00",
        "accepted_at": "2024-01-05 10:00:00", "finished_at": "2024-01-06 10:00:00",
        "status": "已办结", "full_online": True, "applicant_id_no": "hash-" + case_no,
    }
    row.update(overrides)
    return row


GOOD_CASES = [
    case(f"C{i:03d}", item_code="I1" if i % 2 else "I2",
         region_code="110101" if i % 3 else "110101001",
         channel=["网上办理", "窗口办理", "移动端", "自助终端"][i % 4])
    for i in range(10)
] + [case("C100", status="在办", finished_at=None)]

# Every planted defect, and the exact number of unexpected rows it must produce.
BAD_CASES = GOOD_CASES + [
    case("B01", channel=None),
    case("B02", channel=None),
    case("B03", channel="电话"),
    case("B04", channel="电话"),
    case("B05", channel="微信"),
    case("DUP1"), case("DUP1", channel="窗口办理"),
    case("DUP2"), case("DUP2"), case("DUP2", status="在办", finished_at=None),
    case("B06", accepted_at="2024-01-06 10:00:00", finished_at="2024-01-06 09:00:00"),
    case("B07", finished_at=None),
    case("B08", finished_at=None),
    case("B09", item_code="I404"), case("B10", item_code="I404"),
    case("B11", item_code="I405"), case("B12", item_code="I405"),
    case("B13", region_code="11010"),
    case("B14", dept_code=None),
]
PLANTED = {
    "channel_not_null": 2,
    "channel_in_set": 3,
    "keys_unique": 5,  # every row of a duplicated key: 2 + 3
    "rule_finished_after_accepted": 1,
    "rule_finished_has_finish_time": 2,
    "item_code_references_service_items": 4,
    "region_code_matches_pattern": 1,
    "region_code_references_org_units": 1,
    "dept_code_not_null": 1,
}
# Superseded versions (valid_to set) are not current and must not be checked.
HISTORY = {
    "service_cases": [case("C001", channel="传真", dept_code=None), case("OLD", item_code="X")],
}


def by_name(outcomes: list[ExpectationOutcome]) -> dict[str, ExpectationOutcome]:
    return {o.name: o for o in outcomes}


@pytest.fixture(scope="module")
def bad_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "warehouse.duckdb"
    build_db(path, {"org_units": ORG_UNITS, "service_items": SERVICE_ITEMS,
                    "service_cases": BAD_CASES}, HISTORY)
    return path


@pytest.fixture(scope="module")
def bad_outcomes(bad_db: Path) -> list[ExpectationOutcome]:
    return run_suite(bad_db, "latest.service_cases", "service_cases",
                     suite_for(get_contract("service_cases")))


def test_bad_table_fails_with_exact_counts(bad_outcomes: list[ExpectationOutcome]) -> None:
    specs = suite_for(get_contract("service_cases"))
    assert [o.name for o in bad_outcomes] == [s.name for s in specs]  # one per spec, same order
    outcomes = by_name(bad_outcomes)
    for name, outcome in outcomes.items():
        assert outcome.error is None, (name, outcome.error)
        if name in PLANTED:
            assert not outcome.success, name
            assert outcome.unexpected_count == PLANTED[name], (name, outcome)
        else:
            assert outcome.success, (name, outcome)
            if outcome.unexpected_count is not None:
                assert outcome.unexpected_count == 0, name
    assert outcomes["row_count_positive"].observed_value == len(BAD_CASES)
    assert outcomes["channel_not_null"].element_count == len(BAD_CASES)


def test_outcome_details_are_json_and_sampled(bad_outcomes: list[ExpectationOutcome]) -> None:
    json.dumps([asdict(o) for o in bad_outcomes], ensure_ascii=False)
    outcomes = by_name(bad_outcomes)
    in_set = outcomes["channel_in_set"].details
    assert sorted(in_set["partial_unexpected_list"]) == ["微信", "电话", "电话"]
    dangling = outcomes["item_code_references_service_items"]
    assert dangling.observed_value == 4
    sample = dangling.details["unexpected_rows_sample"]
    assert sorted(r["case_no"] for r in sample) == ["B09", "B10", "B11", "B12"]
    assert set(sample[0]) == {"case_no", "item_code"}  # where the row is, what is wrong: no other cell
    [late] = outcomes["rule_finished_after_accepted"].details["unexpected_rows_sample"]
    assert late["case_no"] == "B06"
    assert set(late) == {"case_no", "applied_at", "accepted_at", "finished_at"}
    assert late["applied_at"].startswith("2024-")  # timestamps as ISO text


def test_good_table_passes_everything(tmp_path: Path) -> None:
    path = tmp_path / "good.duckdb"
    build_db(path, {"org_units": ORG_UNITS, "service_items": SERVICE_ITEMS,
                    "service_cases": GOOD_CASES}, HISTORY)
    for dataset in ("service_cases", "service_items", "org_units"):
        outcomes = run_suite(path, f"latest.{dataset}", dataset, suite_for(get_contract(dataset)))
        failed = [o for o in outcomes if not o.success]
        assert not failed, failed
        for o in outcomes:
            assert o.error is None
            assert o.unexpected_count in (None, 0)
    assert by_name(outcomes)["row_count_positive"].observed_value == len(ORG_UNITS)


def test_a_compound_key_is_duplicated_only_by_a_row_with_every_part_equal(tmp_path: Path) -> None:
    path = tmp_path / "items.duckdb"
    items = [{**item, "as_of": "2024-03-31"} for item in SERVICE_ITEMS]
    again = {**items[0], "item_name": "同一事项同一版本再报一次"}
    newer = {**items[0], "version": "2"}  # another version of I1: not a duplicate
    undated = [{**items[1], "as_of": None}, {**items[1], "as_of": None}]  # a missing as_of equals a missing one
    build_db(path, {"org_units": ORG_UNITS, "service_items": [*items, again, newer, *undated]})
    unique = by_name(run_suite(path, "latest.service_items", "service_items",
                               suite_for(get_contract("service_items"))))["keys_unique"]
    assert (unique.success, unique.unexpected_count) == (False, 4)
    sample = unique.details["unexpected_rows_sample"]
    assert sorted((r["item_code"], r["version"], r["as_of"]) for r in sample) == [
        ("I1", "1", "2024-03-31"), ("I1", "1", "2024-03-31"), ("I2", "1", None), ("I2", "1", None)]
    assert set(sample[0]) == {"item_code", "version", "as_of"}  # the key, no other cell


@pytest.mark.parametrize("broken", [199, 200, 201, 450])
def test_unexpected_rows_are_counted_exactly_past_the_sample(tmp_path: Path, broken: int) -> None:
    """The query that samples a check's rows (at most GX's 200) counts them too: exact on both
    sides of the sample's size."""
    path = tmp_path / "many.duckdb"
    cases = GOOD_CASES + [case(f"P{i:04d}", region_code="11010") for i in range(broken)]
    cases += [case("DUP9"), case("DUP9")] * (broken // 2)
    build_db(path, {"org_units": ORG_UNITS, "service_items": SERVICE_ITEMS, "service_cases": cases})
    outcomes = by_name(run_suite(path, "latest.service_cases", "service_cases",
                                 suite_for(get_contract("service_cases"))))
    pattern, unique = outcomes["region_code_matches_pattern"], outcomes["keys_unique"]
    assert (pattern.success, pattern.unexpected_count, pattern.observed_value) == (False, broken, broken)
    assert len(pattern.details["unexpected_rows_sample"]) == 20  # the sample stays capped
    assert (unique.success, unique.unexpected_count) == (False, 2 * (broken // 2))


def test_a_check_runs_its_query_once_and_samples_its_least_rows(tmp_path: Path, monkeypatch) -> None:
    """One query per unexpected-rows check, also when it finds more rows than the sample holds
    (GX's own runs a second, ``COUNT(*)``, one); the sample is the least rows, key first."""
    from expectations.gx_runner import _gx_types

    engine = _gx_types()[1]
    queries: list[str] = []
    execute = engine.execute_query
    monkeypatch.setattr(engine, "execute_query", lambda self, q: (queries.append(str(q)), execute(self, q))[1])
    path = tmp_path / "once.duckdb"
    cases = GOOD_CASES + [case(f"P{i:04d}", region_code="11010") for i in reversed(range(250))]
    build_db(path, {"org_units": ORG_UNITS, "service_items": SERVICE_ITEMS, "service_cases": cases})
    specs = {s.name: s for s in suite_for(get_contract("service_cases"))}
    for name, found in (("keys_unique", 0), ("region_code_matches_pattern", 250)):
        queries.clear()
        [outcome] = run_suite(path, "latest.service_cases", "service_cases", [specs[name]])
        assert (outcome.error, outcome.unexpected_count) == (None, found)
        assert sum("min_by" in q for q in queries) == 1, (name, queries)
        assert not any("unexpected_row_count" in q for q in queries), (name, queries)
    sample = outcome.details["unexpected_rows_sample"]
    assert [r["case_no"] for r in sample] == [f"P{i:04d}" for i in range(20)]


def test_empty_referenced_table_is_nothing_to_check(tmp_path: Path) -> None:
    path = tmp_path / "noitems.duckdb"
    build_db(path, {"org_units": ORG_UNITS, "service_cases": [case("C1", item_code="I404")]})
    outcomes = by_name(run_suite(path, "latest.service_cases", "service_cases",
                                 suite_for(get_contract("service_cases"))))
    assert outcomes["item_code_references_service_items"].success
    assert outcomes["item_code_references_service_items"].unexpected_count == 0


def test_flagged_reference_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "reviews.duckdb"
    reviews = [
        {"review_no": f"R{i}", "case_no": case_no, "rating": 5, "channel": "APP",
         "reviewed_at": "2024-01-07 10:00:00", "case_no_unmatched": case_no == "C999"}
        for i, case_no in enumerate(["C001", "C002", "C999"])
    ] + [{"review_no": "R9", "case_no": "C001", "rating": 7, "channel": "APP",
          "reviewed_at": "2024-01-07 10:00:00"}]
    build_db(path, {"org_units": ORG_UNITS, "service_items": SERVICE_ITEMS,
                    "service_cases": GOOD_CASES, "service_reviews": reviews})
    outcomes = by_name(run_suite(path, "latest.service_reviews", "service_reviews",
                                 suite_for(get_contract("service_reviews"))))
    ref = outcomes["case_no_references_service_cases"]
    assert (ref.success, ref.severity, ref.unexpected_count) == (False, "warn", 1)
    rating = outcomes["rating_between"]
    assert (rating.success, rating.severity, rating.unexpected_count) == (False, "error", 1)
    assert [n for n, o in outcomes.items() if not o.success] == [
        "case_no_references_service_cases", "rating_between"]


def _reconciliation_db(path: Path, january_reported: tuple[int, int]) -> None:
    build_db(path, {
        "org_units": ORG_UNITS,
        "case_volume_monthly": [
            {"month": "2024-01-01", "dept_code": "D1", "cases": january_reported[0]},
            {"month": "2024-01-01", "dept_code": "D2", "cases": january_reported[1]},
            {"month": "2024-02-01", "dept_code": "D1", "cases": 603},  # 1003 vs 1000: 0.3 %
            {"month": "2024-02-01", "dept_code": "D2", "cases": 400},
            {"month": "2024-03-01", "dept_code": "D1", "cases": 999},  # no case records: skipped
        ],
    })
    con = duckdb.connect(str(path))
    try:
        for month in ("2024-01-01", "2024-02-01"):  # 1000 case records in each month
            con.execute(
                "INSERT INTO core.service_cases (case_no, item_code, dept_code, region_code, "
                "channel, applied_at, status, batch_id, valid_from) "
                f"SELECT 'R{month}-' || range, 'I1', 'D1', '110101', '网上办理', "
                f"TIMESTAMP '{month}' + to_minutes(range), '在办', 'b', now() FROM range(1000)"
            )
    finally:
        con.close()


@pytest.mark.parametrize(("january", "passes"), [((600, 410), False), ((600, 403), True)])
def test_reconciliation_with_case_records(tmp_path: Path, january, passes: bool) -> None:
    path = tmp_path / "recon.duckdb"
    _reconciliation_db(path, january)  # (600, 410): 1010 vs 1000 = 1 %; (600, 403): 0.3 %
    outcomes = by_name(run_suite(path, "latest.case_volume_monthly", "case_volume_monthly",
                                 suite_for(get_contract("case_volume_monthly"))))
    recon = outcomes["reconciles_with_case_records"]
    assert recon.error is None and recon.severity == "error"
    assert [n for n, o in outcomes.items() if not o.success] == (
        [] if passes else ["reconciles_with_case_records"])
    if passes:
        assert recon.unexpected_count == 0
    else:
        assert recon.unexpected_count == 1
        [gap] = recon.details["unexpected_rows_sample"]
        assert gap["month"] == "2024-01-01"
        observed = (gap["monthly_cases"], gap["record_cases"], gap["relative_gap"])
        assert observed == (1010, 1000, 0.01)


def test_file_is_free_afterwards_and_runs_repeat(bad_db: Path, bad_outcomes) -> None:
    con = duckdb.connect(str(bad_db))  # read-write, same process, default configuration
    con.execute("DELETE FROM core.service_cases WHERE case_no LIKE 'B0%'")
    con.close()
    outcomes = by_name(run_suite(bad_db, "latest.service_cases", "service_cases",
                                 suite_for(get_contract("service_cases"))))
    assert outcomes["channel_not_null"].success
    assert outcomes["row_count_positive"].observed_value == len(BAD_CASES) - 9
    assert outcomes["item_code_references_service_items"].unexpected_count == 3  # B10..B12
    duckdb.connect(str(bad_db)).close()


def test_errors_are_reported_per_expectation(bad_db: Path, bad_outcomes) -> None:
    specs = [
        ExpectationSpec("broken_sql", "UnexpectedRowsExpectation",
                        {"unexpected_rows_query": "SELECT * FROM {batch} WHERE no_such_column > 1"},
                        "error", "bad SQL"),
        ExpectationSpec("after_broken", "UnexpectedRowsExpectation",
                        {"unexpected_rows_query": "SELECT * FROM {batch} WHERE case_no = 'B13'"},
                        "warn", "still computed after a failing query"),
        ExpectationSpec("unknown_type", "ExpectNothingInParticular", {}, "warn", "unknown"),
        ExpectationSpec("bad_kwargs", "ExpectColumnValuesToNotBeNull", {"colum": "x"},
                        "warn", "typo"),
        ExpectationSpec("no_such_column", "ExpectColumnValuesToNotBeNull", {"column": "nope"},
                        "error", "missing column"),
        ExpectationSpec("case_no_not_null", "ExpectColumnValuesToNotBeNull", {"column": "case_no"},
                        "error", "fine"),
    ]
    outcomes = by_name(run_suite(bad_db, "latest.service_cases", "adhoc", specs))
    for name in ("broken_sql", "unknown_type", "bad_kwargs", "no_such_column"):
        assert not outcomes[name].success and outcomes[name].error, name
    assert "no_such_column" in outcomes["broken_sql"].error
    assert outcomes["after_broken"].error is None
    assert outcomes["after_broken"].unexpected_count == 1
    assert outcomes["case_no_not_null"].success and outcomes["case_no_not_null"].error is None


def test_missing_table_fails_every_expectation(bad_db: Path, bad_outcomes) -> None:
    specs = suite_for(get_contract("org_units"))
    outcomes = run_suite(bad_db, "latest.no_such_dataset", "org_units", specs)
    assert len(outcomes) == len(specs)
    assert all(not o.success and o.error for o in outcomes)


def test_scipy_stats_loads_only_when_used() -> None:
    """GX imports ``scipy.stats`` for expectations no suite uses; it is deferred, and still works."""
    probe = (
        "import sys\n"
        "from expectations.gx_runner import _gx_types\n"
        "_gx_types()\n"
        "print('scipy.stats._stats_py' in sys.modules)\n"
        "from great_expectations.expectations.metrics.column_aggregate_metrics import "
        "column_bootstrapped_ks_test_p_value as ks\n"
        "print(ks.stats.ks_2samp([1, 2, 3], [1, 2, 3]).pvalue)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.split() == ["False", "1.0"]


def test_a_checked_column_named_like_a_row_alias_samples_whole_rows(tmp_path: Path) -> None:
    """The sample takes each row as a struct by the subquery's alias; a column called ``r`` (or
    any short name) must not be taken for the row."""
    path = tmp_path / "r.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA latest; CREATE TABLE latest.t AS SELECT range AS r, range * 2 AS b FROM range(5)")
    spec = ExpectationSpec("small_r", "UnexpectedRowsExpectation",
                           {"unexpected_rows_query": "SELECT r, b FROM {batch} WHERE r >= 3"}, "error", "r < 3")
    [outcome] = run_suite(path, "latest.t", "t", [spec])
    assert (outcome.error, outcome.unexpected_count) == (None, 2)
    assert outcome.details["unexpected_rows_sample"] == [{"r": 3, "b": 6}, {"r": 4, "b": 8}]
