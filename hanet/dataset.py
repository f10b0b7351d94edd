"""From sequences to model windows and back: normalisation, window rows, splits.

Pure numpy; no Ray and no I/O. The preprocess pipeline, the trainer's evaluation and the
refiner all cut and normalise sequences through these functions, so the model always sees
data prepared the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from hanet.config import ModelConfig
from hanet.filters import fill_missing
from hanet.schema import SchemaError, Sequence
from hanet.skeletons import get_layout
from hanet.windows import key_frame_mask, split_windows, test_starts, train_starts


@dataclass(frozen=True)
class Normalised:
    """A sequence in model units, and how to map back: ``x * scale + offset``.

    Shape:
        input, target: [T, J, D]; scale: [D]; input_offset, target_offset: [T, D].
    """

    input: np.ndarray
    target: np.ndarray | None
    scale: np.ndarray
    input_offset: np.ndarray
    target_offset: np.ndarray


def normalise(seq: Sequence) -> Normalised:
    """Model units: 2D divides by image width/height (as published); 3D is root-relative
    metres around the layout's root joints; SMPL 6D rotations are left as they are.

    Missing input joints are first filled by linear interpolation in time, so they never enter
    the model as zeros; the masks still say they were missing.
    """
    pred = fill_missing(seq.pred, seq.observed())
    frames, _, dims = pred.shape
    gt = seq.gt
    scale = np.ones(dims, dtype=np.float32)
    input_offset = np.zeros((frames, dims), dtype=np.float32)
    target_offset = np.zeros((frames, dims), dtype=np.float32)
    if seq.representation == "2D":
        if seq.image_size is None:
            raise SchemaError(
                f"{seq.where()}: 2D input needs the image size (set data.image_width and "
                "data.image_height when the file does not carry it)"
            )
        scale = np.asarray(seq.image_size, dtype=np.float32)
    elif seq.representation == "3D":
        layout = get_layout(seq.layout)
        input_offset = layout.root(pred)[:, 0, :].astype(np.float32)
        if gt is not None:
            target_offset = layout.root(gt)[:, 0, :].astype(np.float32)
    norm_input = (pred - input_offset[:, None, :]) / scale
    norm_target = None if gt is None else (gt - target_offset[:, None, :]) / scale
    return Normalised(
        input=norm_input.astype(np.float32),
        target=None if norm_target is None else norm_target.astype(np.float32),
        scale=scale,
        input_offset=input_offset,
        target_offset=target_offset,
    )


def denormalise(x: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalise` for [T, J, D] poses with a [T, D] offset."""
    return x * scale + offset[:, None, :]


def target_mask(seq: Sequence) -> np.ndarray:
    """[T, J] True where ground truth exists for that frame and joint."""
    frames, joints = seq.num_frames, seq.num_joints
    mask = np.broadcast_to(seq.labelled()[:, None], (frames, joints)).copy()
    gt_joints = seq.extra.get("gt_joint_mask")
    if gt_joints is not None:
        mask &= np.asarray(gt_joints, dtype=bool)
    return mask


def window_starts(
    num_frames: int, model: ModelConfig, split: str, train_stride: int, test_stride_q: int
) -> np.ndarray:
    """Train: every start (or every ``train_stride``-th); otherwise strided windows with a
    last one aligned to the end, so every frame is covered."""
    size = model.window_size
    if split == "train":
        return train_starts(num_frames, size, train_stride)
    return test_starts(num_frames, size, model.interval * test_stride_q)


def sequence_windows(
    seq: Sequence, model: ModelConfig, split: str, train_stride: int = 1, test_stride_q: int = 1
) -> list[dict[str, Any]]:
    """Window rows (:data:`hanet.schema.WINDOW_SCHEMA`) for one validated sequence."""
    norm = normalise(seq)
    size = model.window_size
    channels = seq.num_joints * seq.joint_dim
    starts = window_starts(seq.num_frames, model, split, train_stride, test_stride_q)
    dims = seq.joint_dim
    target = norm.target if norm.target is not None else np.zeros_like(norm.input)
    supervised = np.repeat(target_mask(seq), dims, axis=1)  # [T, C]
    inputs, frame_valid = split_windows(norm.input.reshape(-1, channels), starts, size)
    targets, _ = split_windows(target.reshape(-1, channels), starts, size)
    supervised_w, _ = split_windows(supervised, starts, size)
    observed_w, _ = split_windows(seq.observed(), starts, size)
    in_offset, _ = split_windows(norm.input_offset, starts, size)
    tg_offset, _ = split_windows(norm.target_offset, starts, size)
    keys = key_frame_mask(size, model.interval)
    rows = []
    for w, start in enumerate(starts):
        valid = frame_valid[w]
        rows.append(
            {
                "sequence_id": seq.sequence_id,
                "split": split,
                "start": int(start),
                "window_size": size,
                "num_joints": seq.num_joints,
                "joint_dim": dims,
                "input": inputs[w].reshape(-1),
                "target": targets[w].reshape(-1),
                "target_mask": (supervised_w[w] & valid[:, None]).reshape(-1),
                "frame_mask": valid,
                "key_mask": keys,
                "input_mask": (observed_w[w] & valid[:, None]).reshape(-1),
                "scale": norm.scale,
                "input_offset": in_offset[w].reshape(-1),
                "target_offset": tg_offset[w].reshape(-1),
            }
        )
    return rows


def clip_key(seq: Sequence) -> str:
    """What makes two sequences the same clip: the image folder when names are known (several
    tracks or camera views of one clip share it), else the sequence id."""
    if seq.frame_names:
        parent = str(PurePosixPath(seq.frame_names[0]).parent)
        if parent not in ("", "."):
            return parent
    return seq.sequence_id


def is_validation(seq: Sequence, fraction: float, seed: int) -> bool:
    """Stable train/val assignment by clip: the same clip always lands on the same side,
    without needing to see the other sequences (so it runs inside parallel tasks)."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{clip_key(seq)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def assign_split(seq: Sequence, val_fraction: float, seed: int) -> str:
    """The published files know train and test; validation is carved from train by clip."""
    split = seq.split or "infer"
    if split == "train" and is_validation(seq, val_fraction, seed):
        return "val"
    return split


def stack_windows(rows: Iterable[dict[str, Any]], model: ModelConfig) -> dict[str, np.ndarray]:
    """Window rows -> model-ready arrays ``input``/``target`` [W, T, C], masks [W, T(, C)]."""
    rows = list(rows)
    size, channels = model.window_size, model.channels
    return {
        "input": np.stack([np.asarray(r["input"], np.float32) for r in rows]).reshape(
            -1, size, channels
        ),
        "target": np.stack([np.asarray(r["target"], np.float32) for r in rows]).reshape(
            -1, size, channels
        ),
        "target_mask": np.stack([np.asarray(r["target_mask"], bool) for r in rows]).reshape(
            -1, size, channels
        ),
        "frame_mask": np.stack([np.asarray(r["frame_mask"], bool) for r in rows]),
    }
