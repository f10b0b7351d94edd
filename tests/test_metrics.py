"""Metrics on tiny hand-computed cases."""

import math

import numpy as np
import pytest

from hanet.metrics import (
    accel,
    accel_error,
    accel_error_per_frame,
    accel_magnitude_per_frame,
    geodesic_angle_deg,
    mean_pixel_error,
    mpjpe,
    mpjpe_per_frame,
    pa_mpjpe,
    pck,
    pck_mean,
    position_errors,
    rotation_6d_to_matrix,
)


def _with_errors(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gt at 0, pred displaced along x by the given pixel errors ``[T, J]``."""
    gt = np.zeros(errors.shape + (2,))
    pred = gt.copy()
    pred[..., 0] = errors
    return pred, gt


def test_pck_is_sequence_weighted() -> None:
    # Sequence A: 2 frames, box 10x5 -> threshold 0.2 * 10 = 2 px.
    pred_a, gt_a = _with_errors(np.array([[1.0, 0.0], [3.0, 2.0]]))
    pck_a = pck(pred_a, gt_a, np.array([[0, 0, 10, 5]] * 2), alpha=0.2)
    np.testing.assert_allclose(pck_a, [0.5, 1.0])  # 2 px counts as correct (<=)
    # Sequence B: 4 frames, box 4x20 -> threshold 4 px.
    pred_b, gt_b = _with_errors(np.array([[5.0, 0.0]] * 3 + [[0.0, 0.0]]))
    pck_b = pck(pred_b, gt_b, np.array([[0, 0, 4, 20]] * 4), alpha=0.2)
    np.testing.assert_allclose(pck_b, [0.25, 1.0])
    # Mean of the 2x2 matrix; pooling the 6 frames would give (2/6 + 6/6) / 2 = 0.6667.
    assert pck_mean([pck_a, pck_b]) == pytest.approx(0.6875)


def test_pck_masks() -> None:
    pred, gt = _with_errors(np.array([[1.0, 0.0], [3.0, 2.0]]))
    bbox = np.array([[0, 0, 10, 5]] * 2)
    valid = np.array([[True, False], [False, False]])
    got = pck(pred, gt, bbox, alpha=0.2, valid=valid)
    assert got[0] == 1.0 and math.isnan(got[1])  # joint 1 never scored
    assert pck_mean([got, np.array([0.5, 0.5])]) == pytest.approx(2 / 3)
    np.testing.assert_allclose(pck(pred, gt, bbox, 0.2, valid=np.array([True, False])), [1, 1])


def test_mean_pixel_error() -> None:
    pred = np.array([[[3.0, 4.0], [0.0, 0.0]]])
    gt = np.zeros((1, 2, 2))
    assert mean_pixel_error(pred, gt) == pytest.approx(2.5)
    assert mean_pixel_error(pred, gt, np.array([[True, False]])) == pytest.approx(5.0)


def _mpjpe_case() -> tuple[np.ndarray, np.ndarray]:
    # Root at the origin; pred is translated by (5, 5, 5) m, which centring removes.
    gt = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    pred = gt + 5.0
    pred[0, 1] += [0.003, 0.004, 0.0]  # 3-4-5: 5 mm
    pred[0, 2] += [0.0, 0.006, 0.008]  # 6-8-10: 10 mm
    return pred, gt


def test_mpjpe_three_four_five() -> None:
    pred, gt = _mpjpe_case()
    assert mpjpe(pred, gt, roots=(0,)) == pytest.approx(5.0)  # (0 + 5 + 10) / 3
    assert mpjpe(pred, gt, valid=np.array([[True, True, False]])) == pytest.approx(2.5)
    # Per-frame values over two identical frames.
    two = np.concatenate([pred, pred])
    np.testing.assert_allclose(mpjpe_per_frame(two, np.concatenate([gt, gt])), [5.0, 5.0])
    # A frame without a valid root cannot be centred and is skipped.
    got = mpjpe_per_frame(two, np.concatenate([gt, gt]), valid=np.array([[0, 1, 1], [1, 1, 1]]))
    assert math.isnan(got[0]) and got[1] == pytest.approx(5.0)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_pa_mpjpe_removes_similarity_transforms() -> None:
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(4, 6, 3))
    pred = np.stack(
        [1.7 * g @ _random_rotation(rng).T + rng.normal(size=3) for g in gt]
    )  # a different scale, rotation and translation per frame
    assert mpjpe(pred, gt) > 100.0
    assert pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-6)


def test_pa_mpjpe_hand_case() -> None:
    # gt: a unit "diamond"; pred: the same squashed to a = 0.5 along y, rotated 90 deg about z.
    gt = np.array([[[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]])
    rot_z = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    pred = np.array([[[1.0, 0, 0], [-1, 0, 0], [0, 0.5, 0], [0, -0.5, 0]]]) @ rot_z.T
    # Unaligned: two joints off by sqrt(2), two by sqrt(1.25) (metres).
    raw = (2 * math.sqrt(2) + 2 * math.sqrt(1.25)) / 4 * 1000
    assert mpjpe(pred, gt, roots=()) == pytest.approx(raw)
    # Aligned: rotation undone, scale s = (2 + 2a) / (2 + 2a^2) = 1.2, so errors |1.2 - 1| = 0.2
    # and |0.6 - 1| = 0.4 -> mean 0.3 m.
    assert pa_mpjpe(pred, gt) == pytest.approx(300.0)
    # A fifth, garbage joint that is masked out neither moves the fit nor the mean.
    pred5 = np.concatenate([pred, [[[50.0, -20, 7]]]], axis=1)
    gt5 = np.concatenate([gt, [[[np.nan, np.nan, np.nan]]]], axis=1)
    valid = np.array([[True, True, True, True, False]])
    assert pa_mpjpe(pred5, gt5, valid) == pytest.approx(300.0)


def test_accel_helper() -> None:
    x = np.array([0.0, 1.0, 4.0, 9.0])  # t^2: second difference 2
    np.testing.assert_allclose(accel(x), [2.0, 2.0])


def test_accel_error_constant_acceleration_is_zero() -> None:
    t = np.arange(10.0)[:, None, None]
    gt = 0.5 * 9.81 * t**2 * np.array([0.0, 0.0, 1.0]) + np.zeros((10, 3, 3))
    pred = gt + 0.2 + 0.05 * t  # offset and drift have no second difference
    assert accel_error(pred, gt) == pytest.approx(0.0, abs=1e-9)


def test_accel_error_spike() -> None:
    gt = np.zeros((5, 2, 3))
    pred = gt.copy()
    pred[2, 0] = [0.003, 0.004, 0.0]  # a 5 mm spike on joint 0 at frame 2
    # Second differences of joint 0: d, -2d, d -> 5, 10, 5 mm; joint 1 has none.
    assert accel_error(pred[:, :1], gt[:, :1]) == pytest.approx(20 / 3)
    assert accel_error(pred, gt) == pytest.approx(10 / 3)
    # Frame 4 invalid: only the triples centred on frames 1 and 2 remain.
    valid = np.array([True, True, True, True, False])
    assert accel_error(pred[:, :1], gt[:, :1], valid) == pytest.approx(7.5)
    assert math.isnan(accel_error(pred[:2], gt[:2]))


def test_3d_accel_error_with_roots_scores_the_pose_not_the_roots_path() -> None:
    rng = np.random.default_rng(5)
    gt = rng.normal(scale=0.3, size=(12, 4, 3))
    pose_noise = np.zeros_like(gt)
    pose_noise[6, 1] = [0.003, 0.004, 0.0]  # a 5 mm spike on joint 1 (not a root) at frame 6
    root_jitter = rng.normal(scale=0.05, size=(12, 1, 3))  # the whole body shifts every frame
    pred = gt + pose_noise + root_jitter
    # Centred on roots 0 and 2, the shift is gone: what is left is the spike, as in root-relative
    # data. The spike moves the root mean by nothing (joint 1 is no root).
    assert accel_error(pred, gt, roots=(0, 2)) == pytest.approx(
        accel_error(gt + pose_noise, gt), rel=1e-9
    )
    assert accel_error(pred, gt) > 10 * accel_error(pred, gt, roots=(0, 2))
    # A root that is not valid on a frame leaves out every triple through that frame.
    valid = np.ones((12, 4), dtype=bool)
    valid[6, 0] = False
    per_frame = accel_error_per_frame(pred, gt, valid, roots=(0, 2))
    assert np.isnan(per_frame[4:7]).all() and not np.isnan(per_frame[[0, 3, 7, 9]]).any()


def test_rotation_6d_to_matrix() -> None:
    np.testing.assert_allclose(rotation_6d_to_matrix(np.array([1.0, 0, 0, 0, 1, 0])), np.eye(3))
    rot_z = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    # Zhou et al.: the first two columns, concatenated.
    np.testing.assert_allclose(rotation_6d_to_matrix(rot_z[:, :2].T.reshape(6)), rot_z)
    # SPIN-style storage: the 3x2 block, row-major.
    np.testing.assert_allclose(
        rotation_6d_to_matrix(rot_z[:, :2].reshape(6), interleaved=True), rot_z
    )
    # Any non-degenerate input gives a proper rotation.
    r = rotation_6d_to_matrix(np.random.default_rng(0).normal(size=(7, 6)))
    np.testing.assert_allclose(
        r.transpose(0, 2, 1) @ r, np.broadcast_to(np.eye(3), r.shape), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(r), 1.0)


def test_geodesic_angle() -> None:
    identity = np.array([1.0, 0, 0, 0, 1, 0])
    rot_z90 = np.array([0.0, 1, 0, -1, 0, 0])  # columns (0, 1, 0) and (-1, 0, 0)
    rot_x180 = np.array([1.0, 0, 0, 0, -1, 0])
    pred = np.stack([identity, identity])[None]  # [T=1, J=2, 6]
    gt = np.stack([rot_z90, rot_x180])[None]
    assert geodesic_angle_deg(pred, gt) == pytest.approx(135.0)
    assert geodesic_angle_deg(pred, gt, valid=np.array([[True, False]])) == pytest.approx(90.0)
    assert geodesic_angle_deg(gt, gt) == pytest.approx(0.0, abs=1e-5)


def test_per_frame_errors_give_the_dataset_figures() -> None:
    rng = np.random.default_rng(3)
    gt = rng.normal(size=(9, 4, 3))
    pred = gt + rng.normal(scale=0.01, size=gt.shape)
    valid = np.ones((9, 4), dtype=bool)
    valid[4, 1] = False  # frames 3, 4 and 5 lose joint 1 from their triples
    per_frame = accel_error_per_frame(pred, gt, valid)
    assert per_frame.shape == (7,)
    # Frame 4 (index 3) by hand: the mean over the joints whose triple is complete.
    diff = np.linalg.norm(accel(pred)[3] - accel(gt)[3], axis=-1)
    assert per_frame[3] == pytest.approx(diff[[0, 2, 3]].mean())
    assert accel_error(pred, gt, valid) == pytest.approx(per_frame.mean() * 1000)
    assert np.isnan(accel_error_per_frame(pred, gt, np.zeros((9, 4), bool))).all()
    assert accel_error_per_frame(pred[:2], gt[:2]).shape == (0,)
    np.testing.assert_allclose(position_errors(pred, gt), np.linalg.norm(pred - gt, axis=-1))
    still = np.repeat(gt[:1], 5, axis=0)
    assert np.allclose(accel_magnitude_per_frame(still), 0.0)
