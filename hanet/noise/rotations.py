"""SMPL rotation noise: the same four-part model on local joint rotations (fixed per-joint
rotation offsets, AR(1) rotation jitter, outlier bursts of wrong rotations, joint weights), so
that the position error follows from forward kinematics as an SMPL regressor's does."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial.transform import Rotation

from hanet.body_fk import axis_angle_to_matrix
from hanet.noise.processes import (
    ar1,
    ar1_coefficient,
    as_layout,
    bursts,
    joint_weights,
    lognormal,
    random_directions,
)
from hanet.skeletons import JointLayout

__all__ = ["DEFAULT_SMPL", "RotationNoiseConfig", "rotation_noise", "simulate_rotations"]

# Relative rotation error per SMPL joint, matched on name fragments like DEFAULT_JOINT_WEIGHTS.
# A single-image SMPL regressor (PARE, SPIN, ...) sees the limbs' swing well and their twist
# badly: hands, wrists and feet (whose roll barely shows in the image) are worst, the torso's
# spine and collar joints (which the regressors barely move from their mean) best. The global
# orientation (pelvis) matters most for the positions, since it turns the whole body about the
# root; its weight sets how much of the position error Procrustes alignment would remove.
DEFAULT_ROTATION_JOINT_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("pelvis", 0.8),
    ("hand", 1.8),
    ("wrist", 1.6),
    ("foot", 1.5),
    ("ankle", 1.3),
    ("elbow", 1.15),
    ("knee", 1.0),
    ("shoulder", 1.0),
    ("hip", 0.9),
    ("head", 1.1),
    ("neck", 0.9),
    ("collar", 0.6),
    ("spine", 0.55),
)


@dataclass(frozen=True)
class RotationNoiseConfig:
    """Parameters of the rotation-noise model for local (parent-relative) joint rotations.

    Every perturbation is a rotation vector applied on the right, ``R_pred = R_gt @ exp(d)``,
    i.e. in the joint's own frame, so its position error accumulates down the kinematic chain
    as an estimator that regresses local rotations (SMPL's ``pose``) makes it.

    Attributes:
        strength: scales ``offset_deg`` and ``jitter_deg`` together (0 leaves only outliers).
        offset_deg: angle of the fixed per-joint rotation offset (random axis, constant over a
            sequence), degrees.
        jitter_deg: per-axis standard deviation of the stationary AR(1) rotation-vector jitter,
            degrees.
        lag1_at_60fps: lag-1 correlation of the jitter at 60 fps (see :func:`ar1_coefficient`).
        joint_weights: (name fragment, weight) pairs scaling offset and jitter per joint.
        sequence_sigma: log-normal spread of a per-sequence difficulty factor (mean 1).
        joint_sigma: log-normal spread of a per-sequence, per-joint factor (mean 1).
        outlier_rate: fraction of joint-frames inside an outlier burst.
        outlier_deg: mean outlier angle (uniform in 0.5x-1.5x of it, random axis), degrees.
        outlier_duration_s: mean length of an outlier burst, seconds (at least one frame).
    """

    strength: float = 1.0
    offset_deg: float = 11.4
    jitter_deg: float = 1.37
    lag1_at_60fps: float = 0.8
    joint_weights: tuple[tuple[str, float], ...] = DEFAULT_ROTATION_JOINT_WEIGHTS
    sequence_sigma: float = 0.0
    joint_sigma: float = 0.0
    outlier_rate: float = 0.01
    outlier_deg: float = 30.0
    outlier_duration_s: float = 0.1

    def __post_init__(self) -> None:
        for name in (
            "strength",
            "offset_deg",
            "jitter_deg",
            "sequence_sigma",
            "joint_sigma",
            "outlier_deg",
            "outlier_duration_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"RotationNoiseConfig.{name} must be >= 0, got {getattr(self, name)}"
                )
        if not 0 <= self.outlier_rate < 1:
            raise ValueError(
                f"RotationNoiseConfig.outlier_rate must be in [0, 1), got {self.outlier_rate}"
            )
        if not 0 <= self.lag1_at_60fps < 1:
            raise ValueError(
                f"RotationNoiseConfig.lag1_at_60fps must be in [0, 1), got {self.lag1_at_60fps}"
            )

    def with_(self, **changes: float) -> RotationNoiseConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)


# SMPL: a single-image SMPL regressor (PARE on 3DPW). Fitted on the bundled SMPL clips (CMU and
# DeepMimic motion at 30 fps, see scripts/make_sample.py) so that the forward-kinematics joints of
# the noisy rotations have PARE's input errors on 3DPW as DeciWatch reports them, MPJPE 80.44 mm
# and accel 26.77 mm/frame^2: over 10 fresh draws (cameras, cuts, noise; the generator's
# smpl_calibration) the 24 pelvis-relative joints give 80.0 mm and 28.0 mm/frame^2 (14 LSP
# joints: 81.3 mm, PA-MPJPE 49.7 mm; PARE's paper reports near 50 mm), with a mean geodesic
# error of 11.8 degrees per joint rotation. The fixed offsets alone give about 76 mm but only
# about 3 mm/frame^2; the jitter brings the accel error to about 20 and the outlier bursts to
# about 27 mm/frame^2. One draw's average moves by about 2 mm and 1 mm/frame^2.
DEFAULT_SMPL = RotationNoiseConfig()


def _rotation_matrices(gt: np.ndarray, layout: JointLayout, what: str) -> tuple[np.ndarray, bool]:
    """``[T, J, 3, 3]`` float64 from matrices or axis-angle, and whether it was axis-angle."""
    gt = np.asarray(gt, dtype=np.float64)
    joints = layout.num_joints
    if gt.ndim == 4 and gt.shape[1:] == (joints, 3, 3):
        matrices, axis_angle = gt, False
    elif gt.ndim == 3 and gt.shape[1:] == (joints, 3):
        matrices, axis_angle = axis_angle_to_matrix(gt), True
    else:
        raise ValueError(
            f"{what}: expected [T, {joints}, 3, 3] matrices or [T, {joints}, 3] axis-angle for "
            f"layout {layout.name!r}, got {gt.shape}"
        )
    if not np.isfinite(matrices).all():
        raise ValueError(f"{what}: ground truth holds NaN or inf")
    orthogonal = np.abs(matrices @ np.swapaxes(matrices, -1, -2) - np.eye(3)).max(initial=0.0)
    if orthogonal > 1e-5 or (len(matrices) and (np.linalg.det(matrices) < 0).any()):
        raise ValueError(f"{what}: ground truth holds matrices that are not rotations")
    return matrices, axis_angle


def rotation_noise(
    frames: int,
    layout: JointLayout | str,
    fps: float,
    rng: np.random.Generator,
    config: RotationNoiseConfig = DEFAULT_SMPL,
) -> tuple[np.ndarray, np.ndarray]:
    """Perturbation rotation vectors (radians) and the outlier mask of one sequence.

    Returns:
        ``(noise, outliers)``: ``R_pred = R_gt @ exp(noise)`` per joint-frame; where a joint is
        in an outlier burst the burst's rotation is added to its offset and jitter.

    Shape:
        noise: ``[T, J, 3]``; outliers: ``[T, J]``.
    """
    layout = as_layout(layout)
    joints = layout.num_joints
    scale = config.strength * joint_weights(layout, config)[None, :, None]
    if config.sequence_sigma:
        scale = scale * lognormal(rng, config.sequence_sigma, ())
    if config.joint_sigma:
        scale = scale * lognormal(rng, config.joint_sigma, (joints,))[None, :, None]
    offset = math.radians(config.offset_deg) * random_directions(rng, (joints,), 3)[None]
    rho = ar1_coefficient(fps, config.lag1_at_60fps)
    jitter = math.radians(config.jitter_deg) * ar1(rng, frames, (joints, 3), rho)
    noise = scale * (offset + jitter)

    active, start = bursts(
        rng, frames, joints, config.outlier_rate, config.outlier_duration_s * fps
    )
    if active.any():
        # one wrong rotation per burst, held for its duration (a flipped limb or twist)
        fresh = random_directions(rng, (frames, joints), 3)
        angle = math.radians(config.outlier_deg) * rng.uniform(0.5, 1.5, (frames, joints))
        fresh *= angle[..., None]
        held = np.zeros((joints, 3))
        burst = np.zeros((frames, joints, 3))
        for t in range(frames):
            held = np.where(start[t][:, None], fresh[t], held)
            burst[t] = np.where(active[t][:, None], held, 0.0)
        noise = noise + burst
    return noise, active


def simulate_rotations(
    gt: np.ndarray,
    layout: JointLayout | str,
    fps: float,
    rng: np.random.Generator,
    config: RotationNoiseConfig = DEFAULT_SMPL,
) -> np.ndarray:
    """Simulated SMPL-estimator output for one sequence of local joint rotations.

    The model mirrors :func:`simulate_3d`'s on rotations: a fixed per-joint rotation offset,
    AR(1) rotation jitter whose coefficient follows ``fps``, short outlier bursts, per-joint
    weights, all drawn from ``rng`` only (see :func:`rotation_noise`). The root's rotation is
    the global orientation and is perturbed like any other joint (with its own weight).

    Args:
        gt: ground-truth local rotations (the root's is the global orientation), as matrices
            or axis-angle vectors (radians).
        layout: the joint layout (or its name), for the per-joint weights.
        fps: frame rate, which sets the jitter's AR(1) coefficient and the burst lengths.
        rng: the only source of randomness.
        config: noise parameters.

    Returns:
        The noisy rotations in the form given (matrices, or axis-angle with angles in
        ``[0, pi]``).

    Shape:
        gt: ``[T, J, 3, 3]`` or ``[T, J, 3]``; output the same.
    """

    layout = as_layout(layout)
    matrices, axis_angle = _rotation_matrices(gt, layout, "simulate_rotations")
    frames = len(matrices)
    noise, _ = rotation_noise(frames, layout, fps, rng, config)
    if not frames:
        return np.asarray(gt, dtype=np.float64).copy()
    delta = Rotation.from_rotvec(noise.reshape(-1, 3)).as_matrix().reshape(noise.shape + (3,))
    pred = matrices @ delta
    if axis_angle:
        return Rotation.from_matrix(pred.reshape(-1, 3, 3)).as_rotvec().reshape(noise.shape)
    return pred
