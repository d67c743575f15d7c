"""The analysts' snapshot: the working file, checkpointed, published with one atomic rename.

Analysts and the bulletin open the published file read-only, so they never meet the writer's
lock, and a run that dies half-way publishes nothing. A session that holds the previous file
keeps reading it (its inode) until it reopens.

Copying the whole working file every run costs what the warehouse weighs, not what the run
changed: 7.85 GB at full volume, 12-36 s on this machine, longer than loading a monthly
delivery. So the file a publish replaces is kept beside it as the *spare*
(``.<name>.spare``), and the publish after next brings the spare up to date by writing only
the blocks that differ, then swaps it in:

* every published file has a manifest (``.<name>.blocks``): the XXH3-128 digest of each 1 MiB block,
  and the file's inode, size and modification time as written;
* publishing reads the working file block by block and writes into the target only the
  blocks whose digest differs from the target's manifest: every block of a new file (a full
  copy), the changed ones of the spare (a 2,000,000-case month into the 10M-row warehouse
  changed 193 of its 1,078 MiB);
* the spare is updated only if it is still exactly the file its manifest describes and nobody
  has it open: a DuckDB session in another process holds a lock on it (an analyst who opened
  it while it was the published file), one in this process an open descriptor. Otherwise it
  is dropped (open sessions keep their inode) and the publish writes a full copy;
* the target is flushed to disk, then exchanged with the published file in one
  ``renameat2(RENAME_EXCHANGE)``: the file it replaces becomes the spare, with its manifest.
  Where the exchange is not supported the target simply replaces the published file, and
  every publish is a full copy.

The price is disk: a third file the size of the warehouse.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import xxhash

from warehouse.files import exchange
from warehouse.stages import stage
from warehouse.writer import writer_path

BLOCK = 1 << 20
# XXH3-128: ~60 GB/s on one core, so publishing reads at the speed of the page cache. SHA-1 (~2 GB/s)
# made hashing 2.0 of the 2.6 s it took to read and hash the 8.3 GiB full-volume file on two cores
# (0.65 s now). Not cryptographic, and it need not be: the file is our own, and a block is compared
# with the same block of an earlier version, where two different contents agree with odds of 2^-128.
DIGEST = 16
STRIPE = 32  # blocks a publishing worker reads, hashes and writes in a row
MANIFEST_VERSION = 2  # 1: SHA-1 digests (a spare with such a manifest is copied whole once)


@dataclass(frozen=True)
class Snapshot:
    path: Path
    bytes: int  # size of the published file
    bytes_written: int  # what this publish wrote: all of it for a full copy
    seconds: float
    from_spare: bool  # the spare was brought up to date instead of copying the whole file


def spare_path(published: Path) -> Path:
    return published.with_name(f".{published.name}.spare")


def manifest_path(file: Path) -> Path:
    """``gm.duckdb`` -> ``.gm.duckdb.blocks``; ``.gm.duckdb.spare`` -> ``.gm.duckdb.spare.blocks``."""
    return file.with_name(f".{file.name.lstrip('.')}.blocks")


def publish(published: Path) -> Snapshot:
    """Checkpoint the working file and make it the published file (see the module docstring)."""
    started = time.perf_counter()
    work = writer_path(published)
    with duckdb.connect(str(work)) as con:
        con.execute("CHECKPOINT")
    spare = spare_path(published)
    known = _digests(spare) if spare.exists() and not _in_use(spare) else None
    if known is None:  # nothing to update in place: a full copy into a new file
        _drop(spare)
        target = published.with_name(f".{published.name}.{os.getpid()}.tmp")
    else:
        target = spare
    digests, written = _sync(work, target, known or [])
    stage("publishing")  # the new file is on disk, the published one not swapped yet
    _swap(target, published, digests)
    size = published.stat().st_size
    return Snapshot(published, size, written, time.perf_counter() - started, known is not None)


def _sync(source: Path, target: Path, known: list[bytes]) -> tuple[list[bytes], int]:
    """Make ``target`` a byte-for-byte copy of ``source``, writing only the blocks whose digest
    differs from ``known`` (the target's manifest); returns the new digests and bytes written.

    Reading and hashing is what grows with the warehouse (7.7 GB at full volume), so it runs
    on every core: each worker takes the next stripe of ``STRIPE`` blocks, in file order (the
    kernel's read-ahead still sees sequential reads). ``os.preadv`` and ``os.pwrite`` release
    the GIL; XXH3 hashes a block in ~20 µs.
    """
    size = source.stat().st_size
    blocks = -(-size // BLOCK)
    digests: list[bytes] = [b""] * blocks
    src = os.open(source, os.O_RDONLY)
    dst = os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)

    def stripe(first: int) -> int:
        buffer = bytearray(BLOCK)
        view = memoryview(buffer)
        written = 0
        for index in range(first, min(first + STRIPE, blocks)):
            n = _read_block(src, view, index * BLOCK)
            digest = xxhash.xxh3_128_digest(view[:n])
            if index >= len(known) or known[index] != digest:
                os.pwrite(dst, view[:n], index * BLOCK)
                written += n
            digests[index] = digest
        return written

    try:
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1),
                                thread_name_prefix="publish") as pool:
            written = sum(pool.map(stripe, range(0, blocks, STRIPE)))
        os.ftruncate(dst, size)
        os.fsync(dst)
    finally:
        os.close(src)
        os.close(dst)
    return digests, written


def _read_block(fd: int, view: memoryview, offset: int) -> int:
    """Fill ``view`` from ``offset`` (short only at the end of the file): blocks stay aligned at
    multiples of ``BLOCK``, so block i of two manifests is the same byte range."""
    filled = 0
    while filled < len(view) and (n := os.preadv(fd, [view[filled:]], offset + filled)):
        filled += n
    return filled


def _swap(target: Path, published: Path, digests: list[bytes]) -> None:
    """Publish ``target``; the file it replaces becomes the spare, each with its manifest."""
    spare = spare_path(published)
    manifest = manifest_path(published)
    new_manifest = manifest.with_name(f"{manifest.name}.{os.getpid()}.tmp")
    _write_manifest(target, digests, new_manifest)
    if published.exists() and exchange(target, published):
        if manifest.exists():  # it describes the old file, now at ``target``
            os.replace(manifest, manifest_path(spare))
        if target != spare:
            os.replace(target, spare)
    else:
        os.replace(target, published)
        _drop(spare)
    os.replace(new_manifest, manifest)


def _write_manifest(file: Path, digests: list[bytes], into: Path) -> None:
    st = file.stat()
    into.write_text(json.dumps({
        "version": MANIFEST_VERSION, "block": BLOCK, "inode": st.st_ino, "size": st.st_size,
        "mtime_ns": st.st_mtime_ns, "xxh3_128": b"".join(digests).hex(),
    }), encoding="utf-8")


def _digests(file: Path) -> list[bytes] | None:
    """The block digests of ``file`` if its manifest still describes it exactly, else None."""
    try:
        meta = json.loads(manifest_path(file).read_text(encoding="utf-8"))
        st = file.stat()
        if ((meta["version"], meta["block"], meta["inode"], meta["size"], meta["mtime_ns"])
                != (MANIFEST_VERSION, BLOCK, st.st_ino, st.st_size, st.st_mtime_ns)):
            return None
        packed = bytes.fromhex(meta["xxh3_128"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [packed[i:i + DIGEST] for i in range(0, len(packed), DIGEST)]


def _in_use(file: Path) -> bool:
    """Whether anyone has ``file`` open: a descriptor of this process (DuckDB's own locks do not
    conflict within a process), or a DuckDB session of another process (its lock)."""
    st = file.stat()
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return True  # cannot tell: leave it alone
    for fd in fds.iterdir():
        try:
            other = fd.stat()
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            return True
    fd = os.open(file, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # releases the probe's lock
    return False


def _drop(spare: Path) -> None:
    spare.unlink(missing_ok=True)
    manifest_path(spare).unlink(missing_ok=True)


def forget(published: Path) -> None:
    """Remove the spare and the manifests (the published file is set aside: a new warehouse follows)."""
    _drop(spare_path(published))
    manifest_path(published).unlink(missing_ok=True)
