"""Checks on refined poses before they are committed: nothing non-finite or implausible is ever
written.

A model with damaged weights, or one fed something it was never trained on, can return NaN or
absurd coordinates for every frame while the masks still say the joints were observed. The
batch job checks every refined sequence of an object (:func:`check_refined_many`) before
writing it; a failure sends the object to the errors manifest with the reason instead.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hanet.data.folds import trailing_all, trailing_max, trailing_norm
from hanet.data.plausibility import LIMIT, Reference, in_image, outside_reference, reference
from hanet.data.schema import Sequence
from hanet.errors import UserError
from hanet.skeletons import get_layout

__all__ = ["RefinedPoseError", "check_refined", "check_refined_many", "displacement"]


class RefinedPoseError(UserError, ValueError):
    """Refined poses are not finite or not plausible; the object is not written."""


def check_refined(original: Sequence, refined: Sequence, ref: Reference | None = None) -> float:
    """Refuse refined poses that are not finite, not of the input's shape, or farther outside
    the input's own extent than any pose can be (:mod:`hanet.data.plausibility`).

    Args:
        original: The validated input sequence.
        refined: Its refinement.
        ref: The input's :func:`hanet.data.plausibility.reference`, when already measured.

    Returns:
        How far the refinement moved the observed joints: their mean displacement from the
        input in body sizes (the input's median joint distance from its pose centre; for SMPL,
        in 6D units). A corpus unlike the training data shows up as large displacements.

    Raises:
        RefinedPoseError: naming the sequence, the first bad frame and joint, and how many.
    """
    where = original.where()
    poses = refined.pred
    if poses.shape != original.pred.shape:
        raise RefinedPoseError(
            f"{where}: refined poses have shape {poses.shape}, the input {original.pred.shape}"
        )
    joints = get_layout(original.layout).joints
    broken = ~trailing_all(np.isfinite(poses))  # [T, J]
    if broken.any():
        frame, joint = (int(i) for i in np.argwhere(broken)[0])
        raise RefinedPoseError(
            f"{where}: refined poses are not finite (NaN or inf) at frame {frame}, joint {joint} "
            f"({joints[joint]}), {int(broken.sum())} joint(s) in all; nothing was written (a "
            "damaged checkpoint, or input unlike its training data?)"
        )
    if ref is None:
        ref = reference(original.pred, original.observed(), original.representation)
    found = outside_reference(poses, ref, original.image_size)
    if found is not None:
        raise RefinedPoseError(
            f"{where}: refined poses: {found.describe(joints[found.joint])}; nothing was written"
        )
    return displacement(original, poses, ref.scale)


def displacement(original: Sequence, poses: np.ndarray, scale: float | None) -> float:
    """Mean distance of ``poses`` from ``original``'s observed joints, in units of ``scale``
    (0 when nothing is observed or there is no scale to measure in).

    Shape:
        poses: [T, J, D], like ``original.pred``.
    """
    mask = original.observed()
    if not scale or not mask.any():
        return 0.0
    moved = trailing_norm(poses.astype(np.float64) - original.pred)  # [T, J]
    return float(moved[mask].mean() / scale)


def check_refined_many(
    originals: list[Sequence], refined: list[np.ndarray], refs: list[Reference]
) -> list[float]:
    """:func:`check_refined` of each sequence of an object (refined poses ``refined[i]`` of
    ``originals[i]``, whose references are ``refs``), judged together: one pass over the joined
    frames clears every sequence in the usual case; where anything is off, the sequences are
    looked at one by one, so the error is :func:`check_refined`'s own for the first bad one.

    Returns:
        Each sequence's displacement, as :func:`check_refined` returns it.

    Raises:
        RefinedPoseError: as :func:`check_refined`, for the first sequence that fails.
    """
    shapes = {o.pred.shape[1:] for o in originals}
    if (
        len(shapes) > 1
        or any(p.shape != o.pred.shape for o, p in zip(originals, refined))
        or any(r.representation == "smpl" for r in refs)
    ):
        return [check_refined(o, _with(o, p), r) for o, p, r in zip(originals, refined, refs)]
    if not originals:
        return []
    lengths = [o.num_frames for o in originals]
    starts = np.cumsum([0] + lengths[:-1])
    poses = np.concatenate(refined).astype(np.float64)  # [F, J, D]
    inputs = np.concatenate([o.pred for o in originals])
    # Per frame, its sequence's extent and body size (0 and inf: nothing to judge against).
    judged = [r.scale is not None and r.low is not None and r.high is not None for r in refs]
    dims = poses.shape[-1]
    low = np.repeat([r.low if ok else np.zeros(dims) for r, ok in zip(refs, judged)], lengths, 0)
    high = np.repeat([r.high if ok else np.zeros(dims) for r, ok in zip(refs, judged)], lengths, 0)
    scale = np.repeat([r.scale if ok else np.inf for r, ok in zip(refs, judged)], lengths)
    with np.errstate(invalid="ignore"):
        beyond = trailing_max(np.maximum(low[:, None] - poses, poses - high[:, None]))  # [F, J]
        flagged = np.maximum(beyond, 0.0) / scale[:, None] > LIMIT  # as outside_reference
    if flagged.any():
        # The image margin forgives what lies near a known picture (outside_reference); NaN
        # (no image) compares False and forgives nothing.
        sizes = [o.image_size if o.representation == "2D" else None for o in originals]
        size = np.repeat([s or (np.nan,) * dims for s in sizes], lengths, 0)[:, None]
        flagged &= ~in_image(poses, size)
    if flagged.any() or not np.isfinite(poses).all():
        return [check_refined(o, _with(o, p), r) for o, p, r in zip(originals, refined, refs)]
    mask = np.concatenate([o.observed() for o in originals])  # [F, J]
    moved = np.where(mask, trailing_norm(poses - inputs), 0.0)
    totals = np.add.reduceat(moved.sum(axis=1), starts)
    counts = np.add.reduceat(mask.sum(axis=1), starts)
    return [
        float(total / count / r.scale) if r.scale and count else 0.0
        for total, count, r in zip(totals, counts, refs)
    ]


def _with(original: Sequence, poses: np.ndarray) -> Sequence:
    return dataclasses.replace(original, pred=poses)
