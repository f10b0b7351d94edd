"""2D estimator noise: a pinhole camera projects the 3D ground truth into an image, and the
position noise is applied in pixels, scaled by the projected body height."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hanet.noise.positions import DEFAULT_2D, NoiseConfig, swap_and_drop, unit_noise
from hanet.noise.processes import as_layout, body_height, check_poses
from hanet.skeletons import JointLayout

__all__ = ["PinholeCamera", "look_at", "random_camera", "simulate_2d"]


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
    layout = as_layout(layout)
    gt3d = check_poses(gt3d, layout, 3, "simulate_2d")
    unit = body_height(gt3d) if height is None else float(height)
    if camera is None:
        camera = random_camera(gt3d, rng, height=unit, bounds=bbox_points)
    gt_px = camera.project(gt3d)
    root = layout.root(gt3d)  # [T, 1, 3]
    depth = camera.to_camera(root)[:, 0, 2]
    scale_px = camera.focal * unit / depth
    noise, _ = unit_noise(len(gt3d), layout, 2, fps, rng, config)
    pred = gt_px + scale_px[:, None, None] * noise
    pred, missing = swap_and_drop(pred, layout, fps, rng, config)
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
