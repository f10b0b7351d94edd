"""On-the-fly augmentation of training windows: new geometry and speed every epoch.

Pure numpy, applied in the training loop to each batch of stored windows (Ray's pattern: the
deterministic windows are materialised once, the random augmentation runs after), drawing
only from the generator passed in, so a seed reproduces it. Validation and test windows are
never augmented. Input and target always get the same transform, so the estimator's error
turns with the pose.

- **Time**: playback speed ``s`` in ``[speed_min, speed_max]``; the window of ``T`` frames is
  resampled (linear interpolation) from ``(T - 1) * s + 1`` frames of the stored window, which
  preprocessing makes long enough for the fastest speed (:func:`stored_window_size`). Without
  time augmentation the first ``T`` frames are taken.
- **2D**: horizontal mirror with left/right swap (the layout's mirror pairs), rotation in the
  image plane, scale and translation, about the window's body centre, in pixel-proportional
  units (a published x/W, y/H window is made isotropic first).
- **3D**: mirror (x) with left/right swap, rotation about the vertical axis, global scale, and
  bone-length jitter along the layout's bones from its root.
- SMPL rotations get the time augmentation only.

With ``data.normalisation: body`` every augmented window is normalised again from its own
input (:func:`hanet.data.normalise.input_norm`), exactly as a test window would be.
"""

from __future__ import annotations

import math

import numpy as np

from hanet.config import AugmentConfig
from hanet.data.normalise import body_norm
from hanet.skeletons import JointLayout, warn_once

__all__ = ["augment_batch", "crop_batch", "start_pad", "stored_window_size"]


def stored_window_size(window_size: int, augment: AugmentConfig) -> int:
    """Frames a stored training window needs so the fastest speed still has frames to read."""
    return math.ceil((window_size - 1) * max(1.0, augment.speed_max)) + 1


def crop_batch(batch: dict[str, np.ndarray], window_size: int) -> dict[str, np.ndarray]:
    """The first ``window_size`` frames of every window (stored windows may be longer)."""
    return {k: v if k == "scale" or v.ndim < 2 else v[:, :window_size] for k, v in batch.items()}


