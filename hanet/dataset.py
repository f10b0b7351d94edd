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


def _fill_joints(x: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``x [T, J, D]`` with absent joints filled: gaps interpolated linearly in time (held at
    the ends); a joint absent from every frame takes the mean of the frame's other joints."""
    filled = fill_missing(x, present)
    never = ~present.any(axis=0)  # [J]
    if never.any():
        filled[:, never, :] = filled[:, ~never, :].mean(axis=1)[:, None, :]
    return filled


def filled_input(seq: Sequence) -> np.ndarray:
    """The estimator's poses with every missing joint filled, ``[T, J, D]`` float32.

    Gaps are interpolated linearly in time (held at the ends), so a missing joint never enters
    the model as a zero. A joint the estimator never produced in the whole sequence has nothing
    to interpolate from; it takes the mean of the frame's other joints (the body's centre), a
    finite, plausible value that its mask still marks as missing (validate_sequence guarantees
    some joint is observed).
    """
    return _fill_joints(seq.pred, seq.observed()).astype(np.float32)


def _filled_target(seq: Sequence) -> np.ndarray | None:
    """Ground truth with unlabelled joints filled like the input, for the 3D root only."""
    if seq.gt is None:
        return None
    labelled = seq.labelled_joints()
    if labelled.all() or not labelled.any():
        return seq.gt
    return _fill_joints(seq.gt, labelled)


def normalise(seq: Sequence) -> Normalised:
    """Model units: 2D divides by image width/height (as published); 3D is root-relative
    metres around the layout's root joints; SMPL 6D rotations are left as they are.

    Missing input joints are first filled (:func:`filled_input`), so they never enter the model
    as zeros; the masks still say they were missing. Unlabelled target joints stay 0 and are
    masked out by :func:`target_mask`.

    Raises:
        SchemaError: 2D input without an image size.
    """
    pred = filled_input(seq)
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
            # A missing root joint in the ground truth would drag the root towards 0.
            target_offset = layout.root(_filled_target(seq))[:, 0, :].astype(np.float32)
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
    """Inverse of :func:`normalise` for [T, J, D] poses with a [T, D] offset.

    Computed in float64 and returned in ``x``'s floating dtype, so a float32 round trip is off
    by at most one float32 rounding of the result, never two.
    """
    dtype = np.result_type(x.dtype, np.float32) if hasattr(x, "dtype") else np.float64
    out = np.asarray(x, np.float64) * np.asarray(scale, np.float64)
    out = out + np.asarray(offset, np.float64)[:, None, :]
    return out.astype(dtype)


def target_mask(seq: Sequence) -> np.ndarray:
    """[T, J] True where ground truth exists for that frame and joint."""
    return seq.labelled_joints()


def window_starts(
    num_frames: int, model: ModelConfig, split: str, train_stride: int, test_stride_q: int
) -> np.ndarray:
    """Train: every start (or every ``train_stride``-th); otherwise strided windows with a
    last one aligned to the end, so every frame is covered."""
    size = model.window_size
    if split == "train":
        return train_starts(num_frames, size, train_stride)
    # Raises ValueError when interval * test_stride_q > window_size (frames left uncovered).
    return test_starts(num_frames, size, model.interval * test_stride_q)


def window_arrays(
    seq: Sequence, model: ModelConfig, split: str, train_stride: int = 1, test_stride_q: int = 1
) -> dict[str, np.ndarray]:
    """The windows of one validated sequence as stacked arrays, one per window column.

    Column names and meanings follow :data:`hanet.schema.WINDOW_SCHEMA`; building them with a
    few numpy slices (no per-window Python work) is what keeps preprocessing close to the
    speed of writing the bytes.

    Shape:
        input, target, target_mask: ``[W, T, J * D]``; frame_mask, key_mask: ``[W, T]``;
        input_mask: ``[W, T, J]``; scale: ``[W, D]``; input_offset, target_offset:
        ``[W, T, D]``; sequence_id, split, start, window_size, num_joints, joint_dim: ``[W]``.
    """
    norm = normalise(seq)
    size = model.window_size
    dims = seq.joint_dim
    channels = seq.num_joints * dims
    starts = window_starts(seq.num_frames, model, split, train_stride, test_stride_q)
    count = len(starts)
    supervised = np.repeat(target_mask(seq), dims, axis=1)  # [T, C]
    target = np.zeros((seq.num_frames, channels), dtype=np.float32)
    if norm.target is not None:
        # Unknown ground truth is stored as 0 (never as a value relative to some offset).
        target = np.where(supervised, norm.target.reshape(-1, channels), 0.0).astype(np.float32)
    inputs, valid = split_windows(norm.input.reshape(-1, channels), starts, size)
    targets, _ = split_windows(target, starts, size)
    supervised_w, _ = split_windows(supervised, starts, size)
    observed_w, _ = split_windows(seq.observed(), starts, size)
    in_offset, _ = split_windows(norm.input_offset, starts, size)
    tg_offset, _ = split_windows(norm.target_offset, starts, size)
    keys = key_frame_mask(size, model.interval)
    return {
        "sequence_id": np.full(count, seq.sequence_id, dtype=object),
        "split": np.full(count, split, dtype=object),
        "start": starts.astype(np.int32),
        "window_size": np.full(count, size, dtype=np.int32),
        "num_joints": np.full(count, seq.num_joints, dtype=np.int32),
        "joint_dim": np.full(count, dims, dtype=np.int32),
        "input": inputs.astype(np.float32),
        "target": targets,
        "target_mask": supervised_w & valid[:, :, None],
        "frame_mask": valid,
        "key_mask": np.broadcast_to(keys, (count, size)),
        "input_mask": observed_w & valid[:, :, None],
        "scale": np.broadcast_to(norm.scale, (count, dims)),
        "input_offset": in_offset,
        "target_offset": tg_offset,
    }


def sequence_windows(
    seq: Sequence, model: ModelConfig, split: str, train_stride: int = 1, test_stride_q: int = 1
) -> list[dict[str, Any]]:
    """Window rows (:data:`hanet.schema.WINDOW_SCHEMA`) for one validated sequence: plain
    values for the scalar columns, flat numpy arrays for the list columns."""
    arrays = window_arrays(seq, model, split, train_stride, test_stride_q)
    rows = []
    for w in range(len(arrays["start"])):
        row: dict[str, Any] = {}
        for name, values in arrays.items():
            value = values[w]
            if isinstance(value, np.ndarray):
                row[name] = value.reshape(-1)
            elif isinstance(value, np.generic):
                row[name] = value.item()
            else:
                row[name] = value
        rows.append(row)
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
