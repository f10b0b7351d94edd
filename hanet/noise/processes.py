"""The random processes and conventions shared by every noise model: the AR(1) jitter whose
correlation time is fixed in seconds, outlier bursts, random directions, per-joint weights by
joint name, and the body size the errors scale with."""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from hanet.skeletons import JointLayout, get_layout

__all__ = [
    "JointWeighted",
    "ar1",
    "ar1_coefficient",
    "as_layout",
    "body_height",
    "bursts",
    "check_poses",
    "joint_weights",
    "lognormal",
    "random_directions",
]


class JointWeighted(Protocol):
    """A noise config with (name fragment, weight) pairs scaling its errors per joint."""

    joint_weights: tuple[tuple[str, float], ...]


def ar1_coefficient(fps: float, lag1_at_60fps: float = 0.8) -> float:
    """AR(1) coefficient at ``fps`` with the same correlation time as ``lag1_at_60fps`` at 60 fps.

    An AR(1) process sampled every ``dt`` has lag-1 correlation ``exp(-dt / tau)``; keeping
    ``tau`` fixed gives ``rho(fps) = rho_60 ** (60 / fps)`` (0.8 at 60 fps -> 0.64 at 30 fps).
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return float(lag1_at_60fps ** (60.0 / fps))


def joint_weights(layout: JointLayout, config: JointWeighted) -> np.ndarray:
    """Per-joint error weights ``[J]`` for a layout, normalised to mean 1."""
    weights = np.ones(layout.num_joints)
    for j, name in enumerate(layout.joints):
        for fragment, weight in config.joint_weights:
            if fragment in name:
                weights[j] = weight
                break
    return weights / weights.mean()


def body_height(gt: np.ndarray) -> float:
    """Body size used as the noise unit: the median over frames of the largest joint distance.

    For a standing person this is the ankle-to-head extent (about 0.9 of the stature); taking
    the median over frames keeps a raised arm or a crouch in a few frames from moving it.

    Shape:
        gt: ``[T, J, D]``.
    """
    gt = np.asarray(gt, dtype=np.float64)
    diff = gt[:, :, None, :] - gt[:, None, :, :]
    extent = np.sqrt((diff**2).sum(-1)).max(axis=(1, 2))
    return float(np.median(extent))


def random_directions(rng: np.random.Generator, shape: tuple[int, ...], dims: int) -> np.ndarray:
    """Unit vectors uniform on the sphere (or circle), ``shape + (dims,)``."""
    v = rng.standard_normal((*shape, dims))
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, 1e-12)


def lognormal(rng: np.random.Generator, sigma: float, shape: tuple[int, ...]) -> np.ndarray:
    """Mean-one log-normal factors."""
    return np.exp(sigma * rng.standard_normal(shape) - 0.5 * sigma * sigma)


def ar1(rng: np.random.Generator, frames: int, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Unit-variance stationary AR(1) noise ``[frames, *shape]``."""
    innovation = rng.standard_normal((frames, *shape))
    out = np.empty_like(innovation)
    out[0] = innovation[0]  # start in the stationary distribution, no burn-in transient
    scale = math.sqrt(1.0 - rho * rho)
    for t in range(1, frames):
        out[t] = rho * out[t - 1] + scale * innovation[t]
    return out


def bursts(
    rng: np.random.Generator, frames: int, joints: int, rate: float, mean_len: float
) -> tuple[np.ndarray, np.ndarray]:
    """Two-state Markov chain per joint: ``(active [T, J], burst_start [T, J])``.

    The chain is on a fraction ``rate`` of the frames on average, in bursts of geometric length
    with mean ``mean_len`` frames, so outliers come in short runs as a detector's do.
    """
    active = np.zeros((frames, joints), dtype=bool)
    start = np.zeros((frames, joints), dtype=bool)
    if rate <= 0 or frames == 0:
        return active, start
    mean_len = max(mean_len, 1.0)
    p_exit = 1.0 / mean_len
    p_enter = min(1.0, rate * p_exit / (1.0 - rate))
    u = rng.random((frames, joints))
    state = rng.random(joints) < rate
    active[0], start[0] = state, state
    for t in range(1, frames):
        enter = ~state & (u[t] < p_enter)
        stay = state & (u[t] >= p_exit)
        state = enter | stay
        active[t] = state
        # leaving and re-entering in one step cannot happen here, so a new burst always follows
        # at least one clean frame
        start[t] = enter
    return active, start


def check_poses(gt: np.ndarray, layout: JointLayout, dims: int, what: str) -> np.ndarray:
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[1:] != (layout.num_joints, dims):
        raise ValueError(
            f"{what}: expected [T, {layout.num_joints}, {dims}] for layout {layout.name!r}, "
            f"got {gt.shape}"
        )
    if not np.isfinite(gt).all():
        raise ValueError(f"{what}: ground truth holds NaN or inf")
    return gt


def as_layout(layout: JointLayout | str) -> JointLayout:
    return get_layout(layout) if isinstance(layout, str) else layout
