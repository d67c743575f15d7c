"""Parquet exports: what the report generators read (spec: warehouse.md, "Report generators")."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from expectations.contract import all_contracts
from tests import sample_warehouse
from warehouse import exports
from warehouse.exports import SchemaChangeError, export_parquet

PII = {"applicant_id_no", "applicant_phone"}


@pytest.fixture()
def con(tmp_path):
    con = sample_warehouse.connect_copy(tmp_path / "db")
    yield con
    con.close()


@pytest.fixture()
def exported(con, tmp_path):
    out = tmp_path / "exports"
    summary = export_parquet(con, out, "run-1")
    return out, summary


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One export of the sample warehouse, for the tests that only read: (con, dir, summary)."""
    folder = tmp_path_factory.mktemp("shared")
    con = sample_warehouse.connect_copy(folder / "db")
    summary = export_parquet(con, folder / "exports", "run-1")
    yield con, folder / "exports", summary
    con.close()


def _manifest(out: Path) -> dict:
    return json.loads((out / "_manifest.json").read_text(encoding="utf-8"))


def _expected_tables(con) -> dict[str, str]:
    marts = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'"
        ).fetchall()
    ]
    core = [c.name for c in all_contracts().values() if not c.pii_columns]
    present = {f"{s}.{t}" for s, t in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
        "SELECT schema_name, view_name FROM duckdb_views()").fetchall()}
    quality = {t: src for t, (src, _) in exports.QUALITY_EXPORTS.items() if src in present}
    return {**{t: f"marts.{t}" for t in marts}, **{d: f"latest.{d}" for d in core}, **quality}


def _rows(table: pa.Table, columns: list[str]) -> list[tuple]:
    rows = [tuple(r[c] for c in columns) for r in table.select(columns).to_pylist()]
    return sorted(rows, key=repr)


def _warehouse(con, source: str, columns: list[str]) -> pa.Table:
    cols = ", ".join(f'"{c}"' for c in columns)
    return con.sql(f"SELECT {cols} FROM {source}").to_arrow_table()


def test_every_table_without_personal_data_is_exported(shared):
    con, out, summary = shared
    expected = _expected_tables(con)
    manifest = _manifest(out)
    assert set(manifest["tables"]) == set(expected)
    assert "service_cases" not in manifest["tables"] and not (out / "service_cases").exists()
    assert {p.name for p in out.iterdir() if p.is_dir()} == set(expected) | {"runs", "latest"}
    assert summary["rows"] == sum(t["rows"] for t in manifest["tables"].values())
    assert summary["files"] == sum(len(t["files"]) for t in manifest["tables"].values())
    assert set(summary["tables"]) == set(expected)
    for name, entry in manifest["tables"].items():
        assert entry["source"] == expected[name]


@pytest.mark.parametrize(
    "table",
    [
        "kpi_values",
        "service_volume_monthly",
        "kpi_catalogue",
        "org_units",
        "service_items",
        "extranet_nodes",
        "cloud_systems",
        "case_volume_monthly",
        "indicators",
        "service_reviews",
    ],
)
def test_read_back_row_for_row(shared, table):
    con, out, _ = shared
    entry = _manifest(out)["tables"][table]
    columns = list(entry["schema"])
    expected = _warehouse(con, entry["source"], columns)
    assert len(expected) == entry["rows"]

    # pyarrow, hive partitioning
    part = entry["partitioning"]
    partitioning = (
        ds.partitioning(pa.schema([(part["key"], pa.string())]), flavor="hive") if part else None
    )
    via_arrow = ds.dataset(out / table, format="parquet", partitioning=partitioning).to_table()
    assert _rows(via_arrow, columns) == _rows(expected, columns)
    assert via_arrow.num_rows == expected.num_rows
    # the helper report generators may use gives the same
    assert _rows(exports.dataset(out, table).to_table(), columns) == _rows(expected, columns)

    # DuckDB, hive partitioning
    glob = (out / table).as_posix() + "/**/*.parquet"
    via_duckdb = duckdb.sql(
        f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true)"
    ).to_arrow_table()
    assert _rows(via_duckdb, columns) == _rows(expected, columns)
    # the column types are the warehouse's (the key is an extra column, never a replaced one)
    wh_types = {r[0]: r[1] for r in con.sql(f"DESCRIBE SELECT * FROM {entry['source']}").fetchall()}
    ex_types = {
        r[0]: r[1]
        for r in duckdb.sql(
            f"DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning = true)"
        ).fetchall()
    }
    for c in columns:
        expected_type = "VARCHAR" if wh_types[c] == "JSON" else wh_types[c]
        assert ex_types[c] == expected_type, c
    if part:
        assert ex_types[part["key"]] == "VARCHAR"


