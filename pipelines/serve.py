"""``make serve`` and the systemd units: the Dagster webserver and daemon on the configured instance.

Unlike ``make dev`` (``dagster dev``: a throw-away daemon, code reloading) this runs the two
long-lived processes a deployment runs, against ``DAGSTER_HOME``'s ``dagster.yaml`` (PostgreSQL
when ``GOVMETRICS_DAGSTER_PG_URL`` is set, see ``pipelines.instance``). The daemon runs the
``landing_sensor`` and the ``monthly_refresh`` schedule (both on by default) and the run queue
that lets one refresh write at a time. The storage is created before either starts (two
processes migrating a new SQLite home at once corrupt it). ``--prepare`` only writes
``dagster.yaml`` and creates the storage (the units' ``ExecStartPre``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from pipelines.instance import dagster_home, open_instance
from pipelines.resources import apply_defaults

CODE = ["-m", "pipelines.definitions"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.serve")
    parser.add_argument("--prepare", action="store_true", help="write DAGSTER_HOME/dagster.yaml and exit")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", default=os.environ.get("PORT", "3000"))
    args = parser.parse_args(argv)
    apply_defaults()
    home = dagster_home()
    with open_instance():  # create and migrate the storage once, before two processes open it
        pass
    if args.prepare:
        print(f"dagster.yaml ready in {home}")
        return 0
    bin_dir = os.path.dirname(sys.executable)
    procs = [subprocess.Popen([os.path.join(bin_dir, "dagster-daemon"), "run", *CODE]),
             subprocess.Popen([os.path.join(bin_dir, "dagster-webserver"), *CODE, "-h", args.host, "-p", args.port])]

    def stop(*_):
        for p in procs:
            if p.poll() is None:
                p.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(p.poll() is None for p in procs):  # one of them ending ends both
            time.sleep(2)
    finally:
        stop()
        for p in procs:
            p.wait()
    return max(p.returncode or 0 for p in procs)


if __name__ == "__main__":
    sys.exit(main())
