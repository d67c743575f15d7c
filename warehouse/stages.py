"""Named points in a refresh where a process can be stopped, for the kill -9 recovery tests.

``stage("merging")`` does nothing unless ``GOVMETRICS_PAUSE_AT`` names that stage: then it
writes the file ``GOVMETRICS_PAUSE_MARKER`` and waits forever, so that a test can
``SIGKILL`` a real refresh exactly there (a log line would be too late: the run moves on
before the test can react). The stages are the ones issue 8 lists: reading, judging,
merging, checking (GX), publishing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

STAGES = ("reading", "judging", "merging", "checking", "publishing")


def stage(name: str) -> None:
    if os.environ.get("GOVMETRICS_PAUSE_AT") != name:
        return
    Path(os.environ["GOVMETRICS_PAUSE_MARKER"]).write_text(str(os.getpid()), encoding="utf-8")
    while True:  # until killed
        time.sleep(3600)
