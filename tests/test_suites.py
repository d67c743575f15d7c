"""The suite derived from each contract: deterministic, unique names, cheap to import."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from expectations.contract import all_contracts, get_contract
from expectations.suites import ERROR, WARN, ExpectationSpec, extra_specs, suite_for

ROOT = Path(__file__).resolve().parents[1]
GX_TYPES = {
    "ExpectTableRowCountToBeBetween", "ExpectColumnValuesToNotBeNull",
    "ExpectColumnValuesToBeInSet", "ExpectColumnValuesToBeBetween", "UnexpectedRowsExpectation",
}


@pytest.mark.parametrize("dataset", sorted(all_contracts()))
def test_suite_is_deterministic_with_unique_snake_case_names(dataset: str) -> None:
    contract = get_contract(dataset)
    specs = suite_for(contract)
    assert specs == suite_for(contract)
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    for spec in specs:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.name), spec.name
        assert spec.gx_type in GX_TYPES
        assert spec.severity in (ERROR, WARN)
        assert spec.description and "\n" not in spec.description
        json.dumps(spec.kwargs)  # plain data
        if spec.gx_type == "UnexpectedRowsExpectation":
            assert "{batch}" in spec.kwargs["unexpected_rows_query"]
    assert names[:2] == ["row_count_positive", "keys_unique"]


def test_service_cases_suite() -> None:
    specs = {s.name: s for s in suite_for(get_contract("service_cases"))}
    assert specs["keys_unique"].kwargs == {"unexpected_rows_query": (
        'SELECT r."case_no" FROM {batch} AS r SEMI JOIN (SELECT "case_no" FROM {batch} WHERE "case_no" IS NOT NULL '
        'GROUP BY ALL HAVING count(*) > 1) AS d ON r."case_no" IS NOT DISTINCT FROM d."case_no"')}
    assert specs["case_no_not_null"].gx_type == "ExpectColumnValuesToNotBeNull"
    channels = ["网上办理", "窗口办理", "移动端", "自助终端"]
    assert specs["channel_in_set"].kwargs["value_set"] == channels
    ref = specs["item_code_references_service_items"]
    assert ref.severity == ERROR and 'latest."service_items"' in ref.kwargs["unexpected_rows_query"]
    rule = specs["rule_finished_after_accepted"].kwargs["unexpected_rows_query"]
    # the key and the columns the rule names, not every column of the table
    assert rule == ('SELECT "case_no", "applied_at", "accepted_at", "finished_at" FROM {batch} WHERE NOT '
                    "(finished_at IS NULL OR finished_at >= coalesce(accepted_at, applied_at))")
    # The pattern's braces are escaped for GX's str.format substitution of {batch}.
    pattern = specs["region_code_matches_pattern"].kwargs["unexpected_rows_query"]
    assert pattern.format(batch="t").endswith("'^[0-9]{6}([0-9]{3}([0-9]{3})?)?$')")
    assert "applicant_id_no_not_null" not in specs  # optional column
    assert specs["row_count_positive"].severity == WARN  # an undelivered dataset must not block the others
    assert all(s.severity == ERROR for n, s in specs.items() if n != "row_count_positive")


def test_compound_keys_ranges_and_flagged_references() -> None:
    items = {s.name: s for s in suite_for(get_contract("service_items"))}
    # one row per item version per register date (as_of): each snapshot is kept
    assert items["keys_unique"].gx_type == "UnexpectedRowsExpectation"
    assert 'r."as_of" IS NOT DISTINCT FROM d."as_of"' in items["keys_unique"].kwargs["unexpected_rows_query"]
    assert items["keys_unique"].description.endswith("的组合在当前数据中不能重复")
    assert items["promised_days_between"].kwargs == {
        "column": "promised_days", "min_value": 0, "max_value": 365}

    reviews = {s.name: s for s in suite_for(get_contract("service_reviews"))}
    assert reviews["rating_between"].kwargs == {"column": "rating", "min_value": 1, "max_value": 5}
    # on_missing_reference: flag
    assert reviews["case_no_references_service_cases"].severity == WARN
    assert "rectification_not_null" not in reviews

    monthly = {s.name: s for s in suite_for(get_contract("case_volume_monthly"))}
    assert monthly["cases_between"].kwargs == {"column": "cases", "min_value": 0}
    recon = monthly["reconciles_with_case_records"]
    assert recon is extra_specs["case_volume_monthly"][0]
    assert recon.severity == ERROR and recon.gx_type == "UnexpectedRowsExpectation"
    assert list(monthly)[-1] == "reconciles_with_case_records"


def test_spec_is_hashable_and_frozen() -> None:
    spec = suite_for(get_contract("org_units"))[0]
    assert isinstance(spec, ExpectationSpec)
    hash(spec)
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]


def test_import_does_not_load_great_expectations() -> None:
    code = (
        "import sys; import expectations.suites as s, expectations.gx_runner as r; "
        "from expectations.contract import all_contracts; "
        "[s.suite_for(c) for c in all_contracts().values()]; "
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
