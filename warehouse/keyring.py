"""The personal-data key belongs to the warehouse: its fingerprint is recorded there.

ID and phone numbers are stored as HMAC-SHA256 hashes, so counting one applicant across
files only works while every file is hashed with the same key. A refresh with another key
would silently give the same person two hashes (issue 8); instead the first run records a
fingerprint of the key in ``quality.warehouse_settings`` and every later run compares.

The fingerprint is the HMAC of a fixed label under the key: it identifies the key without
revealing it or any hash of a real value. Rotating the key cannot rehash the stored hashes
(an HMAC cannot be re-keyed from its output), so ``govmetrics rotate-key`` sets the old
warehouse aside and reloads everything from the landing folder with the new key.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import duckdb

from warehouse.snapshot import forget
from warehouse.writer import now, writer_path

SETTING = "pii_key_fingerprint"
ROTATION_NOTE = ("更换个人信息密钥：哈希值无法换密钥重算，只能用新密钥从落地目录重新载入全部文件；"
                 "旧仓库会改名保留（仓库历史从本次重新开始）。确认后运行 govmetrics rotate-key --yes")
LABEL = b"govmetrics/pii-key-fingerprint/v1"


class KeyMismatch(Exception):
    """The key configured for this run is not the key the warehouse was built with."""


def fingerprint(key: bytes) -> str:
    return hmac.new(key, LABEL, hashlib.sha256).hexdigest()[:16]


def recorded_fingerprint(con: duckdb.DuckDBPyConnection) -> str | None:
    present = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'quality' "
                          "AND table_name = 'warehouse_settings'").fetchall()[0][0]
    if not present:
        return None
    row = con.execute("SELECT value FROM quality.warehouse_settings WHERE name = ?", [SETTING]).fetchall()
    return row[0][0] if row else None


def mismatch_message(recorded: str, current: str) -> str:
    return (f"个人信息密钥与仓库不一致（仓库密钥指纹 {recorded}，本次 {current}）：同一申请人会得到两个不同的哈希值，"
            f"已拒绝刷新。请改回原密钥；若要有意更换密钥，运行 govmetrics rotate-key（见 README）")


def ensure_key(con: duckdb.DuckDBPyConnection, key: bytes) -> str:
    """Record the key's fingerprint on first use; raise ``KeyMismatch`` if another key built the warehouse."""
    current = fingerprint(key)
    recorded = recorded_fingerprint(con)
    if recorded is None:
        con.execute("INSERT INTO quality.warehouse_settings VALUES (?, ?, ?)", [SETTING, current, now()])
    elif recorded != current:
        raise KeyMismatch(mismatch_message(recorded, current))
    return current


def check_key(published: Path, key: bytes) -> None:
    """Read-only comparison against the working copy (or the published file) before a run starts."""
    for path in (writer_path(published), published):
        if path.exists():
            with duckdb.connect(str(path), read_only=True) as con:
                recorded = recorded_fingerprint(con)
            if recorded is not None and recorded != fingerprint(key):
                raise KeyMismatch(mismatch_message(recorded, fingerprint(key)))
            return


def set_aside(published: Path) -> list[Path]:
    """Rename the working copy and the published file to ``*.before-key-rotation-<time>.duckdb``.

    The next refresh then starts an empty warehouse and loads every file still in the landing
    folder with the new key. The old files are kept (history, and files no longer landed).
    """
    stamp = f"{now():%Y%m%dT%H%M%S}"
    kept = []
    for path in (writer_path(published), published):
        if path.exists():
            target = path.with_name(f"{path.stem}.before-key-rotation-{stamp}{path.suffix}")
            path.rename(target)
            wal = path.with_name(path.name + ".wal")
            if wal.exists():
                wal.rename(target.with_name(target.name + ".wal"))
            kept.append(target)
    forget(published)  # the previous snapshot kept for the next publish: hashed with the old key
    return kept
