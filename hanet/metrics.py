"""Pose-sequence metrics as pure numpy functions with validity masks.

Definitions follow the evaluation shared by HANet, DeciWatch and SmoothNet (their
``lib/utils/eval_metrics.py``):

- PCK@alpha (JHMDB): a joint is correct when its pixel error is at most
  ``alpha * max(bbox_w, bbox_h)`` of that frame's ground-truth box; each sequence gives a
  per-joint fraction of correct frames, and the score is the mean of the sequence-by-joint
  matrix, so every sequence weighs the same whatever its length.
- MPJPE: root-relative L2 error, averaged over joints then frames; inputs in metres, output mm.
- PA-MPJPE: MPJPE after a per-frame similarity Procrustes alignment of prediction to truth.
- Accel error: L2 norm of the difference of second differences, mm/frame^2. For 3D joints it
  is taken of root-relative poses, as MPJPE is: the released loaders centre 3D data on its
  root before any metric, so the root's own path is never scored.

Masks replace the released code's habit of scoring padded and dropped frames: a ``valid`` mask
of shape ``[T]`` (whole frames) or ``[T, J]`` (single joints) excludes what has no ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MM = 1000.0  # metres -> millimetres


def _joint_mask(valid: np.ndarray | None, frames: int, joints: int) -> np.ndarray:
    """Broadcast ``None``, ``[T]`` or ``[T, J]`` to a ``[T, J]`` bool mask."""
    if valid is None:
        return np.ones((frames, joints), dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if valid.ndim == 1:
        valid = valid[:, None]
    if valid.shape[0] != frames or valid.shape[1] not in (1, joints) or valid.ndim != 2:
        raise ValueError(f"valid must be [T] or [T, J] = [{frames}, {joints}], got {valid.shape}")
    return np.broadcast_to(valid, (frames, joints))


def _masked_mean(values: np.ndarray, mask: np.ndarray, axis: int) -> np.ndarray:
    """Mean of ``values`` where ``mask`` along ``axis``; NaN where nothing is valid."""
    total = np.where(mask, values, 0.0).sum(axis=axis)
    count = mask.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _nanmean(values: np.ndarray) -> float:
    """nanmean that returns NaN quietly when nothing is finite."""
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values)
    return float(values[keep].mean()) if keep.any() else float("nan")


def pck(
    pred: np.ndarray,
    gt: np.ndarray,
    bbox: np.ndarray,
    alpha: float,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Per-joint PCK of one sequence.

    Args:
        pred: predicted joints, pixels.
        gt: ground-truth joints, pixels.
        bbox: ground-truth box per frame, ``x1, y1, x2, y2`` pixels.
        alpha: threshold as a fraction of the larger box side (0.05, 0.1, 0.2 for JHMDB).
        valid: frames or joints to score.

    Returns:
        Fraction of valid frames where each joint is correct; NaN for a joint with none.

    Shape:
        pred, gt: ``[T, J, 2]``; bbox: ``[T, 4]``; valid: ``[T]`` or ``[T, J]``; output ``[J]``.
    """
    frames, joints = gt.shape[:2]
    mask = _joint_mask(valid, frames, joints)
    bbox = np.asarray(bbox, dtype=np.float64)
    size = np.maximum(bbox[:, 2] - bbox[:, 0], bbox[:, 3] - bbox[:, 1])  # [T]
    dist = np.linalg.norm(np.asarray(pred, np.float64) - gt, axis=-1)  # [T, J]
    with np.errstate(invalid="ignore"):  # NaN in unused (masked) entries
        correct = dist <= alpha * size[:, None]
    return _masked_mean(correct.astype(np.float64), mask, axis=0)


def pck_mean(per_sequence: Sequence[np.ndarray]) -> float:
    """Dataset PCK: mean over the sequence-by-joint matrix, ignoring NaN (unscored) entries.

    Args:
        per_sequence: :func:`pck` output of each sequence.

    Returns:
        The sequence-weighted mean PCK; NaN if nothing was scored.

    Shape:
        per_sequence: S arrays of ``[J]``.
    """
    if len(per_sequence) == 0:
        return float("nan")
    return _nanmean(np.stack([np.asarray(p, dtype=np.float64) for p in per_sequence]))


def position_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean error of every joint of every frame, in the inputs' unit (float64).

    Shape:
        pred, gt: ``[T, J, D]``; output ``[T, J]``.
    """
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)


def mean_pixel_error(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean Euclidean error over valid (frame, joint) pairs, in the inputs' unit.

    Shape:
        pred, gt: ``[T, J, D]``; valid: ``[T]`` or ``[T, J]``.
    """
    mask = _joint_mask(valid, *gt.shape[:2])
    dist = position_errors(pred, gt)
    return float(np.where(mask, dist, 0.0).sum() / mask.sum()) if mask.any() else float("nan")


