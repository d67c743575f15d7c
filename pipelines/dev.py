"""``make dev``: ``dagster dev`` on loopback with the checkout defaults for unset GOVMETRICS_* variables."""

from __future__ import annotations

import os
import subprocess
import sys

from pipelines.instance import dagster_home, open_instance
from pipelines.resources import apply_defaults


def main() -> int:
    apply_defaults()
    dagster_home()
    with open_instance():  # created once, before dagster dev's processes open it
        pass
    cmd = ["dagster", "dev", "-m", "pipelines.definitions", "-h", "127.0.0.1", "-p", os.environ.get("PORT", "3000")]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
