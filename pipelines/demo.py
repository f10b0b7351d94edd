"""The main job on the bundled sample: preprocess -> train (Ray Train) -> test report.

Runs the two pipelines with their defaults, exactly as a user would type them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for script in ("preprocess.py", "train.py"):
        subprocess.run([sys.executable, str(HERE / script)], check=True)
