"""The whole `refresh` job on the bundled sample reproduces every published figure.

One real Dagster run (the job the README's `make run` runs) into a temp warehouse; the
expected values come from `data/sample/expected_kpis.json`, which the sample generator
computes from the rows it wrote, independently of the pipeline.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines.report import print_kpis
from warehouse.formatting import format_kpi
from warehouse.marts import load_catalogue

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
EXPECTED = json.loads((SAMPLE / "expected_kpis.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def run(sample_run):
    return sample_run


@pytest.fixture(scope="module")
def published(run):
    assert run["result"].success
    with duckdb.connect(str(run["warehouse"]), read_only=True) as con:
        yield con


def latest_city(con: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    """Each KPI city-wide: its value for the reference month, else its latest period."""
    reference_month = date.fromisoformat(EXPECTED["reference_period"] + "-01")
    rows = con.execute(
        """SELECT kpi_code, value, numerator, denominator, unit, period_grain, period_start
           FROM marts.kpi_values WHERE scope = 'city'
           QUALIFY row_number() OVER (PARTITION BY kpi_code
                                      ORDER BY (period_grain = 'month' AND period_start = ?) DESC,
                                               period_start DESC) = 1""", [reference_month]).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_every_kpi_equals_the_independently_computed_value(published):
    values = latest_city(published)
    missing = set(EXPECTED["kpis"]) - set(values)
    assert not missing, f"KPIs absent from marts.kpi_values: {sorted(missing)}"
    for code, expected in EXPECTED["kpis"].items():
        value, _, _, unit, *_ = values[code]
        actual = value / 100 if unit == "%" else value
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12), code


def test_reference_month_figures_are_dated_no_later_than_that_month(published):
    """March 2023 holds every KPI, each true for a date in or before March, never the load date."""
    month = date.fromisoformat(EXPECTED["reference_period"] + "-01")
    rows = dict(published.execute(
        """SELECT kpi_code, as_of FROM marts.kpi_values
           WHERE scope = 'city' AND period_grain = 'month' AND period_start = ?""", [month]).fetchall())
    assert set(EXPECTED["kpis"]) <= set(rows)
    assert max(rows.values()) == date(2023, 3, 31)
    registers = {"extranet_nodes": "extranet_nodes", "cloud_systems_hosted": "cloud_systems",
                 "departments_onboarded": "org_units", "item_online_rate": "service_items"}
    for code, dataset in registers.items():
        assert rows[code].isoformat() == EXPECTED["register_as_of"][dataset], code
    # the register snapshot is also the batch's period, and no batch fell back to its delivery date
    periods = dict(published.execute(
        """SELECT dataset, period_max FROM quality.load_batches
           WHERE dataset IN ('org_units', 'service_items', 'extranet_nodes', 'cloud_systems')""").fetchall())
    assert periods == EXPECTED["register_as_of"]
    assert published.execute(
        "SELECT count(*) FROM quality.load_batches WHERE reason LIKE '%送达日期%'").fetchone()[0] == 0


def test_snapshot_figures_exist_for_every_month_after_the_first_snapshot(published):
    months = published.execute(
        """SELECT min(period_start), max(period_start), count(*), min(as_of), max(as_of)
           FROM marts.kpi_values WHERE kpi_code = 'extranet_nodes' AND scope = 'city'""").fetchone()
    # from April 2022 (the register is as of 2022-04-28) to March 2023, the same snapshot
    assert months == (date(2022, 4, 1), date(2023, 3, 1), 12, date(2022, 4, 28), date(2022, 4, 28))


def test_every_month_the_data_supports_has_its_kpis(published):
    """Cumulative figures for every month of the monthly reports and records (2019-01..2023-03),
    flows for every record month, register figures from their first snapshot on."""
    def months(code: str) -> list[date]:
        return [r[0] for r in published.execute(
            """SELECT period_start FROM marts.kpi_values
               WHERE kpi_code = ? AND scope = 'city' AND period_grain = 'month' ORDER BY 1""",
            [code]).fetchall()]

    cumulative = months("case_volume_cumulative")
    assert cumulative[0] == date(2019, 1, 1) and cumulative[-1] == date(2023, 3, 1)
    assert len(cumulative) == 51  # every month, none skipped
    assert months("on_time_completion_rate") == [date(2022, 12, 1), date(2023, 1, 1),
                                                 date(2023, 2, 1), date(2023, 3, 1)]
    assert months("item_online_rate") == [date(2023, 3, 1)]  # the item register is of 2023-03-31
    assert months("cloud_systems_hosted")[0] == date(2022, 4, 1)
    # December 2022's cumulative total is March's minus the records of 2023
    dec, mar = (published.execute(
        """SELECT value FROM marts.kpi_values WHERE kpi_code = 'case_volume_cumulative'
           AND scope = 'city' AND period_grain = 'month' AND period_start = ?""", [m]).fetchone()[0]
        for m in (date(2022, 12, 1), date(2023, 3, 1)))
    per_month = EXPECTED["details"]["record_cases_per_month"]
    assert mar - dec == sum(per_month[m] for m in ("2023-01", "2023-02", "2023-03"))


def test_published_figures_print_as_the_bureau_writes_them(published):
    values = latest_city(published)
    for kpi in load_catalogue():
        if kpi["reference"] is None:
            continue
        value, _, _, unit, *_ = values[kpi["code"]]
        assert format_kpi(value, unit) == format_kpi(kpi["reference"], unit), kpi["code"]
    assert format_kpi(values["case_volume_cumulative"][0], "件") == "7085.4万件"
    assert format_kpi(values["records_aggregated"][0], "条") == "49亿条"
    assert format_kpi(values["item_full_online_share"][0], "%") == "99.4%"


def test_the_main_command_prints_every_reference_figure(run, published, capsys):
    print_kpis(run["warehouse"])
    printed = capsys.readouterr().out
    for shown in ["7085.4万件", "4652.2万条", "99.4%", "70.3%", "94.2%", "433个", "2413个", "3991个",
                  "20G", "241个", "80%", "9339条", "49亿条", "3亿元"]:
        assert shown in printed
    table, legend = printed.split("公开数：", 1)
    assert "≠" not in table and "≠ 不一致" in legend  # no figure differs; the legend explains the marks


def test_every_file_is_accounted_for_row_by_row(published):
    batches = {r[0]: r[1:] for r in published.execute(
        """SELECT source_path, rows_read, rows_loaded, rows_quarantined, rows_skipped, batch_id
           FROM quality.load_batches""").fetchall()}
    assert set(batches) == set(EXPECTED["files"])
    for path, facts in EXPECTED["files"].items():
        read, loaded, quarantined, skipped, batch_id = batches[path]
        assert (read, loaded, quarantined, skipped) == (
            facts["rows_read"], facts["rows_loaded"], facts["rows_quarantined"], facts["rows_skipped"]), path
        rules = dict(published.execute("SELECT source_row, rule FROM quality.quarantine WHERE batch_id = ?",
                                       [batch_id]).fetchall())
        assert rules == {b["row"]: b["rule"] for b in facts["bad_rows"]}, path


def test_overlapping_months_reconcile_and_no_blocking_check_fails(published):
    failed = published.execute("""SELECT dataset, expectation FROM quality.check_results
                                  WHERE NOT success AND severity = 'error'""").fetchall()
    assert failed == []
    ok = published.execute("""SELECT bool_and(success) FROM quality.check_results
                              WHERE expectation = 'reconciles_with_case_records'""").fetchall()[0][0]
    assert ok is True


def test_exports_and_the_latest_months_bulletin_are_written(run):
    manifest = json.loads((run["exports"] / "_manifest.json").read_text(encoding="utf-8"))
    assert "kpi_values" in json.dumps(manifest)
    month = EXPECTED["reference_period"]
    assert run["bulletin"].success and run["bulletin"].dagster_run.tags["dagster/partition"] == month
    folder = run["exports"] / "bulletin" / month
    html = (folder / "bulletin.html").read_text(encoding="utf-8")
    for shown in ["7085.4万件", "4652.2万条", "49亿条", "99.4%", "3991个"]:
        assert shown in html
    # a register's figure says the date its file describes (the extranet list is dated 2022-04-28)
    assert "2022年4月28日" in html
    # issue 7: the March 2023 bulletin states no date after March 2023 for any figure
    year, last = map(int, month.split("-"))
    for document in (html, (folder / "internal.html").read_text(encoding="utf-8")):
        stated = {(int(y), int(m)) for y, m in re.findall(r"(\d{4})年(\d{1,2})月", document)}
        assert stated and max(stated) <= (year, last), sorted(stated)[-3:]
    assert f"{year}年{last}月" in (run["exports"] / "bulletin" / "index.html").read_text(encoding="utf-8")


def test_no_applicant_id_or_phone_in_clear_in_any_output(run):
    """Every clear ID/phone number from the sample's case files is absent from every output and event."""
    from assets.ingest.normalise import match_headers
    from assets.ingest.readers import read_file
    from expectations.contract import get_contract

    contract = get_contract("service_cases")
    secrets: set[str] = set()
    for path in sorted((SAMPLE / "landing" / "service_cases").iterdir()):
        for table in read_file(path):
            match = match_headers(table, contract)
            personal = [h for h, col in match.mapping.items() if col in contract.pii_columns]
            for chunk in table.chunks:
                for header in personal:
                    secrets.update(v for v in chunk[header].drop_nulls().to_list() if len(v) >= 11)
    assert len(secrets) > 1000  # the sample really carries personal data to protect

    root = run["warehouse"].parent.parent
    outputs = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in outputs) and any(p.suffix == ".duckdb" for p in outputs)
    pattern = re.compile("|".join(sorted(map(re.escape, secrets))).encode())
    for path in outputs:
        found = pattern.search(path.read_bytes())
        assert found is None, f"personal data in clear in {path}"
    events = "\n".join(str(e) for r in (run["result"], run["bulletin"]) for e in r.all_events).encode()
    assert pattern.search(events) is None, "personal data in Dagster events/metadata"
