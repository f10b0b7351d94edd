"""The main job on the bundled sample: preprocess -> train (Ray Train) -> test report."""

from __future__ import annotations

import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])

from preprocess import preprocess  # noqa: E402
from train import train  # noqa: E402

from hanet.runtime import DEMO_CONFIG, DEMO_OUTPUT, SAMPLE_DIR  # noqa: E402

if __name__ == "__main__":
    preprocess(config=DEMO_CONFIG, input=str(SAMPLE_DIR), output=str(DEMO_OUTPUT / "dataset"),
               set_=None, on_error="fail", overwrite=False)
    train(config=DEMO_CONFIG, data=str(DEMO_OUTPUT / "dataset"), output=str(DEMO_OUTPUT / "run"),
          workers=None, gpu=False, set_=None, resume=str(DEMO_OUTPUT / "run")
          if (DEMO_OUTPUT / "run" / "train").exists() else None)