def test_partitioning(shared):
    con, out, _ = shared
    manifest = _manifest(out)["tables"]
    assert manifest["service_volume_monthly"]["partitioning"]["key"] == "period_month"
    assert manifest["service_volume_monthly"]["partitioning"]["derived_from"] == "month"
    assert (out / "service_volume_monthly" / "period_month=2023-03").is_dir()
    assert manifest["kpi_values"]["partitioning"]["key"] == "grain"
    assert {p.name for p in (out / "kpi_values").iterdir()} == {
        f"grain={g}"
        for (g,) in con.execute("SELECT DISTINCT period_grain FROM marts.kpi_values").fetchall()
    }
    assert manifest["case_volume_monthly"]["partitioning"]["key"] == "period_month"
    assert manifest["service_reviews"]["partitioning"]["derived_from"] == "reviewed_at"
    for table in (
        "org_units",
        "service_items",
        "extranet_nodes",
        "cloud_systems",
        "kpi_catalogue",
        "indicators",
    ):
        assert manifest[table]["partitioning"] is None
        assert [f["path"] for f in manifest[table]["files"]] == [f"{table}/part-0.parquet"]
    # the key agrees with the column it comes from, in every row
    glob = (out / "service_volume_monthly").as_posix() + "/**/*.parquet"
    assert duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true) "
        f"WHERE period_month <> strftime(month, '%Y-%m')"
    ).fetchall() == [(0,)]
    glob = (out / "kpi_values").as_posix() + "/**/*.parquet"
    assert duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true) "
        f"WHERE grain <> period_grain"
    ).fetchall() == [(0,)]


def test_manifest(shared):
    con, out, _ = shared
    manifest = _manifest(out)
    assert manifest["run_id"] == "run-1" and manifest["written_at"]
    for name, entry in manifest["tables"].items():
        assert entry["run_id"] == "run-1" and entry["written_at"] == manifest["written_at"]
        assert entry["compression"] == "zstd"
        assert entry["files"], name
        assert sum(f["rows"] for f in entry["files"]) == entry["rows"]
        for f in entry["files"]:
            path = out / f["path"]
            assert not Path(f["path"]).is_absolute() and path.is_file()
            meta = pq.ParquetFile(path).metadata
            assert meta.num_rows == f["rows"] and path.stat().st_size == f["bytes"]
            if meta.num_row_groups:
                assert meta.row_group(0).column(0).compression == "ZSTD"
            file_schema = pq.read_schema(path)
            assert file_schema.names == list(entry["schema"])
            assert {
                n: exports.type_string(file_schema.field(n).type) for n in file_schema.names
            } == entry["schema"]
        on_disk = sorted(p.relative_to(out).as_posix() for p in (out / name).rglob("*.parquet"))
        assert on_disk == sorted(f["path"] for f in entry["files"])
    kv = manifest["tables"]["kpi_values"]["schema"]
    assert (
        kv["batch_ids"] == "list<string>"
        and kv["period_start"] == "date32[day]"
        and kv["value"] == "double"
    )
    assert (
        manifest["tables"]["kpi_values"]["rows"]
        == con.execute("SELECT count(*) FROM marts.kpi_values").fetchone()[0]
    )


def test_no_personal_data_in_any_file(shared):
    con, out, _ = shared
    hashes = {
        h
        for row in con.execute(
            "SELECT applicant_id_no, applicant_phone FROM core.service_cases"
        ).fetchall()
        for h in row
    }
    files = list(out.rglob("*.parquet"))
    assert files
    for path in files:
        schema = pq.read_schema(path)
        assert not PII & set(schema.names), path
        assert "extras" not in schema.names  # unreviewed department columns are not published
        table = pq.read_table(path)
        for column in table.columns:
            if pa.types.is_string(column.type):
                assert not hashes & set(column.to_pylist()), path