def mpjpe_per_frame(
    pred: np.ndarray,
    gt: np.ndarray,
    roots: Sequence[int] = (0,),
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Root-relative mean per-joint position error of each frame, in mm.

    Each pose is centred on the mean of its own root joints; an empty ``roots`` skips the
    centring (for data that is already root-relative). A frame whose root joints are not all
    valid cannot be centred and is NaN, as is a frame with no valid joint.

    Args:
        pred: predicted joints, metres.
        gt: ground-truth joints, metres.
        roots: root joint indices, e.g. ``JointLayout.roots``.
        valid: frames or joints to score.

    Returns:
        Per-frame error in millimetres.

    Shape:
        pred, gt: ``[T, J, 3]``; valid: ``[T]`` or ``[T, J]``; output ``[T]``.
    """
    pred, gt, mask = _root_centred(pred, gt, roots, valid)
    dist = np.linalg.norm(pred - gt, axis=-1)  # [T, J]
    return _masked_mean(dist, mask, axis=1) * _MM


def _root_centred(
    pred: np.ndarray, gt: np.ndarray, roots: Sequence[int], valid: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``pred`` and ``gt`` (float64) each centred on the mean of its own root joints, and the
    ``[T, J]`` mask of what counts: a frame whose roots are not all valid cannot be centred.
    Empty ``roots``: no centring."""
    frames, joints = gt.shape[:2]
    mask = _joint_mask(valid, frames, joints)
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    roots = list(roots)
    if roots:
        pred = pred - pred[:, roots].mean(axis=1, keepdims=True)
        gt = gt - gt[:, roots].mean(axis=1, keepdims=True)
        mask = mask & mask[:, roots].all(axis=1, keepdims=True)
    return pred, gt, mask


def mpjpe(
    pred: np.ndarray,
    gt: np.ndarray,
    roots: Sequence[int] = (0,),
    valid: np.ndarray | None = None,
) -> float:
    """MPJPE in mm: :func:`mpjpe_per_frame` averaged over the scored frames.

    Pooling several sequences frame-weighted, as published, means concatenating them (or
    averaging their per-frame values together), not averaging sequence means.

    Shape:
        pred, gt: ``[T, J, 3]`` metres; valid: ``[T]`` or ``[T, J]``.
    """
    return _nanmean(mpjpe_per_frame(pred, gt, roots, valid))


def procrustes_align(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """Per-frame similarity transform (scale, rotation, translation) of pred onto gt.

    Least-squares fit over the valid joints of each frame (Umeyama's method). The rotation is
    kept proper: when the best orthogonal map is a reflection, the last singular direction is
    flipped.

    Args:
        pred: predicted joints.
        gt: ground-truth joints.
        valid: joints used for the fit (all joints are transformed).

    Returns:
        The aligned prediction.

    Shape:
        pred, gt: ``[T, J, 3]``; valid: ``[T]`` or ``[T, J]``; output ``[T, J, 3]``.
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    weight = _joint_mask(valid, *gt.shape[:2]).astype(np.float64)[..., None]  # [T, J, 1]
    count = np.maximum(weight.sum(axis=1, keepdims=True), 1.0)
    mu_p = np.where(weight > 0, pred, 0.0).sum(axis=1, keepdims=True) / count
    mu_g = np.where(weight > 0, gt, 0.0).sum(axis=1, keepdims=True) / count
    # where() rather than multiply: unused joints may hold NaN, and 0 * NaN is NaN.
    xp = np.where(weight > 0, pred - mu_p, 0.0)
    xg = np.where(weight > 0, gt - mu_g, 0.0)
    cov = np.einsum("tji,tjk->tik", xp, xg)  # [T, 3, 3]
    u, s, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(np.einsum("tij,tjk->tik", u, vt)))
    sign[sign == 0] = 1.0
    flip = np.ones_like(s)
    flip[:, -1] = sign
    # R maps pred to gt: R = V diag(flip) U^T, applied to row vectors as x @ R^T.
    rot = np.einsum("tji,tj,tkj->tik", vt, flip, u)
    var = np.maximum((xp**2).sum(axis=(1, 2)), 1e-12)
    scale = (s * flip).sum(axis=1) / var  # [T]
    return scale[:, None, None] * np.einsum("tjk,tik->tji", pred - mu_p, rot) + mu_g


def pa_mpjpe_per_frame(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """Per-frame PA-MPJPE in mm (NaN for frames with no valid joint).

    Shape:
        pred, gt: ``[T, J, 3]`` metres; valid: ``[T]`` or ``[T, J]``; output ``[T]``.
    """
    aligned = procrustes_align(pred, gt, valid)
    return mpjpe_per_frame(aligned, gt, roots=(), valid=valid)


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """PA-MPJPE in mm: MPJPE after per-frame Procrustes alignment, mean over scored frames.

    Shape:
        pred, gt: ``[T, J, 3]`` metres; valid: ``[T]`` or ``[T, J]``.
    """
    return _nanmean(pa_mpjpe_per_frame(pred, gt, valid))


def accel(x: np.ndarray) -> np.ndarray:
    """Second difference in time, ``x[t-1] - 2 x[t] + x[t+1]`` for t = 1 .. T-2.

    Shape:
        x: ``[T, ...]``; output ``[T - 2, ...]``.
    """
    x = np.asarray(x)
    return x[:-2] - 2 * x[1:-1] + x[2:]


def accel_magnitude_per_frame(x: np.ndarray) -> np.ndarray:
    """Mean over joints of the acceleration's norm at frames 1 .. T-2, in the data's unit.

    Shape:
        x: ``[T, J, D]``; output ``[T - 2]``.
    """
    return np.linalg.norm(accel(np.asarray(x, np.float64)), axis=-1).mean(axis=1)


def accel_error_per_frame(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray | None = None,
    roots: Sequence[int] = (),
) -> np.ndarray:
    """Acceleration error of frames 1 .. T-2, in the data's unit per frame^2.

    The mean over joints of the L2 norm of ``accel(pred) - accel(gt)``, where a (t, joint)
    counts only when frames t-1, t, t+1 are all valid; NaN for a frame with no such joint.
    With ``roots`` (3D joints) each pose is first centred on its own roots, as for
    :func:`mpjpe_per_frame`: the published 3D figures are of root-relative poses.

    Shape:
        pred, gt: ``[T, J, D]``; valid: ``[T]`` or ``[T, J]``; output ``[T - 2]`` (empty for
        ``T < 3``).
    """
    if gt.shape[0] < 3:
        return np.zeros(0)
    pred, gt, mask = _root_centred(pred, gt, roots, valid)
    triple = mask[:-2] & mask[1:-1] & mask[2:]  # [T-2, J]
    diff = accel(pred) - accel(gt)
    return _masked_mean(np.linalg.norm(diff, axis=-1), triple, axis=1)


def accel_error(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray | None = None,
    roots: Sequence[int] = (),
) -> float:
    """Acceleration error in mm/frame^2: :func:`accel_error_per_frame` of joints in metres,
    averaged over the frames that have one; NaN when none does (e.g. ``T < 3``).

    Shape:
        pred, gt: ``[T, J, D]``; valid: ``[T]`` or ``[T, J]``.
    """
    return _nanmean(accel_error_per_frame(pred, gt, valid, roots)) * _MM


def rotation_6d_to_matrix(x: np.ndarray, interleaved: bool = False) -> np.ndarray:
    """Rotation matrices from the continuous 6D representation (Zhou et al., CVPR 2019).

    The 6D vector holds the first two columns ``a1, a2`` of the rotation matrix. Gram-Schmidt
    makes ``b1 = a1 / |a1|``, ``b2`` the normalised part of ``a2`` orthogonal to ``b1``, and
    ``b3 = b1 x b2``; the matrix has columns ``b1, b2, b3``.

    Args:
        x: 6D rotations.
        interleaved: False (default, Zhou et al.): ``x = [a1, a2]``, i.e.
            ``[R00, R10, R20, R01, R11, R21]``. True: the SPIN/VIBE/DeciWatch storage, the same
            two columns as a row-major ``3 x 2`` block, ``[R00, R01, R10, R11, R20, R21]``.

    Returns:
        Rotation matrices.

    Shape:
        x: ``[..., 6]``; output ``[..., 3, 3]``.
    """
    x = np.asarray(x, np.float64)
    if interleaved:
        a1, a2 = x[..., 0::2], x[..., 1::2]
    else:
        a1, a2 = x[..., :3], x[..., 3:]
    eps = 1e-12
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), eps)
    a2 = a2 - (b1 * a2).sum(axis=-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), eps)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)  # columns


def geodesic_angle_deg(
    pred6d: np.ndarray,
    gt6d: np.ndarray,
    valid: np.ndarray | None = None,
    interleaved: bool = False,
) -> float:
    """Mean geodesic angle between predicted and true rotations, in degrees.

    The angle of ``R_pred^T R_gt`` is ``arccos((trace - 1) / 2)``, clipped against rounding.

    Args:
        pred6d: predicted 6D rotations.
        gt6d: ground-truth 6D rotations.
        valid: frames or joints to score.
        interleaved: 6D layout, see :func:`rotation_6d_to_matrix`.

    Returns:
        Mean angle over valid (frame, joint) pairs; NaN if none.

    Shape:
        pred6d, gt6d: ``[T, J, 6]``; valid: ``[T]`` or ``[T, J]``.
    """
    rp = rotation_6d_to_matrix(pred6d, interleaved)
    rg = rotation_6d_to_matrix(gt6d, interleaved)
    trace = np.einsum("...ij,...ij->...", rp, rg)  # trace(Rp^T Rg)
    angle = np.degrees(np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0)))
    mask = _joint_mask(valid, *angle.shape[:2])
    return float(angle[mask].mean()) if mask.any() else float("nan")
