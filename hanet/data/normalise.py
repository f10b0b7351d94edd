"""Model units and back: gap filling, normalisation, denormalisation, target masks.

Pure numpy. Missing input joints are filled from their neighbours in time before anything
reaches the model (a missing joint never enters as a zero); the masks still say they were
missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hanet.data.schema import SchemaError, Sequence
from hanet.filters import fill_missing
from hanet.skeletons import get_layout

__all__ = ["Normalised", "denormalise", "filled_input", "normalise", "target_mask"]


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