def test_only_current_rows_of_registers(shared):
    con, out, _ = shared
    table = pq.read_table(out / "extranet_nodes" / "part-0.parquet")
    assert "valid_to" not in table.column_names
    assert (
        table.num_rows
        == con.execute("SELECT count(*) FROM latest.extranet_nodes").fetchone()[0]
        == 4
    )
    n1 = [r for r in table.to_pylist() if r["node_id"] == "N0001"]
    assert len(n1) == 1 and n1[0]["unit_name"] == "沈阳市大数据管理局"


def test_re_export_replaces_and_removes_stale_files(con, exported, tmp_path):
    out, _ = exported
    con.execute("DELETE FROM marts.service_volume_monthly WHERE month = DATE '2023-03-01'")
    con.execute("DROP TABLE marts.kpi_catalogue")
    summary = export_parquet(con, out, "run-2")
    manifest = _manifest(out)
    assert manifest["run_id"] == "run-2"
    assert not (out / "service_volume_monthly" / "period_month=2023-03").exists()
    assert (out / "service_volume_monthly" / "period_month=2023-02").exists()
    assert not (out / "kpi_catalogue").exists() and "kpi_catalogue" not in manifest["tables"]
    assert summary["removed"] == ["kpi_catalogue"] and manifest["removed_tables"] == [
        "kpi_catalogue"
    ]
    assert all(e["run_id"] == "run-2" for e in manifest["tables"].values())
    # nothing left behind by the swap
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".exports")]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_type_change_raises_and_leaves_the_export_alone(con, exported, tmp_path):
    out, _ = exported
    before = (out / "_manifest.json").read_text(encoding="utf-8")
    files_before = sorted(p.as_posix() for p in out.rglob("*"))
    con.execute("ALTER TABLE marts.service_volume_monthly ALTER COLUMN cases TYPE DOUBLE")
    with pytest.raises(SchemaChangeError, match=r"service_volume_monthly.*cases: int64 -> double"):
        export_parquet(con, out, "run-2")
    assert (out / "_manifest.json").read_text(encoding="utf-8") == before
    assert sorted(p.as_posix() for p in out.rglob("*")) == files_before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".exports")]


def test_schema_only_grows(con, exported):
    out, _ = exported
    con.execute("ALTER TABLE marts.kpi_values ADD COLUMN quality_flag VARCHAR")
    con.execute("UPDATE marts.kpi_values SET quality_flag = 'ok' WHERE kpi_code = 'extranet_nodes'")
    con.execute("ALTER TABLE marts.kpi_values DROP COLUMN computed_at")
    summary = export_parquet(con, out, "run-2")
    entry = _manifest(out)["tables"]["kpi_values"]
    names = list(entry["schema"])
    assert names[-1] == "quality_flag" and entry["schema"]["quality_flag"] == "string"
    assert (
        "computed_at" in names and entry["schema"]["computed_at"] == "timestamp[us]"
    )  # kept, in place
    assert names.index("computed_at") < names.index("quality_flag")
    assert [c["column"] for c in entry["columns_added"]] == ["quality_flag"]
    assert entry["columns_added"][0]["run_id"] == "run-2"
    assert entry["columns_kept"] == ["computed_at"]
    assert summary["tables"]["kpi_values"]["columns_added"] == ["quality_flag"]
    table = exports.dataset(out, "kpi_values").to_table()
    assert table.column("computed_at").null_count == table.num_rows
    assert sorted(v for v in table.column("quality_flag").to_pylist() if v) == ["ok"]
    # the next run keeps the history of added columns and the same schema
    export_parquet(con, out, "run-3")
    again = _manifest(out)["tables"]["kpi_values"]
    assert again["schema"] == entry["schema"]
    assert [c["run_id"] for c in again["columns_added"]] == ["run-2"]


def test_empty_table_still_has_its_schema(con, tmp_path):
    con.execute("DELETE FROM marts.kpi_values")
    out = tmp_path / "exports"
    export_parquet(con, out, "run-1")
    entry = _manifest(out)["tables"]["kpi_values"]
    assert entry["rows"] == 0 and len(entry["files"]) == 1
    assert pq.read_schema(out / entry["files"][0]["path"]).names == list(entry["schema"])
    assert "period_start" in entry["schema"]


