"""The estimator-noise simulator's statistics, its camera, and the bundled sample built with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hanet.body_fk import forward_kinematics, layout_parents
from hanet.formats.published import find_published_pairs, read_published_pair
from hanet.io.location import parse_location
from hanet.metrics import geodesic_angle_deg
from hanet.noise.cameras import PinholeCamera, look_at, simulate_2d
from hanet.noise.positions import DEFAULT_2D, DEFAULT_3D, NoiseConfig, simulate_3d
from hanet.noise.processes import ar1_coefficient, body_height, joint_weights
from hanet.noise.rotations import DEFAULT_SMPL, RotationNoiseConfig, simulate_rotations
from hanet.skeletons import get_layout

H36M = get_layout("h36m17")
JHMDB = get_layout("jhmdb")
SMPL = get_layout("smpl24")
SMPL_PARENTS = layout_parents(SMPL)
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
HEIGHT = 1.7

# Only the part under test: no outliers, swaps or spread unless a test asks for them.
PLAIN = NoiseConfig(outlier_rate=0.0)


def _standing(frames: int, layout=H36M, height: float = HEIGHT) -> np.ndarray:
    """A still pose with distinct joints, ``[T, J, 3]`` metres (y-up)."""
    rng = np.random.default_rng(123)
    pose = rng.uniform(-0.2, 0.2, (layout.num_joints, 3))
    pose[:, 1] = np.linspace(0.0, height, layout.num_joints)
    return np.broadcast_to(pose, (frames, *pose.shape)).copy()


def _lag1(x: np.ndarray) -> float:
    """Lag-1 autocorrelation over time, pooled over all other axes."""
    x = x - x.mean(axis=0)
    return float((x[1:] * x[:-1]).sum() / (x * x).sum())


@pytest.mark.parametrize(("fps", "expected"), [(60.0, 0.8), (30.0, 0.65), (50.0, 0.8**1.2)])
def test_jitter_lag1_correlation_follows_fps(fps: float, expected: float) -> None:
    gt = _standing(12000)
    pred, missing = simulate_3d(gt, H36M, fps, np.random.default_rng(0), PLAIN, height=HEIGHT)
    assert not missing.any()
    assert _lag1(pred - gt) == pytest.approx(expected, abs=0.025)
    assert ar1_coefficient(30.0) == pytest.approx(0.64)


def test_offset_magnitude_is_a_fixed_fraction_of_height() -> None:
    gt = _standing(50)
    config = PLAIN.with_(jitter=0.0)
    norms = []
    for seed in range(20):
        pred, _ = simulate_3d(gt, H36M, 30.0, np.random.default_rng(seed), config, height=HEIGHT)
        error = pred - gt
        np.testing.assert_allclose(error, np.broadcast_to(error[0], error.shape), atol=1e-12)
        norms.append(np.linalg.norm(error[0], axis=-1))
    # per-joint weights average to 1, so the mean offset is exactly 0.025 x height
    assert np.mean(norms) == pytest.approx(0.025 * HEIGHT, rel=1e-9)

    # random directions: averaged over joints and draws, the unit vectors nearly cancel
    directions = []
    for seed in range(20):
        pred, _ = simulate_3d(gt, H36M, 30.0, np.random.default_rng(seed), config, height=HEIGHT)
        offset = pred[0] - gt[0]
        directions.append(offset / np.linalg.norm(offset, axis=-1, keepdims=True))
    assert np.linalg.norm(np.concatenate(directions).mean(axis=0)) < 0.15


def test_strength_scales_offset_and_jitter() -> None:
    gt = _standing(400)
    a, _ = simulate_3d(gt, H36M, 30.0, np.random.default_rng(3), PLAIN, height=HEIGHT)
    b, _ = simulate_3d(
        gt, H36M, 30.0, np.random.default_rng(3), PLAIN.with_(strength=2.0), height=HEIGHT
    )
    np.testing.assert_allclose(b - gt, 2.0 * (a - gt), atol=1e-12)


def test_outlier_fraction_and_size() -> None:
    gt = _standing(20000)
    config = NoiseConfig(strength=0.0)  # leaves only the outliers
    pred, _ = simulate_3d(gt, H36M, 30.0, np.random.default_rng(5), config, height=HEIGHT)
    error = np.linalg.norm(pred - gt, axis=-1)
    outlier = error > 0
    assert 0.01 <= outlier.mean() <= 0.02
    assert error[outlier].mean() == pytest.approx(0.3 * HEIGHT, rel=0.05)
    # they come in short bursts, not isolated frames only
    runs = (outlier[1:] & outlier[:-1]).sum() / outlier.sum()
    assert runs > 0.05


def test_same_seed_same_output_and_seeds_differ() -> None:
    gt = _standing(120, JHMDB)
    config = DEFAULT_2D.with_(drop_joint_rate=0.01)
    runs = [
        simulate_2d(gt, JHMDB, 30.0, np.random.default_rng(seed), None, config)
        for seed in (7, 7, 8)
    ]
    np.testing.assert_array_equal(runs[0]["pred_px"], runs[1]["pred_px"])
    np.testing.assert_array_equal(runs[0]["missing"], runs[1]["missing"])
    assert not np.allclose(np.nan_to_num(runs[0]["pred_px"]), np.nan_to_num(runs[2]["pred_px"]))
    a, _ = simulate_3d(_standing(60), H36M, 50.0, np.random.default_rng(1))
    b, _ = simulate_3d(_standing(60), H36M, 50.0, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)


def test_swaps_exchange_flip_pairs_only() -> None:
    gt = _standing(3000)
    config = NoiseConfig(strength=0.0, outlier_rate=0.0, swap_rate=1.0)
    pred, _ = simulate_3d(gt, H36M, 30.0, np.random.default_rng(2), config)
    moved = ~np.isclose(pred, gt).all(axis=-1)
    assert moved.any()
    pairs = {i: j for a, b in H36M.flip_pairs for i, j in ((a, b), (b, a))}
    for t, joint in zip(*np.nonzero(moved)):
        np.testing.assert_allclose(pred[t, joint], gt[t, pairs[joint]])


def test_dropped_joints_and_frames_are_nan_and_marked() -> None:
    gt = _standing(4000)
    config = PLAIN.with_(drop_frame_rate=0.05, drop_joint_rate=0.02)
    pred, missing = simulate_3d(gt, H36M, 30.0, np.random.default_rng(4), config)
    assert np.isnan(pred[missing]).all() and np.isfinite(pred[~missing]).all()
    assert missing.all(axis=1).mean() == pytest.approx(0.05, abs=0.015)
    assert missing.mean() == pytest.approx(1 - 0.95 * 0.98, abs=0.01)


def test_default_3d_is_a_plausible_fcn() -> None:
    gt = _standing(3000)
    pred, _ = simulate_3d(gt, H36M, 50.0, np.random.default_rng(6), DEFAULT_3D, height=HEIGHT)
    mpjpe_mm = 1000 * np.linalg.norm(pred - gt, axis=-1).mean()
    assert 45 < mpjpe_mm < 70


def test_body_height_of_a_standing_pose() -> None:
    assert body_height(_standing(5)) == pytest.approx(HEIGHT, rel=0.05)


def test_projection_of_a_known_point() -> None:
    camera = PinholeCamera(100.0, (160.0, 120.0), np.eye(3), np.zeros(3), (320, 240))
    uv = camera.project(np.array([[[1.0, 2.0, 10.0]]]))
    np.testing.assert_allclose(uv, [[[170.0, 140.0]]])
    with pytest.raises(ValueError):
        camera.project(np.array([[[0.0, 0.0, -1.0]]]))


def test_look_at_keeps_world_up_up_and_is_a_rotation() -> None:
    eye = np.array([0.0, 0.0, -5.0])
    rotation = look_at(eye, np.zeros(3))
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    camera = PinholeCamera(200.0, (160.0, 120.0), rotation, -rotation @ eye, (320, 240))
    uv = camera.project(np.array([[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]]))[0]
    np.testing.assert_allclose(uv[0], [160.0, 120.0])
    np.testing.assert_allclose(uv[1], [160.0, 120.0 - 200.0 / 5.0])  # world up is image up
    # looking along +z with y up, world -x is on the viewer's right (no mirror image)
    np.testing.assert_allclose(uv[2], [160.0 + 200.0 / 5.0, 120.0])


def test_simulate_2d_outputs_fit_the_image() -> None:
    gt = _standing(90, JHMDB)
    out = simulate_2d(gt, JHMDB, 30.0, np.random.default_rng(9), height=HEIGHT)
    width, height = out["image_size"]
    assert (width, height) == (320, 240)
    assert out["pred_px"].shape == out["gt_px"].shape == (90, 15, 2)
    assert out["bbox"].shape == (90, 4) and out["missing"].shape == (90, 15)
    gt_px, box = out["gt_px"], out["bbox"]
    assert (gt_px[..., 0] >= box[:, None, 0]).all() and (gt_px[..., 0] <= box[:, None, 2]).all()
    assert (gt_px[..., 1] >= box[:, None, 1]).all() and (gt_px[..., 1] <= box[:, None, 3]).all()
    assert (gt_px >= 0).all() and (gt_px[..., 0] <= width).all() and (gt_px[..., 1] <= height).all()
    # the person fills a reasonable part of the frame
    assert 0.3 * height < np.median(box[:, 3] - box[:, 1]) < 0.95 * height
    # pixel noise is in units of the projected body height
    assert np.median(np.linalg.norm(out["pred_px"] - gt_px, axis=-1)) < 0.2 * out["scale_px"][0]


# ----------------------------------------------------------------------------------------------
# SMPL rotation noise

ROT_PLAIN = RotationNoiseConfig(outlier_rate=0.0)


def _moving_rotations(frames: int, seed: int = 11) -> np.ndarray:
    """Smoothly turning local rotations ``[T, 24, 3, 3]`` (a slow sinusoid per joint and axis)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None] / 30.0
    amplitude = rng.uniform(0.1, 0.8, (1, SMPL.num_joints, 3))
    phase = rng.uniform(0, 2 * np.pi, (1, SMPL.num_joints, 3))
    rotvec = amplitude * np.sin(2 * np.pi * 0.5 * t + phase)
    return Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(frames, -1, 3, 3)


