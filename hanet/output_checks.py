"""Checks on refined poses before they are committed: nothing non-finite or implausible is ever
written.

A model with damaged weights, or one fed something it was never trained on, can return NaN or
absurd coordinates for every frame while the masks still say the joints were observed. The
batch job calls :func:`check_refined` on every refined sequence of an object before writing
it; a failure sends the object to the errors manifest with the reason instead.
"""

from __future__ import annotations

import numpy as np

from hanet.data.plausibility import Reference, outside_reference, reference
from hanet.data.schema import Sequence
from hanet.errors import UserError
from hanet.skeletons import get_layout

__all__ = ["RefinedPoseError", "check_refined", "displacement"]


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
    broken = ~np.isfinite(poses).all(axis=-1)  # [T, J]
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
    moved = np.linalg.norm(poses.astype(np.float64) - original.pred, axis=-1)  # [T, J]
    return float(moved[mask].mean() / scale)
