"""Estimator-noise simulator: ground-truth joints in, realistic pose-estimator output out.

Real single-view estimators do not add white noise. Measured against a multi-view reference, their
error has four parts, and the simulator reproduces each:

* a **fixed per-joint offset** (the estimator's idea of where a joint sits differs from the
  marker's): about ``0.025 x body height`` per joint, constant over a sequence, random direction;
* **temporal jitter** that is strongly correlated from frame to frame: an AR(1) process whose
  lag-1 correlation is about 0.8 at 60 fps. The coefficient is derived from the frame rate
  (``rho = 0.8 ** (60 / fps)``, about 0.64 at 30 fps) so the correlation *time* stays constant
  whatever the rate;
* **outliers**: 1-2 % of the joint-frames, in short bursts, land about ``0.3 x body height`` away
  (the detector latched onto the other limb or the background);
* optional **left/right swaps** of one layout flip pair for a few frames, and optional **dropped**
  joints or whole frames (marked missing; the prediction there is NaN).

Errors also differ by joint (wrists and ankles are worse than shoulders) and by sequence (blur,
occlusion, clothing), which is what gives real estimators their heavy-tailed error distribution;
``NoiseConfig.joint_weights`` and ``NoiseConfig.sequence_sigma`` model that. ``strength`` scales the
offset and the jitter together.

Three entry points: :func:`simulate_3d` works in metres; :func:`simulate_2d` projects the 3D
ground truth through a pinhole camera and applies the same model in pixels, scaled by the projected
body height; :func:`simulate_rotations` applies it to SMPL-style local joint rotations (fixed
per-joint rotation offsets, AR(1) rotation jitter, outlier bursts of wrong rotations, per-joint
weights; :class:`RotationNoiseConfig`, angles in degrees), so that the position error follows
from forward kinematics as an SMPL regressor's does.

:class:`NoiseConfig`'s defaults (``strength`` 1) describe the measured estimator;
:data:`DEFAULT_3D` is calibrated on the H36M FCN input statistics (MPJPE 54.6 mm, accel
19.2 mm/frame^2 at 50 fps) and :data:`DEFAULT_2D` on SimpleBaseline's input PCK on Sub-JHMDB
(57.3 / 81.6 / 93.9 % at alpha 0.05 / 0.1 / 0.2); :data:`DEFAULT_SMPL` on PARE's SMPL input
errors on 3DPW (MPJPE 80.44 mm, accel 26.77 mm/frame^2 at 30 fps, of the FK joints).

Everything is numpy (and scipy's ``Rotation`` for the rotation model) and draws only from the
``np.random.Generator`` passed in, so a seed reproduces the output exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hanet.skeletons import JointLayout, get_layout

__all__ = [
    "DEFAULT_2D",
    "DEFAULT_3D",
    "DEFAULT_SMPL",
    "NoiseConfig",
    "PinholeCamera",
    "RotationNoiseConfig",
    "ar1_coefficient",
    "body_height",
    "joint_weights",
    "look_at",
    "random_camera",
    "rotation_noise",
    "simulate_2d",
    "simulate_3d",
    "simulate_rotations",
]

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


# ----------------------------------------------------------------------------------------------
# Helpers


def ar1_coefficient(fps: float, lag1_at_60fps: float = 0.8) -> float:
    """AR(1) coefficient at ``fps`` with the same correlation time as ``lag1_at_60fps`` at 60 fps.

    An AR(1) process sampled every ``dt`` has lag-1 correlation ``exp(-dt / tau)``; keeping
    ``tau`` fixed gives ``rho(fps) = rho_60 ** (60 / fps)`` (0.8 at 60 fps -> 0.64 at 30 fps).
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return float(lag1_at_60fps ** (60.0 / fps))


def joint_weights(layout: JointLayout, config: NoiseConfig | RotationNoiseConfig) -> np.ndarray:
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


def _random_directions(rng: np.random.Generator, shape: tuple[int, ...], dims: int) -> np.ndarray:
    """Unit vectors uniform on the sphere (or circle), ``shape + (dims,)``."""
    v = rng.standard_normal((*shape, dims))
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, 1e-12)


def _lognormal(rng: np.random.Generator, sigma: float, shape: tuple[int, ...]) -> np.ndarray:
    """Mean-one log-normal factors."""
    return np.exp(sigma * rng.standard_normal(shape) - 0.5 * sigma * sigma)


