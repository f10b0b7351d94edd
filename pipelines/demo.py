"""The main job on the bundled sample: preprocess -> train (Ray Train) -> test report.

Runs the two pipelines with their defaults, exactly as a user would type them. Rerunning is
safe: preprocessing is a no-op when its inputs and config are unchanged; a finished demo run is
moved aside to outputs/demo/previous/<time> (never deleted) and a fresh one is trained; an
interrupted run is resumed from its last checkpoint.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from defaults import DEMO_OUTPUT

HERE = Path(__file__).resolve().parent

RUN = DEMO_OUTPUT / "run"


def train_arguments() -> list[str]:
    """Arguments for train.py that make a rerun of the demo do the sensible thing."""
    if (RUN / "model.pt").exists():
        previous = DEMO_OUTPUT / "previous" / time.strftime("%Y%m%d-%H%M%S")
        previous.parent.mkdir(parents=True, exist_ok=True)
        RUN.rename(previous)
        print(f"previous demo run moved to {previous}", flush=True)
        return []
    if RUN.exists():
        print(f"resuming the interrupted demo run in {RUN}", flush=True)
        return ["--resume", str(RUN)]
    return []


if __name__ == "__main__":
    # The demo dataset is derived data: rebuild it when the demo configuration changed.
    subprocess.run([sys.executable, str(HERE / "preprocess.py"), "--overwrite"], check=True)
    subprocess.run([sys.executable, str(HERE / "train.py"), *train_arguments()], check=True)