def test_exchange_swaps_directories(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "new.txt").write_text("new")
    (b / "old.txt").write_text("old")
    exports._swap_in(a, b, tmp_path / "trash")
    assert (b / "new.txt").read_text() == "new"
    assert not (b / "old.txt").exists()


def test_large_table_streams_into_several_files(con, tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "MAX_ROWS_PER_FILE", 1000)
    monkeypatch.setattr(exports, "MAX_ROWS_PER_GROUP", 500)
    monkeypatch.setattr(exports, "BATCH_ROWS", 256)
    con.execute("""
        INSERT INTO marts.service_volume_monthly
        SELECT DATE '2024-01-01', 'D' || (i % 50)::VARCHAR, '210102', 'records',
               i, i, i, i, i, 0, 0, ['b-x']
        FROM range(5000) t(i)""")
    out = tmp_path / "exports"
    export_parquet(con, out, "run-1")
    entry = _manifest(out)["tables"]["service_volume_monthly"]
    files = [f for f in entry["files"] if "period_month=2024-01" in f["path"]]
    assert len(files) == 5 and sum(f["rows"] for f in files) == 5000
    assert (
        entry["rows"]
        == con.execute("SELECT count(*) FROM marts.service_volume_monthly").fetchone()[0]
    )
    assert (
        date(2024, 1, 1)
        in exports.dataset(out, "service_volume_monthly")
        .to_table(filter=ds.field("period_month") == "2024-01")
        .column("month")
        .to_pylist()
    )


def test_records_are_written_month_by_month(con, tmp_path):
    """Reviews arriving out of time order, and one without a time: each month's directory holds
    exactly that month's reviews, none twice, the timeless one in hive's default partition."""
    con.execute("""
        INSERT INTO core.service_reviews (review_no, case_no, rating, channel, reviewed_at, batch_id, valid_from)
        SELECT 'PJ-T' || i, 'SY-T', 5, 'APP',
               CASE WHEN i = 0 THEN NULL ELSE TIMESTAMP '2031-01-31 23:59:59' + to_days((i % 3)::INTEGER) END,
               'b-t', now()
        FROM range(300) t(i)""")
    out = tmp_path / "exports"
    export_parquet(con, out, "run-1")
    entry = _manifest(out)["tables"]["service_reviews"]
    assert entry["rows"] == con.execute("SELECT count(*) FROM latest.service_reviews").fetchone()[0]
    glob = (out / "service_reviews" / "**" / "*.parquet").as_posix()
    by_month = dict(con.execute(
        f"SELECT period_month, count(*) FROM read_parquet('{glob}', hive_partitioning = true) "
        f"WHERE review_no LIKE 'PJ-T%' GROUP BY ALL").fetchall())
    assert by_month == {"2031-01": 99, "2031-02": 200, None: 1}
    assert con.execute(
        f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true) "
        f"WHERE period_month <> strftime(reviewed_at, '%Y-%m')").fetchone()[0] == 0
    assert con.execute(
        f"SELECT count(DISTINCT review_no) = count(*) FROM read_parquet('{glob}')").fetchone()[0]


def test_unchanged_months_are_linked_not_written_again(con, tmp_path):
    """A month of a large table whose rows and file schema are those of the previous export is
    the previous export's file (a hard link); a month with one changed row is written again."""
    con.execute("""
        INSERT INTO core.service_reviews (review_no, case_no, rating, channel, reviewed_at, batch_id, valid_from)
        SELECT 'PJ-U' || i, 'SY-U', 5, 'APP',
               CASE WHEN i = 0 THEN NULL ELSE TIMESTAMP '2031-01-15 10:00:00' + to_days((i % 40)::INTEGER) END,
               'b-u', now()
        FROM range(300) t(i)""")
    out = tmp_path / "exports"
    first = export_parquet(con, out, "run-1")
    before = {f["path"]: (out / f["path"]).stat().st_ino for f in _manifest(out)["tables"]["service_reviews"]["files"]}
    months = len(_manifest(out)["tables"]["service_reviews"]["partitions"])
    assert first["tables"]["service_reviews"]["partitions_reused"] == 0 and months >= 3

    con.execute("UPDATE core.service_reviews SET rating = 1 WHERE review_no = 'PJ-U1'")  # 2031-01
    second = export_parquet(con, out, "run-2")
    entry = _manifest(out)["tables"]["service_reviews"]
    assert second["tables"]["service_reviews"]["partitions_reused"] == months - 1
    after = {f["path"]: (out / f["path"]).stat().st_ino for f in entry["files"]}
    rewritten = {p for p in after if after[p] != before.get(p)}
    assert rewritten == {"service_reviews/period_month=2031-01/part-0.parquet"}
    assert entry["rows"] == con.execute("SELECT count(*) FROM latest.service_reviews").fetchone()[0]
    glob = (out / "service_reviews" / "**" / "*.parquet").as_posix()
    assert con.execute(f"SELECT rating FROM read_parquet('{glob}') WHERE review_no = 'PJ-U1'").fetchall() == [(1,)]
    assert entry["period_range"]["min"] == first_period(con) and entry["period_range"]["max"].startswith("2031-02")
    exported = con.execute(f"SELECT count(*), count(DISTINCT review_no) FROM read_parquet('{glob}')").fetchone()
    assert exported == (entry["rows"], entry["rows"])


