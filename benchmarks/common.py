"""What the benchmarks share: where the sample and the configurations are, a quiet local Ray,
and the one ``RESULT {json}`` line that ends every benchmark's output."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "data" / "sample"
DEMO_CONFIG = REPO / "configs" / "demo_2D.yaml"
PAPER_CONFIG = REPO / "configs" / "jhmdb_simplebaseline_2D.yaml"


def start_ray(num_cpus: int = 4, object_store_bytes: int = 400_000_000, dashboard: bool = False):
    """A local Ray sized for this machine's benchmarks, with its own logs quiet.

    Train V2 queries the state API through the dashboard: training benchmarks need it.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    import ray.data

    ray.init(
        num_cpus=num_cpus,
        object_store_memory=object_store_bytes,
        include_dashboard=dashboard,
        log_to_driver=False,
        configure_logging=False,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    return ray


def print_result(figures: dict[str, Any]) -> None:
    """The benchmark's headline figures as its last line, ``RESULT {json}``."""
    print("RESULT " + json.dumps(figures, sort_keys=True, default=float), flush=True)
