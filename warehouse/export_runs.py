"""Each run's Parquet exports kept under a dated folder, with a ``latest`` pointer and retention.

``exports/<table>/…`` is always the newest export (swapped in atomically, see ``exports.py``).
Beside it, ``exports/runs/<UTC time>_<run>/`` keeps what each run wrote (its tables and its
``_manifest.json``) so a report can be re-run against the figures of an earlier month, and
``exports/latest`` is a symbolic link to the newest of them. Only the ``keep`` newest run
folders are kept (``ExportsFolder.keep_runs``).

Files are hard links, not copies: an export file is never modified after it is written (each
run writes new files and swaps whole directories), so a run folder costs no space until the
newest export replaces its files. Where hard links are not possible it falls back to copying.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

RUNS = "runs"
LATEST = "latest"


def link(src: Path, dest: Path) -> None:
    """Hard-link ``src`` at ``dest`` (its folders created), or copy it where links are not possible."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def keep_run(exports_dir: Path, manifest: dict, manifest_path: Path, stamp: str, keep: int) -> Path:
    """Link this run's files under ``runs/<stamp>/``, point ``latest`` at it, prune old runs."""
    run_dir = exports_dir / RUNS / stamp
    tmp = exports_dir / RUNS / f".{stamp}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for entry in manifest["tables"].values():
        for f in entry["files"]:  # a few files per table: a loop over files, not rows
            link(exports_dir / f["path"], tmp / f["path"])
    shutil.copy2(manifest_path, tmp / manifest_path.name)
    os.replace(tmp, run_dir)
    pointer = exports_dir / f".{LATEST}.tmp"
    pointer.unlink(missing_ok=True)
    pointer.symlink_to(Path(RUNS) / stamp, target_is_directory=True)
    os.replace(pointer, exports_dir / LATEST)  # readers follow the old link or the new one
    prune(exports_dir, keep)
    return run_dir


def prune(exports_dir: Path, keep: int) -> list[str]:
    """Remove all but the ``keep`` newest run folders (never the one ``latest`` points to)."""
    runs = sorted((p for p in (exports_dir / RUNS).iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name, reverse=True)
    current = (exports_dir / LATEST).resolve()
    removed = []
    for old in runs[max(keep, 1):]:
        if old.resolve() != current:
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old.name)
    return removed
