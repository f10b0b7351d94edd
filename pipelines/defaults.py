"""Where the pipelines look when run without arguments: the bundled sample and the demo's
configuration and output folders, all relative to this checkout."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "data" / "sample"
DEMO_CONFIG = REPO / "configs" / "demo_2D.yaml"
DEMO_SPACE = REPO / "configs" / "tune" / "demo.yaml"
DEMO_OUTPUT = REPO / "outputs" / "demo"
