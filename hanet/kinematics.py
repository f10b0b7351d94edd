"""Kinematic building blocks of HANet: key-frame sampling, neighbours, flow, velocity, acceleration.

Pure tensor-in, tensor-out functions with no learned parameters; :mod:`hanet.model` composes them
with its learned layers. A window holds ``T = N * Q + 1`` frames and frame ``t`` is a *key frame*
(seen by the model) when ``t % N == 0``, so the first and last frames are always key frames.

Symbols in the Shape sections: B batch, T frames, C coordinates (``C = J * D``, joint-major).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "mask_frames",
    "key_frame_neighbours",
    "flow",
    "velocities",
    "squared_acceleration",
    "interpolate_key_frames",
]


def mask_frames(x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """Zero every non-key frame, the masked input x̃ = x ⊙ s.

    Args:
        x: poses.
        key_mask: boolean key-frame mask (:func:`hanet.data.windows.key_frame_mask`).

    Shape:
        x: (B, T, C); key_mask: (T,); output: (B, T, C)
    """
    return x * key_mask.to(x.dtype)[:, None]


def key_frame_neighbours(
    x: torch.Tensor, key_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The frames just before and after each key frame, zero elsewhere.

    ``prev[t] = x[max(t - 1, 0)]`` and ``next[t] = x[min(t + 1, T - 1)]`` at key frames: the
    window edges are replicate-padded, so the first key frame is its own previous neighbour.
    This is how the released HANet reads the unmasked ±1 neighbours of every key frame.

    Args:
        x: poses (unmasked: the neighbours of key frames are themselves non-key frames).
        key_mask: boolean key-frame mask.

    Returns:
        ``(prev, next)``.

    Shape:
        x: (B, T, C); key_mask: (T,); each output: (B, T, C)
    """
    keep = key_mask.to(x.dtype)[:, None]  # (T, 1)
    prev = torch.cat([x[:, :1], x[:, :-1]], dim=1)  # (B, T, C), frame t holds x[t-1]
    next_ = torch.cat([x[:, 1:], x[:, -1:]], dim=1)  # (B, T, C), frame t holds x[t+1]
    return prev * keep, next_ * keep


def flow(prev: torch.Tensor, current: torch.Tensor, next_: torch.Tensor) -> torch.Tensor:
    """The "flow" feature: the unweighted mean of previous, current and next frames.

    The paper describes a weighted sum; the released code uses equal weights.

    Shape:
        Each input and the output: (B, T, C)
    """
    return (prev + current + next_) / 3


def velocities(
    prev: torch.Tensor, current: torch.Tensor, next_: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward and forward frame differences, ``(current - prev, next - current)``.

    The model scales each with a learned per-channel affine before use.

    Shape:
        Each input and output: (B, T, C)
    """
    return current - prev, next_ - current


def squared_acceleration(v_minus: torch.Tensor, v_plus: torch.Tensor) -> torch.Tensor:
    """Element-wise squared acceleration ``(v+ - v-)^2`` from two velocity estimates.

    Shape:
        Each input and the output: (B, T, C)
    """
    return (v_plus - v_minus).square()


def interpolate_key_frames(poses: torch.Tensor, interval: int) -> torch.Tensor:
    """Linearly interpolate a window from its key frames (every ``interval``-th frame).

    Non-key frames of ``poses`` are ignored; key frames are reproduced exactly.

    Args:
        poses: a window whose frames ``0, N, 2N, ...`` hold the values to interpolate between.
        interval: N.

    Shape:
        poses: (B, T, C) with ``(T - 1) % N == 0``; output: (B, T, C)
    """
    window_size = poses.shape[1]
    keys = poses[:, ::interval].transpose(1, 2)  # (B, C, Q + 1)
    # align_corners=True puts key q exactly on frame q * N, so in-between frames are the
    # convex combination of their two neighbouring key frames.
    dense = F.interpolate(keys, size=window_size, mode="linear", align_corners=True)  # (B, C, T)
    return dense.transpose(1, 2)  # (B, T, C)
