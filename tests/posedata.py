"""Pose data for the tests: npz writers in the published layout, slices of the bundled
sample, small synthetic sequences and a pickle that must never be run."""

from __future__ import annotations

import importlib.util
import io
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from hanet.config import ModelConfig
from hanet.data.arrow import sequences_to_table
from hanet.data.schema import Sequence
from hanet.data.windows import key_frame_mask
from hanet.formats.published import (
    PublishedPair,
)
from hanet.formats.safe_npz import load_npz
from hanet.io.location import parse_location

REPO = Path(__file__).resolve().parent.parent


def objects(items: list[Any]) -> np.ndarray:
    """A 1-D object array, one entry per sequence, as the published files store them."""
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


def write_npz(path: Path, arrays: dict[str, list[Any] | np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v if isinstance(v, np.ndarray) else objects(v) for k, v in arrays.items()})
    return path


def write_pair(
    root: Path,
    dataset: str,
    estimator: str,
    split: str,
    gt: dict[str, list[Any]],
    det: dict[str, list[Any]],
) -> PublishedPair:
    """One published (ground truth, detections) pair under ``root``."""
    gt_path = write_npz(root / "groundtruth_poses" / dataset / f"{dataset}_gt_{split}.npz", gt)
    det_path = write_npz(
        root / "detected_poses" / dataset / estimator / f"{dataset}_{estimator}_{split}.npz", det
    )
    return PublishedPair(
        dataset, estimator, split, parse_location(gt_path), parse_location(det_path)
    )


def sample_arrays(sample_dir: Path, dataset: str, estimator: str, split: str):
    """The sample's (ground truth, detections) arrays of one split."""
    gt = load_npz(
        parse_location(sample_dir / "groundtruth_poses" / dataset / f"{dataset}_gt_{split}.npz")
    )
    det = load_npz(
        parse_location(
            sample_dir
            / "detected_poses"
            / dataset
            / estimator
            / f"{dataset}_{estimator}_{split}.npz"
        )
    )
    return gt, det


def sample_subset(
    sample_dir: Path,
    root: Path,
    dataset: str = "mocap2d",
    estimator: str = "simplebaseline",
    counts: dict[str, int] | None = None,
) -> Path:
    """The first sequences of each split of the sample, in the published layout under root."""
    counts = counts or {"train": 8, "test": 4}
    for split, count in counts.items():
        gt, det = sample_arrays(sample_dir, dataset, estimator, split)
        write_pair(
            root,
            dataset,
            estimator,
            split,
            {k: list(v[:count]) for k, v in gt.items()},
            {k: list(v[:count]) for k, v in det.items()},
        )
    return root


class Evil:
    """Unpickling this runs a shell command: what a malicious pose file would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def seq2d(frames: int = 12, seq_id: str = "clip_a", **kwargs: Any) -> Sequence:
    rng = np.random.default_rng(frames)
    pred = rng.uniform(0, 300, (frames, 15, 2)).astype(np.float32)
    defaults = dict(
        gt=pred + 1.0,
        image_size=(320, 240),
        bbox=np.tile([10, 20, 200, 220], (frames, 1)).astype(np.float32),
        frame_names=[f"act/{seq_id}/{i:05d}.png" for i in range(frames)],
        split="test",
        fps=30.0,
    )
    defaults.update(kwargs)
    return Sequence(seq_id, "jhmdb", "2D", pred, **defaults)


def pose_set(frames: list[int], joints: int, dims: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.3, (t, joints * dims)).astype(np.float32) for t in frames]


def model_config(interval: int, num_intervals: int, joints: int = 15, dims: int = 2):

    return ModelConfig(
        num_joints=joints, joint_dim=dims, interval=interval, num_intervals=num_intervals
    )


def key_frames(window_size: int, interval: int) -> torch.Tensor:
    """The key-frame mask as the model holds it."""
    return torch.from_numpy(key_frame_mask(window_size, interval))


IMAGE_SIZE = (320, 240)  # the bundled sample's frames


# A model and a run small enough for an end-to-end pipeline test (one short epoch, one worker);
# the tests add their data settings.
TINY_PIPELINE = [
    "model.interval=2",
    "model.num_intervals=2",
    "model.hidden_dim=16",
    "model.num_stages=1",
    "train.epochs=1",
    "train.batch_size=16",
    "train.max_steps_per_epoch=4",
    "train.num_workers=1",
    "train.cpus_per_worker=0.5",
    "refine.cpus_per_actor=0.25",
]
TINY_MODEL = {
    "name": "tiny",
    "model": {
        "num_joints": 15,
        "joint_dim": 2,
        "interval": 2,
        "num_intervals": 2,
        "hidden_dim": 16,
        "num_stages": 2,
        "num_heads": 4,
        "dropout": 0.0,
    },
    "data": {
        "dataset": "mocap2d",
        "estimator": "simplebaseline",
        "layout": "jhmdb",
        "representation": "2D",
        "image_width": IMAGE_SIZE[0],
        "image_height": IMAGE_SIZE[1],
    },
    "refine": {"cpus_per_actor": 0.25, "batch_windows": 64},
}


def parquet_bytes(sequences: list[Sequence]) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(sequences_to_table(sequences), buffer)
    return buffer.getvalue()


def pipeline(name: str) -> ModuleType:
    """A pipeline script as a module (pipelines/ is a folder of scripts, not a package)."""
    path = REPO / "pipelines" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_pipeline_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEMO = "configs/demo_2D.yaml"  # the demo configuration, relative to the repository
