"""Schemas and readers, without Ray: round trips, the safe unpickler, every published flavour,
keypoint JSON, missing joints, leakage and the checks that name the bad file and sequence.

The helpers at the top (``write_pair``, ``sample_subset``) also build the synthetic inputs of
``test_preprocess.py``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.spatial.transform import Rotation

from hanet.dataset import (
    denormalise,
    filled_input,
    normalise,
    sequence_windows,
    target_mask,
)
from hanet.evaluation import evaluate_method, input_poses
from hanet.readers import (
    PublishedPair,
    ReadError,
    UnsafePickleError,
    find_leaks,
    find_published_pairs,
    find_published_root,
    load_npz,
    read_any,
    read_detections_npz,
    read_keypoint_json,
    read_published_pair,
    read_sequence_parquet,
)
from hanet.schema import (
    SCHEMA_VERSION,
    SEQUENCE_SCHEMA,
    WINDOW_SCHEMA,
    SchemaError,
    Sequence,
    check_schema,
    sequences_to_table,
    table_to_sequences,
    validate_sequence,
)
from hanet.skeletons import H36M_TO_LSP14
from hanet.storage import parse_location

# ----------------------------------------------------------------------------------------------
# Helpers (shared with test_preprocess.py)


def objects(items: list[Any]) -> np.ndarray:
    """A 1-D object array, one entry per sequence, as the published files store them."""
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


def write_npz(path: Path, arrays: dict[str, list[Any] | np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v if isinstance(v, np.ndarray) else objects(v) for k, v in arrays.items()})
    return path


def write_pair(
    root: Path,
    dataset: str,
    estimator: str,
    split: str,
    gt: dict[str, list[Any]],
    det: dict[str, list[Any]],
) -> PublishedPair:
    """One published (ground truth, detections) pair under ``root``."""
    gt_path = write_npz(root / "groundtruth_poses" / dataset / f"{dataset}_gt_{split}.npz", gt)
    det_path = write_npz(
        root / "detected_poses" / dataset / estimator / f"{dataset}_{estimator}_{split}.npz", det
    )
    return PublishedPair(
        dataset, estimator, split, parse_location(gt_path), parse_location(det_path)
    )


def sample_arrays(sample_dir: Path, dataset: str, estimator: str, split: str):
    """The sample's (ground truth, detections) arrays of one split."""
    gt = load_npz(
        parse_location(sample_dir / "groundtruth_poses" / dataset / f"{dataset}_gt_{split}.npz")
    )
    det = load_npz(
        parse_location(
            sample_dir
            / "detected_poses"
            / dataset
            / estimator
            / f"{dataset}_{estimator}_{split}.npz"
        )
    )
    return gt, det


def sample_subset(
    sample_dir: Path,
    root: Path,
    dataset: str = "mocap2d",
    estimator: str = "simplebaseline",
    counts: dict[str, int] | None = None,
) -> Path:
    """The first sequences of each split of the sample, in the published layout under root."""
    counts = counts or {"train": 8, "test": 4}
    for split, count in counts.items():
        gt, det = sample_arrays(sample_dir, dataset, estimator, split)
        write_pair(
            root,
            dataset,
            estimator,
            split,
            {k: list(v[:count]) for k, v in gt.items()},
            {k: list(v[:count]) for k, v in det.items()},
        )
    return root


