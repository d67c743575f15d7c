"""The peer: the pandas + Great Expectations script a team would write first.

Reads the case export with pandas, parses the three timestamps, replaces ID and phone numbers
by HMAC-SHA256 (hashlib, one value at a time), validates 8 expectations with GX on pandas,
and inserts the frame into a DuckDB file. No quarantine, no history, no marts: the least a
first version does. ``bench_refresh.py`` runs it on the same file as the pipeline.

Usage: ``python bench/peer_pandas_gx.py CASES.csv WORK_DIR [ENCODING]``; prints one JSON line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from assets.ingest.batch import peak_rss_mib  # noqa: E402  (this process's own peak, as every side reports it)


def main(csv: str, work: str, encoding: str = "utf-8") -> dict:
    started = time.perf_counter()
    import duckdb
    import great_expectations as gx
    import pandas as pd

    df = pd.read_csv(csv, dtype=str, encoding=encoding, keep_default_na=False)
    df.columns = ["case_no", "item_code", "dept_code", "region_code", "channel", "applied_at", "accepted_at",
                  "finished_at", "status", "full_online", "applicant_id_no", "applicant_phone"]
    for col in ("applied_at", "accepted_at"):
        df[col] = pd.to_datetime(df[col], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    df["finished_at"] = pd.to_datetime(df["finished_at"], format="%Y/%m/%d %H:%M", errors="coerce")
    df["full_online"] = df["full_online"].map({"是": True, "否": False})
    key = b"bench"
    for col in ("applicant_id_no", "applicant_phone"):
        df[col] = [hmac.new(key, v.encode(), hashlib.sha256).hexdigest() if v else None for v in df[col]]

    context = gx.get_context(mode="ephemeral")
    batch = (context.data_sources.add_pandas("peer").add_dataframe_asset("cases")
             .add_batch_definition_whole_dataframe("all"))
    e = gx.expectations
    suite = context.suites.add(gx.ExpectationSuite(name="cases", expectations=[
        e.ExpectColumnValuesToNotBeNull(column="case_no"),
        e.ExpectColumnValuesToBeUnique(column="case_no"),
        e.ExpectColumnValuesToNotBeNull(column="applied_at"),
        e.ExpectColumnValuesToBeInSet(column="channel", value_set=["网上办理", "窗口办理", "移动端", "自助终端"]),
        e.ExpectColumnValuesToBeInSet(column="status", value_set=["已办结", "在办", "不予受理", "退回"]),
        e.ExpectColumnValuesToMatchRegex(column="region_code", regex=r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$"),
        e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="finished_at", column_B="accepted_at", or_equal=True,
                                                  ignore_row_if="either_value_is_missing"),
        e.ExpectTableRowCountToBeBetween(min_value=1),
    ]))
    result = batch.get_batch(batch_parameters={"dataframe": df}).validate(suite)

    with duckdb.connect(str(Path(work) / "peer.duckdb")) as con:
        con.register("frame", df)
        con.execute("CREATE TABLE service_cases AS SELECT * FROM frame")
        rows = con.execute("SELECT count(*) FROM service_cases").fetchall()[0][0]
    return {"seconds": time.perf_counter() - started, "rows": rows,
            "peak_mib": peak_rss_mib(),
            "expectations_passed": sum(r.success for r in result.results), "expectations": len(result.results)}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
