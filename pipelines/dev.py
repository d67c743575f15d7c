"""``make dev``: ``dagster dev`` on loopback with the checkout defaults for unset GOVMETRICS_* variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipelines.instance import dagster_home, open_instance
from pipelines.resources import apply_defaults


def main() -> int:
    apply_defaults()
    dagster_home()
    with open_instance():  # created once, before dagster dev's processes open it
        pass
    # workspace.yaml names the code location "govmetrics" (with -m the UI would show the module name).
    workspace = str(Path(__file__).resolve().parents[1] / "workspace.yaml")
    dagster = str(Path(sys.executable).parent / "dagster")
    cmd = [dagster, "dev", "-w", workspace, "-h", "127.0.0.1", "-p", os.environ.get("PORT", "3000")]
    # `dagster dev` warns that it is superseded by `dg dev` (the dagster-dg-cli package, which this
    # project does not install); the command itself is supported in Dagster 1.13.
    env = {**os.environ, "PYTHONWARNINGS": "ignore:Function `dev_command` is superseded"}
    return subprocess.call(cmd, env=env)


if __name__ == "__main__":
    sys.exit(main())