class Evil:
    """Unpickling this runs a shell command: what a malicious pose file would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def seq2d(frames: int = 12, seq_id: str = "clip_a", **kwargs: Any) -> Sequence:
    rng = np.random.default_rng(frames)
    pred = rng.uniform(0, 300, (frames, 15, 2)).astype(np.float32)
    defaults = dict(
        gt=pred + 1.0,
        image_size=(320, 240),
        bbox=np.tile([10, 20, 200, 220], (frames, 1)).astype(np.float32),
        frame_names=[f"act/{seq_id}/{i:05d}.png" for i in range(frames)],
        split="test",
        fps=30.0,
    )
    defaults.update(kwargs)
    return Sequence(seq_id, "jhmdb", "2D", pred, **defaults)


# ----------------------------------------------------------------------------------------------
# Schema


def test_sequence_parquet_round_trip(tmp_path: Path) -> None:
    pred = np.arange(5 * 15 * 2, dtype=np.float32).reshape(5, 15, 2)
    pred[2, 3] = np.nan  # missing joint
    gt = pred + 0.5
    gt[4] = np.nan  # an unlabelled frame
    seq = validate_sequence(
        Sequence(
            "rt_1",
            "jhmdb",
            "2D",
            pred,
            gt=gt,
            confidence=np.full((5, 15), 0.9),
            bbox=np.ones((5, 4)),
            image_size=(320, 240),
            fps=30.0,
            split="train",
            dataset="d",
            estimator="e",
            frame_names=[f"c/s/{i}.png" for i in range(5)],
        )
    )
    other = validate_sequence(Sequence("rt_2", "jhmdb", "2D", np.ones((3, 15, 2))))
    table = sequences_to_table([seq, other])
    assert table.schema.equals(SEQUENCE_SCHEMA, check_metadata=True)
    path = tmp_path / "seqs.parquet"
    pq.write_table(table, path)
    assert pq.read_schema(path).metadata[b"hanet.schema_version"] == SCHEMA_VERSION.encode()
    back = read_sequence_parquet(parse_location(path))
    assert [s.sequence_id for s in back] == ["rt_1", "rt_2"]
    got = back[0]
    for name in ("pred", "gt", "gt_mask", "gt_joint_mask", "joint_mask", "confidence", "bbox"):
        assert np.array_equal(getattr(got, name), getattr(seq, name)), name
    assert not got.joint_mask[2, 3] and got.pred[2, 3].tolist() == [0.0, 0.0]
    assert not got.gt_mask[4] and not got.gt_joint_mask[4].any() and got.gt_mask[:4].all()
    assert got.image_size == (320, 240) and got.fps == 30.0 and got.frame_names == seq.frame_names
    assert back[1].gt is None and back[1].bbox is None and back[1].frame_names is None
    # Plain pyarrow sees ordinary list columns (no Ray extension types).
    assert pa.types.is_list(pq.read_table(path).schema.field("pred").type)


def test_check_schema_refuses_other_kinds_and_versions() -> None:
    check_schema(WINDOW_SCHEMA, "window", "w")
    with pytest.raises(SchemaError, match="not a hanet sequence file"):
        check_schema(WINDOW_SCHEMA, "sequence", "w.parquet")
    old = SEQUENCE_SCHEMA.with_metadata({b"hanet.kind": b"sequence", b"hanet.schema_version": b"0"})
    with pytest.raises(SchemaError, match="schema version '0'"):
        check_schema(old, "sequence", "old.parquet")
    with pytest.raises(SchemaError, match="found kind 'none'"):
        table_to_sequences(pa.table({"x": [1]}))


@pytest.mark.parametrize(
    "bad_id",
    ["../etc/passwd", "/abs", "a/b", "a\\b", "..", ".hidden", "", "-dash", "a b", "x" * 201],
)
def test_path_like_ids_are_refused(bad_id: str, tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="sequence id"):
        validate_sequence(seq2d(4, bad_id))
    # The same through our own Parquet: validation runs on read.
    row = sequences_to_table([validate_sequence(seq2d(4, "good"))]).to_pylist()[0]
    row["sequence_id"] = bad_id
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([row], schema=SEQUENCE_SCHEMA), path)
    with pytest.raises(ReadError, match=r"bad\.parquet: sequence .*sequence id"):
        read_sequence_parquet(parse_location(path))


def test_validation_names_the_problem() -> None:
    where = "<memory>: sequence 'clip_a'"
    cases = {
        "empty sequence": Sequence("clip_a", "jhmdb", "2D", np.zeros((0, 15, 2))),
        "14 joints, but layout 'jhmdb' has 15": Sequence(
            "clip_a", "jhmdb", "2D", np.ones((3, 14, 2))
        ),
        "poses contain inf": Sequence(
            "clip_a", "jhmdb", "2D", np.where(np.eye(15)[None, :, :2] > 0, np.inf, 1.0)
        ),
        "every joint of every frame is missing": Sequence(
            "clip_a", "jhmdb", "2D", np.full((3, 15, 2), np.nan)
        ),
        "3 values per joint, but 2D needs 2": Sequence(
            "clip_a", "jhmdb", "2D", np.ones((3, 15, 3))
        ),
        "poses must be numeric": Sequence("clip_a", "jhmdb", "2D", np.full((3, 15, 2), "x")),
    }
    for problem, seq in cases.items():
        with pytest.raises(SchemaError) as info:
            validate_sequence(seq)
        assert where in str(info.value) and problem in str(info.value), str(info.value)


# ----------------------------------------------------------------------------------------------
# Safe npz loading


def test_unpickler_refuses_code_execution(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write_npz(tmp_path / "evil.npz", {"joints_2d": [Evil(marker)]})
    with pytest.raises(UnsafePickleError) as info:
        load_npz(parse_location(path))
    message = str(info.value)
    assert "evil.npz[joints_2d]" in message and "refused to unpickle" in message
    assert "system" in message and "only numpy arrays, strings and numbers" in message
    assert not marker.exists()
    # A pickled container of plain values is not an array either.
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, np.lib.format.header_data_from_array_1_0(np.empty(1, dtype=object))
    )
    with zipfile.ZipFile(tmp_path / "dict.npz", "w") as archive:
        archive.writestr("imgname.npy", header.getvalue() + pickle.dumps({"a": 1}, protocol=3))
    with pytest.raises(UnsafePickleError, match=r"dict\.npz\[imgname\].*dict, not an array"):
        load_npz(parse_location(tmp_path / "dict.npz"))


def test_unreadable_npz_names_the_file(tmp_path: Path, sample_dir: Path) -> None:
    good = sample_dir / "detected_poses/mocap2d/simplebaseline/mocap2d_simplebaseline_test.npz"
    data = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"not a zip at all")
    for name in ("truncated.npz", "garbage.npz"):
        with pytest.raises(ReadError, match=rf"{name}: not a readable npz archive"):
            load_npz(parse_location(tmp_path / name))
    with pytest.raises(ReadError, match="cannot read"):
        load_npz(parse_location(tmp_path / "absent.npz"))
    # The sample itself loads: object arrays of float arrays and strings pass the allow-list.
    arrays = load_npz(parse_location(good))
    assert arrays["joints_2d"].dtype == object and isinstance(arrays["imgname"][0][0], str)


# ----------------------------------------------------------------------------------------------
# The published layout


def _pose_set(frames: list[int], joints: int, dims: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.3, (t, joints * dims)).astype(np.float32) for t in frames]


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
    norm = normalise(seq)
    assert np.isfinite(norm.input).all()
    raw = poses.reshape(frames, 15, 2)
    expected = (raw[4, 3] + raw[6, 3]) / 2 / np.array([320, 240])
    np.testing.assert_allclose(norm.input[5, 3], expected, rtol=1e-6)
    # A joint never seen sits at the body centre of each frame, finite and masked.
    centre = norm.input[:, [j for j in range(15) if j != 7]].mean(axis=1)
    np.testing.assert_allclose(norm.input[:, 7], centre, rtol=1e-5)
    # The windows carry the masks: missing inputs and unlabelled targets are flagged.
    model = _model(interval=2, num_intervals=2)
    rows = sequence_windows(seq, model, "test")
    input_mask = np.stack([r["input_mask"].reshape(5, 15) for r in rows])
    assert not input_mask[:, :, 7].any()
    assert all(np.isfinite(r["input"]).all() for r in rows)
    # Metrics skip the unlabelled joint instead of scoring it against a 0.
    assert not target_mask(seq)[6, 2]
    metrics, scores = evaluate_method([seq], filled_input)
    assert np.isfinite(metrics["pixel_error"])
    gt_px = seq.gt.astype(np.float64)
    dist = np.linalg.norm(filled_input(seq) - gt_px, axis=-1)
    assert metrics["pixel_error"] == pytest.approx(dist[seq.labelled_joints()].mean())


def _model(interval: int, num_intervals: int, joints: int = 15, dims: int = 2):
    from hanet.config import ModelConfig

    return ModelConfig(
        num_joints=joints, joint_dim=dims, interval=interval, num_intervals=num_intervals
    )


def test_h36m_and_aist_3d(tmp_path: Path) -> None:
    gt = _pose_set([20, 9], 17, 3, seed=1)
    det = [g + 0.01 for g in gt]
    pair = write_pair(tmp_path, "h36m", "fcn", "test", {"joints_3d": gt}, {"joints_3d": det})
    seqs = read_published_pair(pair, "h36m17", "3D", 50.0)
    assert [s.num_frames for s in seqs] == [20, 9]
    assert np.array_equal(seqs[1].gt, gt[1].reshape(9, 17, 3))
    assert seqs[0].fps == 50.0 and seqs[0].image_size is None
    # Root-relative around the pelvis, exactly invertible up to one float32 rounding.
    norm = normalise(seqs[0])
    assert np.abs(norm.input[:, 0]).max() == 0.0
    back = denormalise(norm.input, norm.scale, norm.input_offset)
    np.testing.assert_allclose(back, seqs[0].pred, rtol=0, atol=1e-6)
    # AIST++: 14 joints already in LSP order.
    aist = _pose_set([7], 14, 3, seed=2)
    pair = write_pair(tmp_path, "aist", "spin", "train", {"joints_3d": aist}, {"joints_3d": aist})
    (seq,) = read_published_pair(pair, "lsp14", "3D")
    assert np.array_equal(seq.pred, aist[0].reshape(7, 14, 3)) and seq.split == "train"
    # Hip-centred: LSP's roots are the two hips (2, 3).
    norm = normalise(seq)
    np.testing.assert_allclose(norm.input[:, [2, 3]].mean(axis=1), 0, atol=1e-6)


def test_3dpw_reorders_17_h36m_joints_to_14_lsp(tmp_path: Path) -> None:
    raw = _pose_set([6], 17, 3, seed=3)
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
    gt = _pose_set([12, 10, 8], 15, 2, seed=5)
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
    gt = _pose_set([5, 5], 15, 2)
    shapes = [np.array([240, 320])] * 2
    pair = write_pair(
        tmp_path, "ds", "est", "test", {"joints_2d": gt, "imgshape": shapes}, {"joints_2d": gt[:1]}
    )
    with pytest.raises(
        ReadError, match=r"ds_est_test\.npz: 1 sequences, but .*ds_gt_test\.npz has 2"
    ):
        read_published_pair(pair, "jhmdb", "2D", errors=[])  # counts: always the whole file
    pair = write_pair(tmp_path, "ds", "est", "val", {"joints_2d": gt}, {"joints_2d": gt})
    with pytest.raises(ReadError, match="2D ground truth needs 'imgshape'"):
        read_published_pair(pair, "jhmdb", "2D")
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
    gt = _pose_set([5], 15, 2)
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


def test_detections_npz_alone_is_inference_input(tmp_path: Path) -> None:
    det = _pose_set([6, 4], 15, 2)
    path = write_npz(tmp_path / "video 1.npz", {"joints_2d": det})
    seqs = read_any(parse_location(path), "jhmdb", "2D", 25.0, (640, 480))
    assert [s.sequence_id for s in seqs] == ["video_1_00000", "video_1_00001"]
    assert all(s.split == "infer" and s.gt is None and s.image_size == (640, 480) for s in seqs)
    with pytest.raises(ReadError, match="unsupported file type"):
        read_any(parse_location(tmp_path / "x.csv"), "jhmdb", "2D")
    assert read_detections_npz(parse_location(path), "jhmdb", "2D")[0].fps is None


# ----------------------------------------------------------------------------------------------
# Keypoint JSON


def _kp(values: list[tuple[float, float, float]]) -> list[float]:
    return [v for triple in values for v in triple]


def test_keypoint_json_tracks_gaps_and_confidence(tmp_path: Path) -> None:
    def person(x: float, conf: float = 0.9) -> list[float]:
        return _kp([(x + j, 100 + j, conf) for j in range(17)])

    zero = person(40)
    zero[3 * 5 + 2] = 0.0  # joint 5 with zero confidence
    detections = [
        {"image_id": 10, "track_id": 1, "keypoints": person(10), "score": 0.9},
        {"image_id": 10, "track_id": 2, "keypoints": person(200), "score": 0.8},
        {"image_id": 11, "track_id": 1, "keypoints": person(11), "score": 0.9},
        # No detection at all in frame 12: a gap that still takes its time step.
        {"image_id": 13, "track_id": 1, "keypoints": zero, "score": 0.7},
        {"image_id": 13, "track_id": 2, "keypoints": person(203), "score": 0.6},
    ]
    path = tmp_path / "clip.json"
    path.write_text(json.dumps(detections))
    one, two = read_keypoint_json(parse_location(path), fps=30.0, image_size=(640, 480))
    assert (one.sequence_id, two.sequence_id) == ("clip_track1", "clip_track2")
    assert one.layout == "coco17" and one.frame_names == ["10", "11", "12", "13"]
    assert one.observed().sum(axis=1).tolist() == [17, 17, 0, 16]
    assert two.observed().sum(axis=1).tolist() == [17, 0, 0, 17]
    assert one.confidence[0, 0] == pytest.approx(0.9) and one.confidence[3, 5] == 0.0
    assert one.pred[1, 2].tolist() == [13.0, 102.0] and one.pred[2].max() == 0.0
    assert one.split == "infer" and one.gt is None and one.image_size == (640, 480)
    # Filled in time for the model: frame 12 lies between 11 and 13.
    filled = input_poses(one)
    np.testing.assert_allclose(filled[2, 0], (filled[1, 0] + filled[3, 0]) / 2)


def test_keypoint_json_without_tracks_keeps_best_and_reads_images(tmp_path: Path) -> None:
    document = {
        "images": [{"id": "f0", "width": 320, "height": 240}, {"id": "f1"}],
        "annotations": [
            {"image_id": "f0", "keypoints": _kp([(1, 1, 0.5)] * 15), "score": 0.2},
            {"image_id": "f0", "keypoints": _kp([(2, 2, 0.5)] * 15), "score": 0.9},
            {"image_id": "f1", "keypoints": _kp([(3, 3, 0.5)] * 15), "score": 0.4},
        ],
    }
    path = tmp_path / "v.json"
    path.write_text(json.dumps(document))
    (seq,) = read_keypoint_json(parse_location(path))
    assert seq.layout == "jhmdb" and seq.image_size == (320, 240)
    assert seq.pred[0, 0].tolist() == [2.0, 2.0] and seq.pred[1, 0].tolist() == [3.0, 3.0]
    bad = tmp_path / "bad.json"
    for content, message in [
        ("{not json", "not valid JSON"),
        ("[]", "non-empty list"),
        (json.dumps([{"image_id": 0, "keypoints": [1, 2]}]), "x, y, score triples"),
        (json.dumps([{"image_id": 0, "keypoints": [1, 2, 3] * 16}]), "no joint layout known"),
        (json.dumps([{"image_id": 0, "keypoints": ["a", 2, 3] * 17}]), "numeric"),
    ]:
        bad.write_text(content)
        with pytest.raises(ReadError, match=message):
            read_keypoint_json(parse_location(bad))
    with pytest.raises(ReadError, match="keypoint JSON is 2D"):
        read_any(parse_location(path), "h36m17", "3D")


# ----------------------------------------------------------------------------------------------
# Leakage


def test_leak_detection_by_clip_folder() -> None:
    train = [seq2d(3, "t1", frame_names=["run/clip1/1.png", "run/clip1/2.png", "run/clip1/3.png"])]
    test = [
        seq2d(3, "s1", frame_names=["run/clip1/4.png", "run/clip1/5.png", "run/clip1/6.png"]),
        seq2d(3, "s2", frame_names=["run/clip2/1.png", "run/clip2/2.png", "run/clip2/3.png"]),
        seq2d(3, "s3", frame_names=None),
    ]
    assert find_leaks(train, test) == ["run/clip1"]
    assert find_leaks(train, test[1:]) == []


def test_sample_has_no_leak(sample_dir: Path) -> None:
    root = parse_location(sample_dir)
    pairs = {p.split: p for p in find_published_pairs(root, "mocap2d", "simplebaseline")}
    train = read_published_pair(pairs["train"], "jhmdb", "2D")
    test = read_published_pair(pairs["test"], "jhmdb", "2D")
    assert find_leaks(train, test) == []
    assert find_leaks(train, train[:3]) != []
