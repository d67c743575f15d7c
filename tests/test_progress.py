"""The loader's progress hook: what a listener receives, and that it can never break a load."""

from __future__ import annotations

from assets.ingest import progress


def test_csv_progress_is_estimated_from_rows_and_capped_until_done(tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text("".join(f"C{i:06d},210102,网上办理\n" for i in range(10_000)), encoding="utf-8")
    size = path.stat().st_size
    seen: list[progress.Progress] = []
    with progress.listening(seen.append):
        progress.report("service_cases", "service_cases/cases.csv", 5_000, None, size, "read", path)
        progress.report("service_cases", "service_cases/cases.csv", 20_000, None, size, "read", path)
        progress.report("service_cases", "service_cases/cases.csv", 10_000, None, size, "done", path)
    half, over, done = seen
    assert abs(half.bytes_done - size / 2) < size * 0.01
    assert over.bytes_done == size - 1  # never 100% before the loader says so
    assert done.bytes_done == size and done.stage == "done"


def test_binary_files_report_rows_without_a_byte_estimate(tmp_path):
    path = tmp_path / "cases.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 100)
    seen: list[progress.Progress] = []
    with progress.listening(seen.append):
        progress.report("service_cases", "service_cases/cases.parquet", 42, None, 104, "read", path)
    assert seen[0].rows == 42 and seen[0].bytes_done is None


def test_a_failing_listener_never_reaches_the_loader(tmp_path):
    def broken(_event):
        raise RuntimeError("terminal gone")

    with progress.listening(broken):
        progress.report("org_units", "org_units/a.csv", 1, 1, 2, "read")
    progress.report("org_units", "org_units/a.csv", 1, 1, 2, "read")  # nobody listens: nothing happens