def _ar1(rng: np.random.Generator, frames: int, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Unit-variance stationary AR(1) noise ``[frames, *shape]``."""
    innovation = rng.standard_normal((frames, *shape))
    out = np.empty_like(innovation)
    out[0] = innovation[0]  # start in the stationary distribution, no burn-in transient
    scale = math.sqrt(1.0 - rho * rho)
    for t in range(1, frames):
        out[t] = rho * out[t - 1] + scale * innovation[t]
    return out


def _bursts(
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


def _unit_noise(
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
        scale = scale * _lognormal(rng, config.sequence_sigma, ())
    if config.joint_sigma:
        scale = scale * _lognormal(rng, config.joint_sigma, (joints,))[None, :, None]
    if config.frame_sigma:
        rho_frame = math.exp(-1.0 / max(fps * config.frame_time_s, 1e-9))
        z = _ar1(rng, frames, (), rho_frame)
        scale = scale * np.exp(config.frame_sigma * z - 0.5 * config.frame_sigma**2)[:, None, None]
    offset = config.offset * _random_directions(rng, (joints,), dims)[None]
    rho = ar1_coefficient(fps, config.lag1_at_60fps)
    jitter = config.jitter * _ar1(rng, frames, (joints, dims), rho)
    noise = scale * (offset + jitter)

    active, start = _bursts(
        rng, frames, joints, config.outlier_rate, config.outlier_duration_s * fps
    )
    if active.any():
        # one displacement per burst: the detector sits on the same wrong spot for its duration
        fresh = _random_directions(rng, (frames, joints), dims)
        fresh *= (config.outlier_scale * rng.uniform(0.5, 1.5, (frames, joints)))[..., None]
        held = np.zeros((joints, dims))
        displacement = np.zeros((frames, joints, dims))
        for t in range(frames):
            held = np.where(start[t][:, None], fresh[t], held)
            displacement[t] = np.where(active[t][:, None], held, 0.0)
        noise = noise + displacement
    return noise, active


def _swap_and_drop(
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


def _check_poses(gt: np.ndarray, layout: JointLayout, dims: int, what: str) -> np.ndarray:
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[1:] != (layout.num_joints, dims):
        raise ValueError(
            f"{what}: expected [T, {layout.num_joints}, {dims}] for layout {layout.name!r}, "
            f"got {gt.shape}"
        )
    if not np.isfinite(gt).all():
        raise ValueError(f"{what}: ground truth holds NaN or inf")
    return gt


def _layout(layout: JointLayout | str) -> JointLayout:
    return get_layout(layout) if isinstance(layout, str) else layout


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
    layout = _layout(layout)
    gt = _check_poses(gt, layout, 3, "simulate_3d")
    unit = body_height(gt) if height is None else float(height)
    noise, _ = _unit_noise(len(gt), layout, 3, fps, rng, config)
    pred = gt + unit * noise
    return _swap_and_drop(pred, layout, fps, rng, config)


# ----------------------------------------------------------------------------------------------
# 2D: pinhole camera and pixel-space noise


@dataclass(frozen=True)
class PinholeCamera:
    """A perspective pinhole camera; world units are metres.

    Camera coordinates are x right, y down, z forward (into the scene), as in OpenCV and the
    H36M camera files: ``x_cam = R @ x_world + t``, ``u = f * x / z + cx``, ``v = f * y / z + cy``.

    Attributes:
        focal: focal length, pixels (square pixels).
        center: principal point ``(cx, cy)``, pixels.
        rotation: world-to-camera rotation ``[3, 3]``, or ``[T, 3, 3]`` for a panning camera.
        translation: world-to-camera translation ``[3]`` or ``[T, 3]``.
        image_size: ``(W, H)`` pixels.
    """

    focal: float
    center: tuple[float, float]
    rotation: np.ndarray
    translation: np.ndarray
    image_size: tuple[int, int]

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points ``[T, K, 3]`` to camera coordinates (per frame for a moving camera)."""
        points = np.asarray(points, dtype=np.float64)
        rot = np.asarray(self.rotation, dtype=np.float64)
        trans = np.asarray(self.translation, dtype=np.float64)
        if rot.ndim == 2:
            return points @ rot.T + trans
        return np.einsum("tij,tkj->tki", rot, points) + trans[:, None, :]

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points ``[T, K, 3]`` to pixels ``[T, K, 2]``."""
        cam = self.to_camera(points)
        z = cam[..., 2:3]
        if (z <= 1e-6).any():
            raise ValueError("a point lies at or behind the camera plane")
        return self.focal * cam[..., :2] / z + np.asarray(self.center)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """World-to-camera rotation(s) for a camera at ``eye`` looking at ``target`` (y-up world).

    Shape:
        eye, target: ``[..., 3]``; output ``[..., 3, 3]`` with rows = camera x, y, z axes.
    """
    up = np.array([0.0, 1.0, 0.0]) if up is None else np.asarray(up, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, up)  # image x points right when the world's up is image up
    right = right / np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=-2)


def random_camera(
    gt3d: np.ndarray,
    rng: np.random.Generator,
    *,
    height: float | None = None,
    image_size: tuple[int, int] = (320, 240),
    focal_range: tuple[float, float] = (250.0, 420.0),
    elevation_deg: tuple[float, float] = (-5.0, 30.0),
    fill_range: tuple[float, float] = (0.45, 0.85),
    pan_probability: float = 0.5,
    bounds: np.ndarray | None = None,
) -> PinholeCamera:
    """A random camera that frames the person the way web video does (e.g. JHMDB's 320x240).

    Azimuth is uniform, elevation mostly slightly above the person, and the distance makes the
    body height fill ``fill_range`` of the image height; if the subject's path would leave the
    frame the camera backs off. With ``pan_probability`` the camera stays put but turns to follow
    the (smoothed) body centre, as a hand-held or panning shot does; otherwise it is static.

    Args:
        gt3d: ground-truth joints ``[T, J, 3]``, metres, y-up world.
        rng: random source.
        height: body height in metres (default :func:`body_height`).
        image_size: ``(W, H)``.
        focal_range: focal length range, pixels.
        elevation_deg: camera elevation range above the body centre, degrees.
        fill_range: range of the body height as a fraction of the image height.
        pan_probability: chance of a panning (subject-following) camera.
        bounds: extra points ``[T, K, 3]`` (head top, toes) that should stay in view.
    """
    gt3d = np.asarray(gt3d, dtype=np.float64)
    points = gt3d if bounds is None else np.concatenate([gt3d, bounds], axis=1)
    unit = body_height(gt3d) if height is None else float(height)
    width, image_height = image_size
    focal = rng.uniform(*focal_range)
    azimuth = rng.uniform(0.0, 2.0 * np.pi)
    elevation = np.deg2rad(rng.uniform(*elevation_deg))
    fill = rng.uniform(*fill_range)
    pan = rng.random() < pan_probability

    centre = points.mean(axis=1)  # [T, 3] per-frame body centre
    # a hand-held camera lags the subject a little: exponential smoothing of the centre
    smooth = centre.copy()
    for t in range(1, len(smooth)):
        smooth[t] = 0.7 * smooth[t - 1] + 0.3 * centre[t]
    target_static = centre.mean(axis=0)
    direction = np.array(
        [
            np.cos(elevation) * np.cos(azimuth),
            np.sin(elevation),
            np.cos(elevation) * np.sin(azimuth),
        ]
    )
    distance = focal * unit / (fill * image_height)
    centre_xy = np.array([width / 2.0, image_height / 2.0])
    for _ in range(8):
        eye = target_static + distance * direction
        if pan:
            rotation = look_at(np.broadcast_to(eye, smooth.shape), smooth)
            translation = -np.einsum("tij,j->ti", rotation, eye)
        else:
            rotation = look_at(eye, target_static)
            translation = -rotation @ eye
        camera = PinholeCamera(
            float(focal),
            (width / 2.0, image_height / 2.0),
            rotation,
            translation,
            (int(width), int(image_height)),
        )
        cam = camera.to_camera(points)
        if (cam[..., 2] > 0.3).all():
            uv = camera.project(points)
            reach = np.abs(uv - centre_xy) / (0.48 * np.array([width, image_height]))
            worst = float(reach.max())
            if worst <= 1.0:
                return camera
            distance *= min(worst, 1.5)
        else:
            distance *= 1.5
    return camera


def _bbox(points: np.ndarray, margin: float) -> np.ndarray:
    """Per-frame box ``x1, y1, x2, y2`` around ``[T, K, 2]`` points, grown by ``margin`` x size."""
    low, high = points.min(axis=1), points.max(axis=1)
    grow = margin * (high - low).max(axis=1, keepdims=True)
    return np.concatenate([low - grow, high + grow], axis=1)


def simulate_2d(
    gt3d: np.ndarray,
    layout: JointLayout | str,
    fps: float,
    rng: np.random.Generator,
    camera: PinholeCamera | None = None,
    config: NoiseConfig = DEFAULT_2D,
    *,
    height: float | None = None,
    bbox_points: np.ndarray | None = None,
    bbox_margin: float = 0.03,
) -> dict[str, object]:
    """Project 3D ground truth into an image and simulate a 2D estimator on it.

    The noise model is the 3D one applied in pixel space, in units of the *projected* body
    height of each frame (``focal * height / depth of the root``), so a person twice as far away
    gets half the pixel error, as a detector working at a fixed input resolution does.

    Args:
        gt3d: ground-truth joints, metres, y-up world.
        layout: the 2D joint layout (or its name).
        fps: frame rate.
        rng: the only source of randomness.
        camera: the camera; by default :func:`random_camera` draws one from ``rng``.
        config: noise parameters.
        height: body height in metres (default :func:`body_height` of ``gt3d``).
        bbox_points: extra points ``[T, K, 3]`` (head top, toes, hands) whose projections the
            ground-truth box must also hold, as a box drawn around the whole body does.
        bbox_margin: box growth on each side, as a fraction of its larger side.

    Returns:
        A dict with ``pred_px`` ``[T, J, 2]`` (NaN where missing), ``gt_px`` ``[T, J, 2]``,
        ``bbox`` ``[T, 4]`` (``x1, y1, x2, y2`` from the ground truth), ``image_size``
        ``(W, H)``, ``missing`` ``[T, J]``, ``camera`` and ``scale_px`` ``[T]`` (projected body
        height per frame).
    """
    layout = _layout(layout)
    gt3d = _check_poses(gt3d, layout, 3, "simulate_2d")
    unit = body_height(gt3d) if height is None else float(height)
    if camera is None:
        camera = random_camera(gt3d, rng, height=unit, bounds=bbox_points)
    gt_px = camera.project(gt3d)
    root = layout.root(gt3d)  # [T, 1, 3]
    depth = camera.to_camera(root)[:, 0, 2]
    scale_px = camera.focal * unit / depth
    noise, _ = _unit_noise(len(gt3d), layout, 2, fps, rng, config)
    pred = gt_px + scale_px[:, None, None] * noise
    pred, missing = _swap_and_drop(pred, layout, fps, rng, config)
    outline = (
        gt_px
        if bbox_points is None
        else np.concatenate([gt_px, camera.project(bbox_points)], axis=1)
    )
    return {
        "pred_px": pred,
        "gt_px": gt_px,
        "bbox": _bbox(outline, bbox_margin),
        "image_size": camera.image_size,
        "missing": missing,
        "camera": camera,
        "scale_px": scale_px,
    }


# ----------------------------------------------------------------------------------------------
# SMPL rotations: the same four-part model on local joint rotations

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
    from hanet.body_fk import axis_angle_to_matrix

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
    layout = _layout(layout)
    joints = layout.num_joints
    scale = config.strength * joint_weights(layout, config)[None, :, None]
    if config.sequence_sigma:
        scale = scale * _lognormal(rng, config.sequence_sigma, ())
    if config.joint_sigma:
        scale = scale * _lognormal(rng, config.joint_sigma, (joints,))[None, :, None]
    offset = math.radians(config.offset_deg) * _random_directions(rng, (joints,), 3)[None]
    rho = ar1_coefficient(fps, config.lag1_at_60fps)
    jitter = math.radians(config.jitter_deg) * _ar1(rng, frames, (joints, 3), rho)
    noise = scale * (offset + jitter)

    active, start = _bursts(
        rng, frames, joints, config.outlier_rate, config.outlier_duration_s * fps
    )
    if active.any():
        # one wrong rotation per burst, held for its duration (a flipped limb or twist)
        fresh = _random_directions(rng, (frames, joints), 3)
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
    from scipy.spatial.transform import Rotation

    layout = _layout(layout)
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
