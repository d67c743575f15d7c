"""A snapshot of the definitions graph catches accidental rewiring (asset keys, checks, jobs, ...).

After an intended change, regenerate with ``UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_definitions.py``
and review the diff of ``tests/snapshots/definitions.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def graph() -> dict:
    from pipelines.definitions import defs

    repo = defs.get_repository_def()
    assets = {}
    for node in repo.asset_graph.asset_nodes:
        key = node.key.to_user_string()
        assets[key] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "checks": sorted(c.name for c in node.check_keys),
        }
    blocking = sorted(
        f"{spec.asset_key.to_user_string()}:{spec.name}"
        for ad in repo.asset_graph.assets_defs for spec in ad.check_specs if spec.blocking
    )
    return {
        "assets": dict(sorted(assets.items())),
        "blocking_checks": blocking,
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "schedules": sorted((s.name, s.cron_schedule) for s in repo.schedule_defs),
        "sensors": sorted(s.name for s in repo.sensor_defs),
    }


def test_definitions_graph_matches_snapshot():
    current = json.loads(json.dumps(graph(), ensure_ascii=False))
    if os.environ.get("UPDATE_SNAPSHOTS") or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(current, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    assert current == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_every_core_asset_guards_with_checks_and_groups_by_layer():
    g = graph()
    groups = {a["group"] for a in g["assets"].values()}
    assert groups == {"landing", "core", "quality", "marts", "exports"}
    for key, node in g["assets"].items():
        if key.startswith("core/"):
            assert node["checks"], f"{key} has no asset checks"
            assert f"landing/{key.split('/')[1]}" in node["deps"]


def test_code_location_imports_without_great_expectations_or_env():
    """Loading the code location must not import GX (~2 s) nor need GOVMETRICS_* set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVMETRICS_")}
    code = ("import sys, pipelines.definitions as d; "
            "assert 'great_expectations' not in sys.modules, 'GX imported at load time'; "
            "print(len(list(d.defs.resolve_all_asset_keys())))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip().splitlines()[-1]) > 20
