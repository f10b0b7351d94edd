"""Position noise, in metres (:func:`simulate_3d`) or, through :mod:`hanet.noise.cameras`, in
pixels: per-joint fixed offsets, AR(1) jitter and outlier bursts scaled by the body size, and
optional left/right swaps and dropped joints."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hanet.noise.processes import (
    ar1,
    ar1_coefficient,
    as_layout,
    body_height,
    bursts,
    check_poses,
    joint_weights,
    lognormal,
    random_directions,
)
from hanet.skeletons import JointLayout

__all__ = ["DEFAULT_2D", "DEFAULT_3D", "NoiseConfig", "simulate_3d", "unit_noise", "swap_and_drop"]

# Relative error per joint, matched on name fragments (first match wins). Distal joints move
# fastest, are smallest in the image and are most often occluded, so every published per-joint
# breakdown (JHMDB, MPII, H36M) ranks wrists and ankles worst and the torso best. The weights are
# renormalised to mean 1 over a layout, so ``offset``/``jitter`` stay per-joint averages.
DEFAULT_JOINT_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("wrist", 1.5),
    ("ankle", 1.35),
    ("elbow", 1.2),
    ("knee", 1.1),
    ("hip", 1.0),
    ("shoulder", 0.85),
    ("head", 0.9),
    ("face", 0.8),
    ("nose", 0.8),
    ("eye", 0.8),
    ("ear", 0.8),
    ("neck", 0.8),
    ("thorax", 0.8),
    ("belly", 0.9),
    ("spine", 0.9),
    ("pelvis", 0.9),
)


@dataclass(frozen=True)
class NoiseConfig:
    """Parameters of the estimator-noise model. Lengths are fractions of the body height.

    Attributes:
        strength: scales ``offset`` and ``jitter`` together (0 leaves only outliers/swaps).
        offset: mean magnitude of the fixed per-joint offset.
        jitter: per-axis standard deviation of the stationary AR(1) jitter.
        lag1_at_60fps: lag-1 correlation of the jitter at 60 fps; other rates keep its
            correlation time (see :func:`ar1_coefficient`).
        joint_weights: (name fragment, weight) pairs scaling offset and jitter per joint.
        sequence_sigma: log-normal spread of a per-sequence difficulty factor (mean 1).
        joint_sigma: log-normal spread of a per-sequence, per-joint factor (mean 1): a limb
            that is occluded or blurred through a whole clip.
        frame_sigma: log-normal spread of a slowly varying per-frame factor shared by all
            joints (mean 1): stretches of motion blur, occlusion or odd poses.
        frame_time_s: correlation time of the per-frame factor, seconds.
        outlier_rate: fraction of joint-frames that are outliers.
        outlier_scale: mean outlier displacement (uniform in 0.5x-1.5x of it).
        outlier_duration_s: mean length of an outlier burst, seconds (at least one frame).
        swap_rate: left/right swap bursts per second of video (0 disables swaps).
        swap_duration_s: mean length of a swap burst, seconds.
        drop_frame_rate: probability that a whole frame is missing.
        drop_joint_rate: probability that a single joint-frame is missing.
    """

    strength: float = 1.0
    offset: float = 0.025
    jitter: float = 0.003
    lag1_at_60fps: float = 0.8
    joint_weights: tuple[tuple[str, float], ...] = DEFAULT_JOINT_WEIGHTS
    sequence_sigma: float = 0.0
    joint_sigma: float = 0.0
    frame_sigma: float = 0.0
    frame_time_s: float = 0.5
    outlier_rate: float = 0.015
    outlier_scale: float = 0.3
    outlier_duration_s: float = 0.05
    swap_rate: float = 0.0
    swap_duration_s: float = 0.15
    drop_frame_rate: float = 0.0
    drop_joint_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "strength",
            "offset",
            "jitter",
            "sequence_sigma",
            "joint_sigma",
            "frame_sigma",
            "frame_time_s",
            "outlier_scale",
            "swap_rate",
            "outlier_duration_s",
            "swap_duration_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"NoiseConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("outlier_rate", "drop_frame_rate", "drop_joint_rate"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"NoiseConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.lag1_at_60fps < 1:
            raise ValueError(
                f"NoiseConfig.lag1_at_60fps must be in [0, 1), got {self.lag1_at_60fps}"
            )

    def with_(self, **changes: float) -> NoiseConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)


# 3D: a monocular 3D estimator that predicts root-relative joints (H36M FCN). With the root
# joint exact and the others carrying this noise, strength 1.2 gives, for a 1.7 m person at
# 50 fps, an MPJPE of ~55 mm (offset ~51 mm, jitter, 1.5 % outliers adding ~6 mm) and an accel
# error of ~20 mm/frame^2 (about half of it from outlier bursts), matching FCN's published input
# errors of 54.6 mm and 19.2 mm/frame^2.
DEFAULT_3D = NoiseConfig(strength=1.2)

# 2D: a low-resolution (320x240) single-frame 2D detector. Fitted (see scripts/make_sample.py) so
# that the input PCK@0.05/0.1/0.2 over the bundled 2D clips is SimpleBaseline's on Sub-JHMDB,
# 57.3 / 81.6 / 93.9 %. The spread (per sequence, per joint, per stretch of frames) matters as
# much as the strength: no single error scale gives so heavy a tail (a Rayleigh error with 57 %
# within 0.05 would have 97 % within 0.1).
# A per-frame heatmap detector on blurry low-resolution frames jitters more than a 3D model
# with temporal context, hence the larger jitter.
DEFAULT_2D = NoiseConfig(
    strength=2.3,
    jitter=0.007,
    sequence_sigma=0.3,
    joint_sigma=0.5,
    frame_sigma=0.6,
    swap_rate=0.25,
)


def unit_noise(
    frames: int,
    layout: JointLayout,
    dims: int,
    fps: float,
    rng: np.random.Generator,
    config: NoiseConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Displacements in body-height units, ``[T, J, dims]``, and the outlier mask ``[T, J]``."""
    joints = layout.num_joints
    scale = config.strength * joint_weights(layout, config)[None, :, None]
    # Heterogeneity: mean-one log-normal factors, so the sigmas change the spread of the error,
    # not its average. Spreading it over joints and time rather than only over sequences keeps
    # a short test split's average close to the population's.
    if config.sequence_sigma:
        scale = scale * lognormal(rng, config.sequence_sigma, ())
    if config.joint_sigma:
        scale = scale * lognormal(rng, config.joint_sigma, (joints,))[None, :, None]
    if config.frame_sigma:
        rho_frame = math.exp(-1.0 / max(fps * config.frame_time_s, 1e-9))
        z = ar1(rng, frames, (), rho_frame)
        scale = scale * np.exp(config.frame_sigma * z - 0.5 * config.frame_sigma**2)[:, None, None]
    offset = config.offset * random_directions(rng, (joints,), dims)[None]
    rho = ar1_coefficient(fps, config.lag1_at_60fps)
    jitter = config.jitter * ar1(rng, frames, (joints, dims), rho)
    noise = scale * (offset + jitter)

    active, start = bursts(
        rng, frames, joints, config.outlier_rate, config.outlier_duration_s * fps
    )
    if active.any():
        # one displacement per burst: the detector sits on the same wrong spot for its duration
        fresh = random_directions(rng, (frames, joints), dims)
        fresh *= (config.outlier_scale * rng.uniform(0.5, 1.5, (frames, joints)))[..., None]
        held = np.zeros((joints, dims))
        displacement = np.zeros((frames, joints, dims))
        for t in range(frames):
            held = np.where(start[t][:, None], fresh[t], held)
            displacement[t] = np.where(active[t][:, None], held, 0.0)
        noise = noise + displacement
    return noise, active