def start_pad(
    batch: dict[str, np.ndarray], fraction: float, lookahead: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """A share of the windows start-padded as a stream's first windows are: their first m
    frames repeat frame m and count as padding, m uniform in ``1 .. T - 1 - k`` so that the
    frame a causal refiner outputs stays real. Works in model units: exact for maps that are
    the same at every frame (published 2D), close for the others.

    Shape:
        batch: windows ``[B, T, ...]`` (cut to the model's window).
    """
    count, size = batch["frame_mask"].shape
    most = size - 1 - lookahead
    chosen = rng.random(count) < fraction
    if most < 1 or not chosen.any():
        return batch
    pad = np.where(chosen, rng.integers(1, most + 1, count), 0)  # [B]
    real = np.arange(size)[None, :] >= pad[:, None]  # [B, T]
    index = np.maximum(np.arange(size)[None, :], pad[:, None])
    out = dict(batch)
    out["input"] = batch["input"][np.arange(count)[:, None], index]
    out["frame_mask"] = batch["frame_mask"] & real
    out["target_mask"] = batch["target_mask"] & real[:, :, None]
    return out


def _resample(batch: dict[str, np.ndarray], window_size: int, speed: np.ndarray, rng) -> dict:
    """Each window resampled to ``window_size`` frames at its playback speed."""
    stored = batch["input"].shape[1]
    span = (window_size - 1) * speed  # [B]
    latest = np.maximum(stored - 1 - span, 0.0)
    start = rng.uniform(0.0, 1.0, size=len(speed)) * latest  # [B]
    pos = np.clip(start[:, None] + np.arange(window_size)[None] * speed[:, None], 0, stored - 1)
    low = np.floor(pos).astype(np.int64)
    high = np.minimum(low + 1, stored - 1)
    frac = (pos - low)[..., None]  # [B, T, 1]
    rows = np.arange(len(speed))[:, None]
    out = dict(batch)
    for name in ("input", "target"):
        x = batch[name]
        out[name] = ((1 - frac) * x[rows, low] + frac * x[rows, high]).astype(np.float32)
    for name in ("target_mask", "frame_mask"):
        m = batch[name]
        out[name] = m[rows, low] & m[rows, high]  # known only where both neighbours are
    return out


def _mirror_joints(x: np.ndarray, order: np.ndarray, dims: int) -> np.ndarray:
    """``x [B, T, J * dims]`` with its joints in mirrored order."""
    shape = x.shape
    return x.reshape(*shape[:2], -1, dims)[:, :, order].reshape(shape)


def _rotation_2d(angle: np.ndarray) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # [B, 2, 2]


def _rotation_about(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotations about coordinate ``axis`` of 3D space, ``[B, 3, 3]``."""
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.tile(np.eye(3), (len(angle), 1, 1))
    a, b = [i for i in range(3) if i != axis]
    rot[:, a, a], rot[:, a, b], rot[:, b, a], rot[:, b, b] = cos, -sin, sin, cos
    return rot


def _bone_jitter(rel: np.ndarray, layout: JointLayout, factor: np.ndarray) -> np.ndarray:
    """Scale every bone by its factor, moving each child's subtree with it.

    Shape:
        rel: ``[B, T, J, D]``; factor: ``[B, len(bones)]``.
    """
    out = rel.copy()
    # Bones in tree order (a parent's position is final before its children move).
    done = set(layout.roots) or {layout.bones[0][0]}
    pending = list(enumerate(layout.bones))
    while pending:
        ready = [(k, (p, c)) for k, (p, c) in pending if p in done]
        if not ready:
            break  # a bone set that is not a tree: leave the rest as it is
        for k, (parent, child) in ready:
            bone = rel[:, :, child] - rel[:, :, parent]
            out[:, :, child] = out[:, :, parent] + bone * factor[:, k, None, None]
            done.add(child)
        pending = [item for item in pending if item[1][1] not in done]
    return out


def augment_batch(
    batch: dict[str, np.ndarray],
    window_size: int,
    layout: JointLayout,
    representation: str,
    normalisation: str,
    augment: AugmentConfig,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """One batch of stored training windows, augmented and cut to ``window_size`` frames.

    Args:
        batch: ``input``, ``target`` ``[B, T_s, J * D]``, ``target_mask`` ``[B, T_s, J * D]``,
            ``frame_mask`` ``[B, T_s]`` and ``scale`` ``[B, D]`` (the windows' model units).
        window_size: T, the model's window.
        layout: the windows' joint layout (mirror pairs, bones, roots).
        representation: ``"2D"``, ``"3D"`` or ``"smpl"``.
        normalisation: ``data.normalisation``; with ``"body"`` each window is normalised again.
        augment: what to do (:class:`hanet.config.AugmentConfig`).
        rng: the only source of randomness.

    Returns:
        The same keys, their frames cut to ``[B, T, ...]``.
    """
    size = len(batch["input"])
    speed = rng.uniform(augment.speed_min, augment.speed_max, size=size)
    if augment.speed_max > augment.speed_min or augment.speed_min != 1.0:
        out = _resample(batch, window_size, speed, rng)
    else:
        out = crop_batch(batch, window_size)
    if representation == "smpl":
        return out
    dims = 2 if representation == "2D" else 3
    joints = out["input"].shape[-1] // dims
    inputs = out["input"].reshape(size, window_size, joints, dims).astype(np.float64)
    targets = out["target"].reshape(inputs.shape).astype(np.float64)
    scale = np.asarray(batch["scale"], np.float64)[:, None, None, :]  # [B, 1, 1, D]
    frames = out["frame_mask"][:, :, None, None]
    roots = list(layout.roots) or list(range(joints))
    centre = (inputs[:, :, roots].mean(axis=2, keepdims=True) * frames).sum(axis=1, keepdims=True)
    centre = centre / np.maximum(frames.sum(axis=1, keepdims=True), 1)  # [B, 1, 1, D]
    # Isotropic units relative to the centre: pixels (or metres) up to one factor per window.
    rel_in, rel_tg = (inputs - centre) * scale, (targets - centre) * scale
    if augment.mirror > 0:
        if layout.left_right:
            flip = rng.random(size) < augment.mirror
            order = layout.mirror_permutation()
            sign = np.where(flip, -1.0, 1.0)[:, None, None]
            for rel in (rel_in, rel_tg):
                rel[..., 0] *= sign
                rel[flip] = rel[flip][:, :, order]
            mask = out["target_mask"].copy()  # may be a view of the caller's batch
            mask[flip] = _mirror_joints(mask[flip], order, dims)
            out["target_mask"] = mask
        else:
            warn_once(layout, "no left/right pairs: mirroring is off")
    if augment.rotate_deg > 0:
        angle = np.radians(rng.uniform(-augment.rotate_deg, augment.rotate_deg, size=size))
        rot = _rotation_2d(angle) if dims == 2 else _rotation_about(augment.vertical_axis, angle)
        rel_in = np.einsum("bij,btkj->btki", rot, rel_in)
        rel_tg = np.einsum("bij,btkj->btki", rot, rel_tg)
    if augment.bone_jitter > 0 and dims == 3:
        if layout.bones:
            spread = (size, len(layout.bones))
            factor = 1 + rng.uniform(-augment.bone_jitter, augment.bone_jitter, spread)
            rel_in = _bone_jitter(rel_in, layout, factor)
            rel_tg = _bone_jitter(rel_tg, layout, factor)
        else:
            warn_once(layout, "no bones: bone-length jitter is off")
    if augment.scale > 0:
        factor = 1 + rng.uniform(-augment.scale, augment.scale, size=size)[:, None, None, None]
        rel_in, rel_tg = rel_in * factor, rel_tg * factor
    shift = np.zeros_like(centre)
    if augment.translate > 0 and dims == 2:
        extent = (rel_in.max(axis=2) - rel_in.min(axis=2)).max(axis=-1)  # [B, T]
        body = np.median(extent, axis=1)[:, None, None, None]
        shift = rng.uniform(-1, 1, size=(size, 1, 1, dims)) * augment.translate * body / scale
    inputs, targets = rel_in / scale + centre + shift, rel_tg / scale + centre + shift
    if normalisation == "body":
        # As a test window would be: centred and sized from its own (augmented) input.
        norm = body_norm(inputs, out["frame_mask"], roots)
        inputs, targets = norm.apply(inputs), norm.apply(targets)
    out["input"] = inputs.reshape(size, window_size, -1).astype(np.float32)
    out["target"] = targets.reshape(size, window_size, -1).astype(np.float32)
    return out
