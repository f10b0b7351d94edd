"""What every pipeline entry point shares: logging, Ray start-up, the demo paths."""

from __future__ import annotations

import logging
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO_ROOT / "data" / "sample"
DEMO_CONFIG = REPO_ROOT / "configs" / "demo_2D.yaml"
DEMO_OUTPUT = REPO_ROOT / "outputs" / "demo"


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def init_ray(num_cpus: int | None = None, dashboard: bool = False) -> None:
    """Connect to the cluster under ``ray job submit`` (RAY_ADDRESS is set) or start a small
    local instance on a laptop. Environment comes from the job's runtime_env, not from here.
    Tune over Train V2 needs ``dashboard=True`` to release a stopped trial's resources."""
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=True)
        return
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=dashboard,
        dashboard_host="127.0.0.1",
        object_store_memory=int(os.environ.get("HANET_OBJECT_STORE_BYTES", 400_000_000)),
        log_to_driver=True,
    )