def swap_and_drop(
    pred: np.ndarray,
    layout: JointLayout,
    fps: float,
    rng: np.random.Generator,
    config: NoiseConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply left/right swap bursts in place and draw the missing mask ``[T, J]``."""
    frames = len(pred)
    pairs = layout.flip_pairs
    if config.swap_rate > 0 and pairs and frames:
        bursts = rng.poisson(config.swap_rate * frames / fps)
        mean_len = max(1.0, config.swap_duration_s * fps)
        for _ in range(bursts):
            left, right = pairs[rng.integers(len(pairs))]
            begin = int(rng.integers(frames))
            length = int(rng.integers(1, max(2, round(2 * mean_len))))
            span = slice(begin, min(frames, begin + length))
            pred[span, [left, right]] = pred[span, [right, left]]
    missing = np.zeros((frames, layout.num_joints), dtype=bool)
    if config.drop_frame_rate > 0:
        missing |= (rng.random(frames) < config.drop_frame_rate)[:, None]
    if config.drop_joint_rate > 0:
        missing |= rng.random(missing.shape) < config.drop_joint_rate
    pred[missing] = np.nan
    return pred, missing


# ----------------------------------------------------------------------------------------------
# 3D


def simulate_3d(
    gt: np.ndarray,
    layout: JointLayout | str,
    fps: float,
    rng: np.random.Generator,
    config: NoiseConfig = DEFAULT_3D,
    *,
    height: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated 3D estimator output for one sequence.

    Args:
        gt: ground-truth joints, metres.
        layout: the joint layout (or its name); its flip pairs are the swap candidates.
        fps: frame rate, which sets the jitter's AR(1) coefficient and burst lengths.
        rng: the only source of randomness.
        config: noise parameters.
        height: body height in metres; by default :func:`body_height` of ``gt``.

    Returns:
        ``(pred, missing)``: predictions in metres (NaN where missing) and the missing mask.

    Shape:
        gt: ``[T, J, 3]``; pred: ``[T, J, 3]``; missing: ``[T, J]``.
    """
    layout = as_layout(layout)
    gt = check_poses(gt, layout, 3, "simulate_3d")
    unit = body_height(gt) if height is None else float(height)
    noise, _ = unit_noise(len(gt), layout, 3, fps, rng, config)
    pred = gt + unit * noise
    return swap_and_drop(pred, layout, fps, rng, config)