def _error_rotvec(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``R_gt^T R_pred`` as rotation vectors, ``[T, J, 3]``."""
    delta = np.swapaxes(gt, -1, -2) @ pred
    return Rotation.from_matrix(delta.reshape(-1, 3, 3)).as_rotvec().reshape(*gt.shape[:2], 3)


def test_rotation_noise_is_seeded() -> None:
    gt = _moving_rotations(90)
    runs = [simulate_rotations(gt, SMPL, 30.0, np.random.default_rng(seed)) for seed in (4, 4, 5)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])
    # axis-angle in, axis-angle out: the same draws as the matrix path
    axis_angle = Rotation.from_matrix(gt.reshape(-1, 3, 3)).as_rotvec().reshape(90, -1, 3)
    out = simulate_rotations(axis_angle, SMPL, 30.0, np.random.default_rng(4))
    assert out.shape == axis_angle.shape
    np.testing.assert_allclose(
        Rotation.from_rotvec(out.reshape(-1, 3)).as_matrix().reshape(runs[0].shape),
        runs[0],
        atol=1e-9,
    )


def test_rotation_noise_outputs_rotations() -> None:
    gt = _moving_rotations(200)
    config = DEFAULT_SMPL.with_(outlier_rate=0.05, outlier_deg=120.0)
    pred = simulate_rotations(gt, SMPL, 30.0, np.random.default_rng(1), config)
    assert pred.shape == gt.shape and np.isfinite(pred).all()
    np.testing.assert_allclose(
        pred @ np.swapaxes(pred, -1, -2), np.broadcast_to(np.eye(3), pred.shape), atol=1e-9
    )
    np.testing.assert_allclose(np.linalg.det(pred), 1.0, atol=1e-9)
    with pytest.raises(ValueError):
        simulate_rotations(2.0 * gt, SMPL, 30.0, np.random.default_rng(1))  # not rotations
    with pytest.raises(ValueError):
        simulate_rotations(gt[:, :17], SMPL, 30.0, np.random.default_rng(1))
    with pytest.raises(ValueError):
        RotationNoiseConfig(outlier_rate=1.0)


def test_rotation_offset_is_fixed_and_weighted() -> None:
    gt = _moving_rotations(60)
    config = ROT_PLAIN.with_(jitter_deg=0.0)
    weights = joint_weights(SMPL, config)
    angles = []
    for seed in range(10):
        pred = simulate_rotations(gt, SMPL, 30.0, np.random.default_rng(seed), config)
        error = _error_rotvec(gt, pred)
        # applied in the joint's own frame: the same local error rotation on every frame
        np.testing.assert_allclose(error, np.broadcast_to(error[0], error.shape), atol=1e-9)
        angle = np.degrees(np.linalg.norm(error[0], axis=-1))
        np.testing.assert_allclose(angle, config.offset_deg * weights, rtol=1e-9)
        angles.append(angle)
    assert np.mean(angles) == pytest.approx(config.offset_deg, rel=1e-9)
    # wrists and hands are worse than the spine, as in every per-joint breakdown
    assert weights[SMPL.index("l_wrist")] > weights[SMPL.index("spine2")]


@pytest.mark.parametrize(("fps", "expected"), [(30.0, 0.64), (60.0, 0.8)])
def test_rotation_jitter_lag1_follows_fps(fps: float, expected: float) -> None:
    gt = np.broadcast_to(np.eye(3), (6000, SMPL.num_joints, 3, 3)).copy()
    config = ROT_PLAIN.with_(offset_deg=0.0)
    pred = simulate_rotations(gt, SMPL, fps, np.random.default_rng(2), config)
    error = _error_rotvec(gt, pred)
    assert _lag1(error) == pytest.approx(expected, abs=0.03)
    per_axis = np.degrees(error.std(axis=0)) / joint_weights(SMPL, config)[:, None]
    assert per_axis.mean() == pytest.approx(config.jitter_deg, rel=0.05)


def test_rotation_outliers_come_in_bursts() -> None:
    gt = np.broadcast_to(np.eye(3), (20000, SMPL.num_joints, 3, 3)).copy()
    config = RotationNoiseConfig(strength=0.0)  # leaves only the outliers
    pred = simulate_rotations(gt, SMPL, 30.0, np.random.default_rng(3), config)
    angle = np.degrees(np.linalg.norm(_error_rotvec(gt, pred), axis=-1))
    outlier = angle > 1e-6
    assert outlier.mean() == pytest.approx(config.outlier_rate, rel=0.15)
    assert angle[outlier].mean() == pytest.approx(config.outlier_deg, rel=0.05)
    assert (outlier[1:] & outlier[:-1]).sum() / outlier.sum() > 0.4  # ~3-frame bursts


def _smpl_sequences(split: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(gt pose [T, 24, 3], pred pose, offsets [24, 3], gt joints [T, 24, 3]) per sequence."""
    gt, det = _load("mocapsmpl", split)
    out = []
    for pose, pred, offsets, joints in zip(
        gt["pose"], det["pose"], gt["skeleton_offsets"], gt["joints_3d"]
    ):
        frames = len(pose)
        out.append(
            (
                np.asarray(pose, np.float64).reshape(frames, -1, 3),
                np.asarray(pred, np.float64).reshape(frames, -1, 3),
                np.asarray(offsets, np.float64),
                np.asarray(joints, np.float64).reshape(frames, -1, 3),
            )
        )
    return out


def _fk_errors(sequences: list, predictions: list) -> tuple[float, float]:
    """Frame-weighted MPJPE (mm) and accel error (mm/frame^2) of FK joints, 24 joints."""
    errors, accels = [], []
    for (_, _, offsets, joints), pred in zip(sequences, predictions):
        positions = forward_kinematics(pred, offsets, SMPL_PARENTS)
        errors.append(1000 * np.linalg.norm(positions - joints, axis=-1).mean(axis=1))
        second = np.diff(positions, 2, axis=0) - np.diff(joints, 2, axis=0)
        accels.append(1000 * np.linalg.norm(second, axis=-1).mean(axis=1))
    return float(np.concatenate(errors).mean()), float(np.concatenate(accels).mean())


def test_default_smpl_is_calibrated_to_pare_on_3dpw() -> None:
    """FK joints of the simulated rotations over the bundled clips, fresh seeds, averaged:
    PARE's input errors on 3DPW are MPJPE 80.44 mm and accel 26.77 mm/frame^2."""
    sequences = _smpl_sequences("train") + _smpl_sequences("test")
    results = []
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        predictions = [simulate_rotations(pose, SMPL, 30.0, rng) for pose, *_ in sequences]
        results.append(_fk_errors(sequences, predictions))
    mpjpe, accel = np.mean(results, axis=0)
    assert mpjpe == pytest.approx(80.44, abs=8.0)
    assert accel == pytest.approx(26.77, abs=3.0)


# ----------------------------------------------------------------------------------------------
# The bundled sample (data/sample, built by scripts/make_sample.py)

FILES = {
    "mocap2d": ("joints_2d", "simplebaseline"),
    "mocap3d": ("joints_3d", "fcn"),
    "mocapsmpl": ("pose", "pare"),
}


def _load(dataset: str, split: str) -> tuple[dict, dict]:
    key, estimator = FILES[dataset]
    gt = SAMPLE / "groundtruth_poses" / dataset / f"{dataset}_gt_{split}.npz"
    det = SAMPLE / "detected_poses" / dataset / estimator / f"{dataset}_{estimator}_{split}.npz"
    assert gt.is_file() and det.is_file(), f"missing {gt} or {det}; run scripts/make_sample.py"
    with np.load(gt, allow_pickle=True) as g, np.load(det, allow_pickle=True) as d:
        return dict(g), dict(d)


def _pck(gt: np.ndarray, pred: np.ndarray, bbox: np.ndarray, alpha: float) -> np.ndarray:
    """JHMDB PCK of one sequence, per joint: error <= alpha x the larger GT box side."""
    size = np.maximum(bbox[:, 2] - bbox[:, 0], bbox[:, 3] - bbox[:, 1])
    return (np.linalg.norm(pred - gt, axis=-1) <= alpha * size[:, None]).mean(axis=0)


@pytest.mark.parametrize("dataset", sorted(FILES))
@pytest.mark.parametrize("split", ["train", "test"])
def test_sample_files_pair_up(dataset: str, split: str) -> None:
    key, _ = FILES[dataset]
    gt, det = _load(dataset, split)
    dims = 2 if dataset == "mocap2d" else 3
    joints = {"mocap2d": 15, "mocap3d": 17, "mocapsmpl": 24}[dataset]
    assert len(gt[key]) == len(det[key]) == len(gt["imgname"]) == len(det["imgname"]) > 0
    for index in range(len(gt[key])):
        g, d = np.asarray(gt[key][index]), np.asarray(det[key][index])
        names = [str(n) for n in gt["imgname"][index]]
        assert names == [str(n) for n in det["imgname"][index]]
        assert g.shape == d.shape == (len(names), joints * dims)
        assert len(names) >= 16 and len(set(names)) == len(names)
        assert np.isfinite(g).all() and np.isfinite(d).all()
        if dims == 2:
            assert tuple(gt["imgshape"][index]) == (240, 320, 3)
            assert np.asarray(gt["bbox"][index]).shape == (len(names), 4)
        elif dataset == "mocap3d":
            np.testing.assert_array_equal(g.reshape(-1, joints, 3)[:, 0], 0.0)  # root-relative
        else:
            for arrays in (gt, det):
                positions = np.asarray(arrays["joints_3d"][index])
                assert positions.shape == g.shape and np.isfinite(positions).all()
                np.testing.assert_array_equal(positions.reshape(-1, joints, 3)[:, 0], 0.0)
            assert np.asarray(gt["skeleton_offsets"][index]).shape == (joints, 3)


@pytest.mark.parametrize("dataset", sorted(FILES))
def test_sample_split_is_by_clip(dataset: str) -> None:
    clips = {}
    for split in ("train", "test"):
        gt, _ = _load(dataset, split)
        clips[split] = {str(names[0]).split("/")[0] for names in gt["imgname"]}
    assert clips["train"] and clips["test"] and not clips["train"] & clips["test"]
    if dataset != "mocap2d":  # every kind holds the same clips in the same split
        for split in ("train", "test"):
            gt, _ = _load("mocap2d", split)
            assert clips[split] == {str(names[0]).split("/")[0] for names in gt["imgname"]}


def test_sample_input_pck_matches_simplebaseline_on_jhmdb() -> None:
    gt, det = _load("mocap2d", "test")
    table = {alpha: [] for alpha in (0.05, 0.1, 0.2)}
    for g, d, box in zip(gt["joints_2d"], det["joints_2d"], gt["bbox"]):
        g = np.asarray(g, np.float64).reshape(len(g), -1, 2)
        d = np.asarray(d, np.float64).reshape(g.shape)
        for alpha in table:
            table[alpha].append(_pck(g, d, np.asarray(box, np.float64), alpha))
    scores = [100 * np.mean(table[alpha]) for alpha in (0.05, 0.1, 0.2)]
    np.testing.assert_allclose(scores, [57.3, 81.6, 93.9], atol=3.0)


def test_sample_smpl_matches_pare_and_reads_as_smpl() -> None:
    """The bundled SMPL detections: FK input errors near PARE's on 3DPW (80.44 mm, 26.77
    mm/frame^2), and the reader turns the axis-angle pose into 6D."""
    sequences = _smpl_sequences("train") + _smpl_sequences("test")
    mpjpe, accel = _fk_errors(sequences, [pred for _, pred, _, _ in sequences])
    assert mpjpe == pytest.approx(80.44, abs=10.0)
    assert accel == pytest.approx(26.77, abs=4.0)
    pairs = find_published_pairs(parse_location(SAMPLE), "mocapsmpl", "pare")
    assert sorted(p.split for p in pairs) == ["test", "train"]
    for pair in pairs:
        for seq in read_published_pair(pair, "smpl24", "smpl", fps=30.0):
            assert seq.gt.shape[1:] == seq.pred.shape[1:] == (24, 6)
            assert 5.0 < geodesic_angle_deg(seq.pred, seq.gt) < 25.0


def test_sample_is_small_and_attributed() -> None:
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < 3_200_000  # 2D and 3D about 1.9 MB, SMPL about 1.1 MB
    text = (SAMPLE / "ATTRIBUTION.md").read_text()
    assert "NSF EIA-0196217" in text and "zlib" in text and "MIT" in text