def first_period(con) -> str:
    return str(con.execute("SELECT min(reviewed_at) FROM latest.service_reviews").fetchone()[0])


def test_every_exported_column_carries_its_chinese_label_unit_and_description(sample_run):
    """What a BI tool sees opening any file the real run exported, with pyarrow: no bare snake_case names."""
    out = sample_run["exports"]
    manifest = _manifest(out)
    han = re.compile(r"[\u4e00-\u9fff]")
    for table, entry in manifest["tables"].items():
        for f in entry["files"]:
            schema = pq.read_schema(out / f["path"])
            assert han.search(schema.metadata[b"description"].decode()), (table, "table description")
            for field in schema:
                meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
                assert han.search(meta.get("label_zh", "")), (table, field.name, meta)
                assert meta.get("unit"), (table, field.name, meta)
                assert meta.get("description"), (table, field.name, meta)
    reviews = pq.read_schema(next((out / "case_volume_monthly").rglob("*.parquet")))
    assert reviews.field("cases").metadata[b"unit"].decode() == "件"
    assert reviews.field("cases").metadata[b"label_zh"].decode() == "办件量"
    volume = pq.read_schema(next((out / "service_volume_monthly").rglob("*.parquet")))
    assert volume.field("reviews").metadata[b"unit"].decode() == "条"


def test_manifest_gives_period_range_and_data_as_of(sample_run):
    out = sample_run["exports"]
    con = duckdb.connect(str(sample_run["warehouse"]), read_only=True)
    tables = _manifest(out)["tables"]
    lo, hi = con.execute("SELECT min(month)::VARCHAR, max(month)::VARCHAR FROM marts.service_volume_monthly"
                         ).fetchall()[0]
    assert tables["service_volume_monthly"]["period_range"] == {"column": "month", "min": lo, "max": hi}
    newest = con.execute("SELECT max(received_at)::VARCHAR FROM quality.load_batches "
                         "WHERE dataset = 'org_units' AND status <> 'duplicate'").fetchall()[0][0]
    assert tables["org_units"]["data_as_of"] == newest
    assert tables["kpi_values"]["columns"]["value"]["label_zh"] == "指标值"
    assert tables["quarantine"]["columns"]["department"]["label_zh"] == "报送部门名称"
    con.close()


def test_quality_tables_are_exported_without_personal_data(shared):
    _, out, _ = shared
    tables = _manifest(out)["tables"]
    assert {"load_batches", "check_results"} <= set(tables)
    for entry in tables.values():
        assert "raw_values" not in entry["schema"] and not PII & set(entry["schema"])


def test_each_run_is_kept_in_a_dated_folder_with_latest_and_retention(con, tmp_path):
    out = tmp_path / "exports"
    folders = [Path(export_parquet(con, out, f"run-{i}", keep_runs=2)["run_folder"]) for i in range(3)]
    kept = sorted(p.name for p in (out / "runs").iterdir())
    assert kept == sorted(p.name for p in folders[1:])
    assert (out / "latest").resolve() == folders[-1].resolve()
    manifest = json.loads((out / "latest" / "_manifest.json").read_text(encoding="utf-8"))
    assert manifest["run_id"] == "run-2"
    first = manifest["tables"]["kpi_values"]["files"][0]["path"]
    assert pq.read_table(out / "latest" / first).num_rows == pq.read_table(out / first).num_rows
