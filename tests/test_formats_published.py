"""hanet.formats.published: every published flavour (JHMDB 2D, H36M/AIST++/3DPW 3D, SMPL),
missing joints, and the checks that name the bad file and sequence."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from posedata import model_config, pose_set, sample_arrays, sample_subset, write_pair
from scipy.spatial.transform import Rotation

from hanet.data.normalise import denormalise, filled_input, input_norm, target_mask
from hanet.data.schema import Sequence
from hanet.data.windows import window_arrays
from hanet.evaluation import evaluate_method
from hanet.formats.common import ReadError
from hanet.formats.published import (
    PublishedPair,
    find_published_pairs,
    find_published_root,
    read_published_pair,
)
from hanet.io.location import parse_location
from hanet.skeletons import H36M_TO_LSP14

# ----------------------------------------------------------------------------------------------
# Helpers (shared with test_preprocess.py)


# ----------------------------------------------------------------------------------------------
# Schema


# ----------------------------------------------------------------------------------------------
# Safe npz loading


# ----------------------------------------------------------------------------------------------
# The published layout


def published_units(seq: Sequence) -> SimpleNamespace:
    """The whole sequence as one window in published model units, with its map back."""
    raw = filled_input(seq)[None]
    norm = input_norm(raw, np.ones(raw.shape[:2], bool), seq, "published")
    return SimpleNamespace(input=norm.apply(raw)[0], scale=norm.scale[0], offset=norm.offset[0])


def test_jhmdb_2d_from_sample(tmp_path: Path, sample_dir: Path) -> None:
    root = sample_subset(sample_dir, tmp_path / "pub", counts={"test": 3})
    # The parent holding data/ is found too.
    data_parent = tmp_path / "parent"
    (data_parent / "data").mkdir(parents=True)
    os.symlink(root / "groundtruth_poses", data_parent / "data" / "groundtruth_poses")
    os.symlink(root / "detected_poses", data_parent / "data" / "detected_poses")
    assert find_published_root(parse_location(data_parent)).path.endswith("parent/data")
    (pair,) = find_published_pairs(parse_location(data_parent), "mocap2d", "simplebaseline")
    seqs = read_published_pair(pair, "jhmdb", "2D", 30.0)
    gt, det = sample_arrays(sample_dir, "mocap2d", "simplebaseline", "test")
    assert [s.sequence_id for s in seqs] == [
        f"mocap2d_simplebaseline_test_{i:05d}" for i in range(3)
    ]
    for i, seq in enumerate(seqs):
        frames = len(det["joints_2d"][i])
        assert np.array_equal(seq.pred, det["joints_2d"][i].reshape(frames, 15, 2))
        assert np.array_equal(seq.gt, gt["joints_2d"][i].reshape(frames, 15, 2))
        assert np.array_equal(seq.bbox, gt["bbox"][i].reshape(frames, 4))
        assert seq.image_size == (320, 240)  # imgshape is (H, W, C)
        assert seq.frame_names == list(gt["imgname"][i]) and seq.split == "test"
        assert seq.observed().all() and seq.labelled_joints().all()


def test_2d_missing_joints_are_masked_and_filled(tmp_path: Path, sample_dir: Path) -> None:
    gt, det = sample_arrays(sample_dir, "mocap2d", "simplebaseline", "test")
    poses = det["joints_2d"][0].copy()  # [T, 30]
    frames = len(poses)
    poses[5, 2 * 3 : 2 * 3 + 2] = -1  # joint 3 missing in frame 5 (published: -1, -1)
    poses[:, 2 * 7 : 2 * 7 + 2] = -1  # joint 7 never detected
    poses[9, 0:2] = np.nan  # joint 0 missing as NaN
    poses[11, 2 * 4] = -1  # only x == -1: a real coordinate, not a missing joint
    gt_poses = gt["joints_2d"][0].copy()
    gt_poses[6, 2 * 2 : 2 * 2 + 2] = -1  # an unlabelled ground-truth joint
    pair = write_pair(
        tmp_path,
        "ds",
        "est",
        "test",
        {"joints_2d": [gt_poses], "imgshape": [gt["imgshape"][0]], "bbox": [gt["bbox"][0]]},
        {"joints_2d": [poses]},
    )
    (seq,) = read_published_pair(pair, "jhmdb", "2D")
    observed = seq.observed()
    assert not observed[5, 3] and not observed[:, 7].any() and not observed[9, 0]
    assert observed[11, 4] and observed.sum() == frames * 15 - 1 - frames - 1
    assert not np.isnan(seq.pred).any() and seq.pred[5, 3].tolist() == [0.0, 0.0]
    assert not seq.labelled_joints()[6, 2] and seq.labelled_joints().sum() == frames * 15 - 1
    # Filled before normalisation: interpolated in time, never 0 and never NaN.
    norm = published_units(seq)
    assert np.isfinite(norm.input).all()
    raw = poses.reshape(frames, 15, 2)
    expected = (raw[4, 3] + raw[6, 3]) / 2 / np.array([320, 240])
    np.testing.assert_allclose(norm.input[5, 3], expected, rtol=1e-6)
    # A joint never seen sits at the body centre of each frame, finite and masked.
    centre = norm.input[:, [j for j in range(15) if j != 7]].mean(axis=1)
    np.testing.assert_allclose(norm.input[:, 7], centre, rtol=1e-5)
    # The windows carry the masks: missing inputs and unlabelled targets are flagged.
    model = model_config(interval=2, num_intervals=2)
    windows = window_arrays(seq, model, "test")
    assert windows["input_mask"].shape[1:] == (5, 15)
    assert not windows["input_mask"][:, :, 7].any()
    assert np.isfinite(windows["input"]).all()
    # Metrics skip the unlabelled joint instead of scoring it against a 0.
    assert not target_mask(seq)[6, 2]
    metrics, scores = evaluate_method([seq], filled_input)
    assert np.isfinite(metrics["pixel_error"])
    gt_px = seq.gt.astype(np.float64)
    dist = np.linalg.norm(filled_input(seq) - gt_px, axis=-1)
    assert metrics["pixel_error"] == pytest.approx(dist[seq.labelled_joints()].mean())


def test_h36m_and_aist_3d(tmp_path: Path) -> None:
    gt = pose_set([20, 9], 17, 3, seed=1)
    det = [g + 0.01 for g in gt]
    pair = write_pair(tmp_path, "h36m", "fcn", "test", {"joints_3d": gt}, {"joints_3d": det})
    seqs = read_published_pair(pair, "h36m17", "3D", 50.0)
    assert [s.num_frames for s in seqs] == [20, 9]
    assert np.array_equal(seqs[1].gt, gt[1].reshape(9, 17, 3))
    assert seqs[0].fps == 50.0 and seqs[0].image_size is None
    # Root-relative around the pelvis, exactly invertible up to one float32 rounding.
    norm = published_units(seqs[0])
    assert np.abs(norm.input[:, 0]).max() == 0.0
    back = denormalise(norm.input, norm.scale, norm.offset)
    np.testing.assert_allclose(back, seqs[0].pred, rtol=0, atol=1e-6)
    # AIST++: 14 joints already in LSP order.
    aist = pose_set([7], 14, 3, seed=2)
    pair = write_pair(tmp_path, "aist", "spin", "train", {"joints_3d": aist}, {"joints_3d": aist})
    (seq,) = read_published_pair(pair, "lsp14", "3D")
    assert np.array_equal(seq.pred, aist[0].reshape(7, 14, 3)) and seq.split == "train"
    # Hip-centred: LSP's roots are the two hips (2, 3).
    norm = published_units(seq)
    np.testing.assert_allclose(norm.input[:, [2, 3]].mean(axis=1), 0, atol=1e-6)


def test_3dpw_reorders_17_h36m_joints_to_14_lsp(tmp_path: Path) -> None:
    raw = pose_set([6], 17, 3, seed=3)
    pair = write_pair(tmp_path, "pw3d", "pare", "test", {"joints_3d": raw}, {"joints_3d": raw})
    (seq,) = read_published_pair(pair, "lsp14", "3D")
    h36m = raw[0].reshape(6, 17, 3)
    assert seq.num_joints == 14
    for lsp_index, h36m_index in enumerate(H36M_TO_LSP14):
        assert np.array_equal(seq.pred[:, lsp_index], h36m[:, h36m_index])
    # The published loaders' H36M_TO_J17, first 14 (their H36M regressor's joint 6 is LSP 0).
    assert H36M_TO_LSP14 == (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)
    assert np.array_equal(seq.gt[:, 0], h36m[:, 6])


def test_smpl_axis_angle_becomes_6d(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    pose = rng.normal(0, 0.8, (5, 72)).astype(np.float32)
    pose[0, :3] = [0, 0, np.pi / 2]  # 90 degrees about z
    pose[1, :3] = 0  # identity
    pair = write_pair(tmp_path, "pw3d", "pare", "test", {"pose": [pose]}, {"pose": [pose + 0.01]})
    (seq,) = read_published_pair(pair, "smpl24", "smpl")
    assert seq.pred.shape == (5, 24, 6) and seq.representation == "smpl"
    assert np.allclose(seq.gt[0, 0], [0, 1, 0, -1, 0, 0], atol=1e-6)
    assert np.allclose(seq.gt[1, 0], [1, 0, 0, 0, 1, 0], atol=1e-7)
    matrices = Rotation.from_rotvec(pose.reshape(-1, 3).astype(np.float64)).as_matrix()
    expected = np.concatenate([matrices[:, :, 0], matrices[:, :, 1]], axis=-1).reshape(5, 24, 6)
    np.testing.assert_allclose(seq.gt, expected, atol=1e-5)
    # Already 6D (144 values): kept as stored.
    six = expected.reshape(5, 144).astype(np.float32)
    pair = write_pair(tmp_path, "pw3d6", "pare", "test", {"pose": [six]}, {"pose": [six]})
    (seq,) = read_published_pair(pair, "smpl24", "smpl")
    assert np.array_equal(seq.pred, six.reshape(5, 24, 6))


def _bad_pair(tmp_path: Path, kind: str) -> tuple[PublishedPair, str]:
    """A pair whose sequence 1 has one kind of problem; returns the expected message part."""
    gt = pose_set([12, 10, 8], 15, 2, seed=5)
    gt = [np.abs(g) * 100 for g in gt]
    det = [g + 1 for g in gt]
    shapes = [np.array([240, 320, 3])] * 3
    expected = {
        "length": "8 frames, but ground truth sequence 1",
        "joints": "14 joints per frame, but layout 'jhmdb' has 15",
        "inf": "poses contain inf",
        "empty": "empty sequence",
        "all_nan": "every joint of every frame is missing",
        "ragged": "is not J x 2",
    }[kind]
    if kind == "length":
        det[1] = det[1][:8]
    elif kind == "joints":
        det[1] = det[1][:, :28]
        gt[1] = gt[1][:, :28]
    elif kind == "inf":
        det[1][3, 4] = np.inf
    elif kind == "empty":
        det[1] = det[1][:0]
        gt[1] = gt[1][:0]
    elif kind == "all_nan":
        det[1][:] = np.nan
    elif kind == "ragged":
        det[1] = det[1][:, :29]
    pair = write_pair(
        tmp_path / kind,
        "ds",
        "est",
        "train",
        {"joints_2d": gt, "imgshape": shapes},
        {"joints_2d": det},
    )
    return pair, expected


@pytest.mark.parametrize("kind", ["length", "joints", "inf", "empty", "all_nan", "ragged"])
def test_bad_sequence_named_and_isolated(tmp_path: Path, kind: str) -> None:
    pair, expected = _bad_pair(tmp_path, kind)
    with pytest.raises(ReadError) as info:
        read_published_pair(pair, "jhmdb", "2D")
    message = str(info.value)
    # The file at fault (the detections, or the ground truth when both are bad) and the id.
    assert re.search(r"ds_(est|gt)_train\.npz: sequence 1 \(ds_est_train_00001\)", message), message
    assert expected in message, message
    errors: list[str] = []
    seqs = read_published_pair(pair, "jhmdb", "2D", errors=errors)
    assert [s.sequence_id for s in seqs] == ["ds_est_train_00000", "ds_est_train_00002"]
    assert len(errors) == 1 and expected in errors[0]


def test_file_level_problems(tmp_path: Path) -> None:
    gt = pose_set([5, 5], 15, 2)
    shapes = [np.array([240, 320])] * 2
    pair = write_pair(
        tmp_path, "ds", "est", "test", {"joints_2d": gt, "imgshape": shapes}, {"joints_2d": gt[:1]}
    )
    with pytest.raises(
        ReadError, match=r"ds_est_test\.npz: 1 sequences, but .*ds_gt_test\.npz has 2"
    ):
        read_published_pair(pair, "jhmdb", "2D", errors=[])  # counts: always the whole file
    pair = write_pair(tmp_path, "ds", "est", "val", {"joints_2d": gt}, {"joints_2d": gt})
    # Without 'imgshape' the image size is unknown: fine for body normalisation, which needs
    # none (published normalisation reports it when it needs it).
    assert [s.image_size for s in read_published_pair(pair, "jhmdb", "2D")] == [None, None]
    pair = write_pair(
        tmp_path, "ds", "est", "x", {"joints_2d": gt, "imgshape": shapes[:1]}, {"joints_2d": gt}
    )
    with pytest.raises(ReadError, match="1 'imgshape' entries for 2 sequences"):
        read_published_pair(pair, "jhmdb", "2D")
    pair = write_pair(tmp_path, "ds", "est", "y", {"joints_3d": gt}, {"joints_2d": gt})
    with pytest.raises(ReadError, match="no joints_2d array for 2D data"):
        read_published_pair(pair, "jhmdb", "2D")
    with pytest.raises(ReadError, match="no detected_poses/"):
        find_published_root(parse_location(tmp_path / "groundtruth_poses"))
    with pytest.raises(ReadError, match="dataset='other'"):
        find_published_pairs(parse_location(tmp_path), "other")


def test_published_dataset_name_becomes_a_checked_id(tmp_path: Path) -> None:
    gt = pose_set([5], 15, 2)
    pair = write_pair(
        tmp_path,
        "x..y",
        "est",
        "test",
        {"joints_2d": gt, "imgshape": [np.array([240, 320])]},
        {"joints_2d": gt},
    )
    with pytest.raises(ReadError, match=r"x\.\.y_est_test_00000.*path-like"):
        read_published_pair(pair, "jhmdb", "2D")


# ----------------------------------------------------------------------------------------------
# Keypoint JSON


# ----------------------------------------------------------------------------------------------
# Leakage
