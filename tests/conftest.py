"""Shared fixtures: one small local Ray instance and one loopback S3 server per session, and
empty storage roots (local or S3) for the storage tests."""

from __future__ import annotations

# ruff: noqa: E402 - tests/ and pipelines/ go on sys.path before their modules are imported.
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Token auth would make a later `ray start --head` + `ray job submit` fail (see ray-notes).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The pipelines are scripts that import their sibling defaults.py; tests load them from files.
sys.path.insert(0, str(REPO / "pipelines"))

from posedata import TINY_MODEL
from s3server import S3Server, s3_server_fixture

from hanet.checkpoint import save_checkpoint
from hanet.config import from_dict, load_config
from hanet.data.schema import Sequence
from hanet.formats.published import find_published_pairs, read_published_pair
from hanet.io.location import Location, parse_location
from hanet.model import HANet
from hanet.refiner import Refiner

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


BUCKET = "hanet-storage-tests"


@pytest.fixture(scope="session")
def s3_bucket(s3_server: S3Server) -> str:
    return s3_server.make_bucket(BUCKET)


def _s3_root(server: S3Server) -> Location:
    # A fresh prefix per test: the session shares one server and one bucket.
    return parse_location(f"s3://{BUCKET}/{uuid.uuid4().hex[:10]}", env=server.env())


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """An empty directory, on the local disk or on the loopback S3 server."""
    if request.param == "local":
        return parse_location(tmp_path / "root")
    request.getfixturevalue("s3_bucket")
    return _s3_root(request.getfixturevalue("s3_server"))


@pytest.fixture
def s3_root(s3_server: S3Server, s3_bucket: str) -> Location:
    return _s3_root(s3_server)


@pytest.fixture
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The developer's own AWS settings must not leak into these tests.
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = from_dict(TINY_MODEL)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_checkpoint(path, HANet(cfg.model), cfg)


@pytest.fixture(scope="module")
def refiner(checkpoint: Path) -> Refiner:
    return Refiner.from_checkpoint(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def sample_sequences(sample_dir: Path) -> list[Sequence]:
    pairs = find_published_pairs(parse_location(sample_dir), "mocap2d")
    test = next(p for p in pairs if p.split == "test")
    return read_published_pair(test, "jhmdb", "2D", 30.0)[:5]


@pytest.fixture(scope="module")
def demo_cfg():
    return load_config(REPO / "configs" / "demo_2D.yaml")
