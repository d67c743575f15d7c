"""The analysts' snapshot: published atomically, and from the third publish on by writing only
the blocks that changed into the spare, never into a file somebody still reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import pytest

from pipelines.resources import Warehouse
from warehouse.snapshot import BLOCK, DIGEST, manifest_path, spare_path
from warehouse.writer import writer_path


@pytest.fixture
def warehouse(tmp_path):
    warehouse = Warehouse(path=str(tmp_path / "wh" / "gm.duckdb"))
    with warehouse.writer() as con:  # a few MiB of rows that later runs leave alone
        con.execute("CREATE TABLE marts.big AS SELECT range AS id, md5(range::VARCHAR) AS h FROM range(1000000)")
        con.execute("CREATE TABLE marts.probe AS SELECT 1 AS v")
    return warehouse


def deliver(warehouse: Warehouse, v: int) -> None:
    with warehouse.writer() as con:
        con.execute("UPDATE marts.probe SET v = ?", [v])


def probe(path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT v FROM marts.probe").fetchall()[0][0]


def same_bytes(warehouse: Warehouse) -> bool:
    return warehouse.published.read_bytes() == writer_path(warehouse.published).read_bytes()


def test_the_third_publish_writes_only_the_changed_blocks(warehouse):
    first = warehouse.publish()
    assert not first.from_spare and first.bytes_written == first.bytes == warehouse.published.stat().st_size
    assert not spare_path(warehouse.published).exists()  # nothing was published before
    deliver(warehouse, 2)
    second = warehouse.publish()  # no spare yet: a full copy; the first file becomes the spare
    assert not second.from_spare and second.bytes_written == second.bytes
    assert spare_path(warehouse.published).exists() and manifest_path(spare_path(warehouse.published)).exists()
    deliver(warehouse, 3)
    third = warehouse.publish()
    assert third.from_spare and 0 < third.bytes_written < third.bytes / 2, third
    assert third.bytes > 8 * BLOCK  # enough blocks for the comparison to mean something
    assert same_bytes(warehouse) and probe(warehouse.published) == 3
    assert probe(spare_path(warehouse.published)) == 2  # the spare is the file published before
    with duckdb.connect(str(warehouse.published), read_only=True) as con:
        assert con.execute("SELECT count(*), sum(id) FROM marts.big").fetchall() == [(1000000, 499999500000)]


def test_a_spare_somebody_still_reads_is_never_written(warehouse):
    warehouse.publish()
    deliver(warehouse, 2)
    warehouse.publish()
    analyst = duckdb.connect(str(warehouse.published), read_only=True)  # holds the file with v = 2
    try:
        deliver(warehouse, 3)
        assert warehouse.publish().from_spare  # the spare (v = 1) is nobody's
        deliver(warehouse, 4)
        fourth = warehouse.publish()  # the spare is now the analyst's file: a full copy instead
        assert not fourth.from_spare and fourth.bytes_written == fourth.bytes
        assert analyst.execute("SELECT v FROM marts.probe").fetchall() == [(2,)]
    finally:
        analyst.close()
    assert same_bytes(warehouse) and probe(warehouse.published) == 4


def test_a_session_of_another_process_keeps_its_file(warehouse):
    warehouse.publish()
    deliver(warehouse, 2)
    warehouse.publish()
    reader = subprocess.Popen(  # an analyst's `govmetrics sql`, left open on the file with v = 2
        [sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
                               "print(con.execute('SELECT v FROM marts.probe').fetchall()[0][0], flush=True); "
                               "sys.stdin.read(); print(con.execute('SELECT v FROM marts.probe').fetchall()[0][0])",
         str(warehouse.published)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "2"
        for v in (3, 4):
            deliver(warehouse, v)
            snapshot = warehouse.publish()
        assert not snapshot.from_spare  # the fourth publish left the reader's file alone
        out, _ = reader.communicate("", timeout=60)
    finally:
        reader.kill()
    assert out.strip() == "2"
    assert same_bytes(warehouse) and probe(warehouse.published) == 4


def test_a_spare_changed_behind_the_manifest_is_copied_whole(warehouse):
    for v in (1, 2):
        deliver(warehouse, v)
        warehouse.publish()
    spare = spare_path(warehouse.published)
    with open(spare, "r+b") as f:  # damaged on disk after it was published
        f.seek(3 * BLOCK)
        f.write(b"\0" * 100)
    deliver(warehouse, 3)
    third = warehouse.publish()
    assert not third.from_spare and third.bytes_written == third.bytes
    assert same_bytes(warehouse) and probe(warehouse.published) == 3
    assert not any(p.name.endswith(".tmp") for p in warehouse.published.parent.iterdir())
    assert sorted(p.name for p in warehouse.published.parent.iterdir() if p.name.startswith(".")) == [
        ".gm.duckdb.blocks", ".gm.duckdb.spare", ".gm.duckdb.spare.blocks"]
    assert os.path.getsize(spare) > 0


def test_a_manifest_of_an_earlier_format_costs_one_full_copy(warehouse):
    """Manifests written before the digests became XXH3-128 (version 1, SHA-1) are not compared
    block by block with the new digests: the spare is copied whole once, then updated again."""
    for v in (1, 2):
        deliver(warehouse, v)
        warehouse.publish()
    spare_manifest = manifest_path(spare_path(warehouse.published))
    meta = json.loads(spare_manifest.read_text(encoding="utf-8"))
    digests = bytes.fromhex(meta.pop("xxh3_128"))
    blocks = len(digests) // DIGEST
    spare_manifest.write_text(json.dumps({**meta, "version": 1, "sha1": (b"\0" * 20 * blocks).hex()}), encoding="utf-8")
    deliver(warehouse, 3)
    third = warehouse.publish()
    assert not third.from_spare and third.bytes_written == third.bytes
    deliver(warehouse, 4)
    fourth = warehouse.publish()
    assert fourth.from_spare and fourth.bytes_written < fourth.bytes / 2
    assert same_bytes(warehouse) and probe(warehouse.published) == 4
