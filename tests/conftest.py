"""Shared fixtures: one small local Ray instance and one loopback S3 server per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Token auth would make a later `ray start --head` + `ray job submit` fail (see ray-notes).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from s3server import s3_server_fixture  # noqa: E402

s3_server = pytest.fixture(scope="session")(s3_server_fixture)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session: 4 logical CPUs on 2 cores so fractional
    Train workers and Data readers never starve each other; a small object store; the
    dashboard on because Train V2 and Tune query the state API through it."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    ray.init(
        num_cpus=4,
        object_store_memory=300_000_000,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The AWS variables that point pyarrow/boto3 at the loopback server."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server
