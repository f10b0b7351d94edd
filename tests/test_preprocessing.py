"""The preprocessing pipeline on Ray Data: exact windows, full test coverage, S3, bad input,
idempotent reruns and the CLI.

Inputs are small published-layout folders cut from the bundled sample (a few sequences per
split), so each Ray run takes seconds. The windows are checked against both the sequence
Parquet the run wrote and the raw npz arrays.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from posedata import Evil, sample_arrays, sample_subset, write_npz, write_pair

from hanet.config import Config, ConfigError, load_config
from hanet.data.arrow import check_schema
from hanet.data.augment import stored_window_size
from hanet.data.normalise import denormalise, filled_input
from hanet.data.schema import Sequence
from hanet.data.windows import test_starts, train_starts
from hanet.dataset import ERRORS, MANIFEST, DatasetError, load_manifest, load_split, window_files
from hanet.formats.safe_npz import load_npz
from hanet.io.location import Location, parse_location
from hanet.io.storage import copy_file, fingerprint, list_files
from hanet.preprocessing import run_preprocess
from hanet.sources import sources_for
from hanet.training import read_window_dataset

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "configs" / "demo_2D.yaml"
H36M_CONFIG = REPO / "configs" / "h36m_fcn_3D.yaml"
# Small shards, so a split spans several files; a larger validation share, so val exists.
DEMO_SETTINGS = ["data.shard_rows=150", "data.val_fraction=0.3"]


def demo_config(*overrides: str) -> Config:
    return load_config(DEMO_CONFIG, [*DEMO_SETTINGS, *overrides])


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    """``BASE/data/`` holding a published-layout cut of the 2D sample, with missing joints
    written as the published files do (-1, -1) in one test sequence. Returns BASE."""
    base = tmp_path_factory.mktemp("layout")
    root = sample_subset(sample_dir, base / "data", counts={"train": 8, "test": 4})
    det_path = root / "detected_poses/mocap2d/simplebaseline/mocap2d_simplebaseline_test.npz"
    det = load_npz(parse_location(det_path))
    poses = det["joints_2d"][0].copy()
    poses[5:8, 6:8] = -1  # joint 3 missing in frames 5-7
    poses[:, 28:30] = -1  # joint 14 never detected
    det["joints_2d"][0] = poses
    write_npz(det_path, dict(det))
    return base


@pytest.fixture(scope="module")
def local_run(ray_session: Any, layout: Path, tmp_path_factory: pytest.TempPathFactory):
    """One local run over ``layout/data``; the tests below read its output."""
    cfg = demo_config()
    source = parse_location(layout / "data")
    output = parse_location(tmp_path_factory.mktemp("out") / "dataset")
    result = run_preprocess(cfg, source, output)
    return cfg, source, output, result


# ----------------------------------------------------------------------------------------------
# Checking a dataset against its sources


def _list_column(table: pa.Table, name: str, shape: tuple[int, ...]) -> np.ndarray:
    flat = table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(table.num_rows, *shape)


def assert_rounding_equal(actual: np.ndarray, expected: np.ndarray, offset: np.ndarray) -> None:
    """Equal up to one float32 rounding: of the value, or of its offset-relative form."""
    expected = np.asarray(expected, np.float32)
    magnitude = np.maximum(np.abs(expected), np.abs(expected - offset)).astype(np.float32)
    error = np.abs(np.asarray(actual, np.float64) - expected)
    worst = error - np.spacing(magnitude)
    assert (worst <= 0).all(), f"off by more than one float32 rounding: {error.max()}"


def _raw_poses(seq: Sequence) -> np.ndarray:
    """The raw detections of ``seq`` from its npz, paired by the index in its id."""
    index = int(seq.sequence_id.rsplit("_", 1)[1])
    det = load_npz(parse_location(seq.source))
    key = "joints_2d" if seq.representation == "2D" else "joints_3d"
    return np.asarray(det[key][index], np.float32).reshape(seq.pred.shape)


def check_dataset(output: Location, cfg: Config) -> dict[str, dict[str, Sequence]]:
    """Every window equals its source slice after denormalisation (the sequence Parquet and
    the raw npz), its masks match, and every test (and val) frame is covered."""
    manifest = load_manifest(output)
    assert manifest is not None
    model = cfg.model
    interval = model.interval
    joints, dims = model.num_joints, model.joint_dim
    by_split = {}
    for split, info in manifest["splits"].items():
        # Training windows are stored longer when augmentation resamples them faster.
        stored = stored_window_size(model.window_size, cfg.augment)
        size = stored if split == "train" else model.window_size
        seqs = {s.sequence_id: s for s in load_split(output, split)}
        assert len(seqs) == info["sequences"] and split in {s.split for s in seqs.values()}
        assert sum(s.num_frames for s in seqs.values()) == info["frames"]
        files = window_files(output, split)
        assert len(files) == len(info["files"]) >= 1
        tables = [pq.read_table(f.path) for f in files]
        for table in tables:
            check_schema(table.schema, "window", "shard")
            assert table.num_rows <= cfg.data.shard_rows
        table = pa.concat_tables(tables)
        assert table.num_rows == info["windows"]
        assert set(table.column("window_size").to_pylist()) == {size}
        assert set(table.column("num_joints").to_pylist()) == {joints}
        assert set(table.column("joint_dim").to_pylist()) == {dims}
        inputs = _list_column(table, "input", (size, joints, dims))
        targets = _list_column(table, "target", (size, joints, dims))
        target_mask = _list_column(table, "target_mask", (size, joints, dims))
        input_mask = _list_column(table, "input_mask", (size, joints))
        frame_mask = _list_column(table, "frame_mask", (size,))
        key_mask = _list_column(table, "key_mask", (size,))
        scale = _list_column(table, "scale", (dims,))
        in_offset = _list_column(table, "input_offset", (size, dims))
        tg_offset = _list_column(table, "target_offset", (size, dims))
        ids = table.column("sequence_id").to_pylist()
        starts = table.column("start").to_pylist()
        assert set(table.column("split").to_pylist()) == {split}
        covered = {sid: np.zeros(s.num_frames, dtype=int) for sid, s in seqs.items()}
        raw_cache: dict[str, np.ndarray] = {}
        for w, (sid, start) in enumerate(zip(ids, starts)):
            seq = seqs[sid]
            index = start + np.arange(size)
            valid = index < seq.num_frames
            clip = np.minimum(index, seq.num_frames - 1)
            assert np.array_equal(frame_mask[w], valid)
            assert np.array_equal(key_mask[w], np.arange(size) % interval == 0)
            observed = seq.observed()[clip] & valid[:, None]
            assert np.array_equal(input_mask[w], observed)
            back = denormalise(inputs[w], scale[w], in_offset[w])
            assert back.dtype == np.float32 and np.isfinite(back).all()
            offset = in_offset[w][:, None, :]
            # Missing joints were filled (interpolated) before normalisation.
            assert_rounding_equal(back, filled_input(seq)[clip], offset)
            # Observed joints are the source values themselves: in the sequence Parquet and in
            # the raw npz.
            if sid not in raw_cache:
                raw_cache[sid] = _raw_poses(seq)
            offsets = np.broadcast_to(offset, back.shape)[observed]
            assert_rounding_equal(back[observed], seq.pred[clip][observed], offsets)
            assert_rounding_equal(back[observed], raw_cache[sid][clip][observed], offsets)
            supervised = seq.labelled_joints()[clip] & valid[:, None]
            assert np.array_equal(target_mask[w], np.repeat(supervised[..., None], dims, -1))
            gt_back = denormalise(targets[w], scale[w], tg_offset[w])
            assert_rounding_equal(
                gt_back[supervised],
                seq.gt[clip][supervised],
                np.broadcast_to(tg_offset[w][:, None, :], gt_back.shape)[supervised],
            )
            # Unknown ground truth is stored as 0 (padding repeats the last frame, masked).
            unknown = ~seq.labelled_joints()[clip] & valid[:, None]
            assert not targets[w][unknown].any()
            covered[sid][clip[valid]] += 1
        for sid, seq in seqs.items():
            frames = seq.num_frames
            # Shards are in no particular order: a sequence's windows, by start.
            expected = sorted(start for i, start in zip(ids, starts) if i == sid)
            if split == "train":
                assert expected == train_starts(frames, size, cfg.data.train_stride).tolist()
            else:
                step = interval * cfg.data.test_stride_q
                assert expected == test_starts(frames, size, step).tolist()
                # Every frame of every test/val sequence is in some window.
                assert (covered[sid] >= 1).all(), (sid, np.flatnonzero(covered[sid] == 0))
        by_split[split] = seqs
    return by_split


def _tree(path: Path) -> dict[str, int]:
    return {
        str(p.relative_to(path)): p.stat().st_mtime_ns
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------------------------
# Tests


def test_windows_equal_sources_and_cover_every_test_frame(local_run, layout: Path) -> None:
    cfg, _, output, result = local_run
    assert not result.skipped and result.errors == []
    manifest = result.manifest
    stored = load_manifest(output)
    assert stored["schema_version"] == manifest["schema_version"] == "4"
    assert set(stored["splits"]) == {"train", "val", "test"}
    assert stored["splits"]["test"]["sequences"] == 4 and stored["errors"] == 0
    # The manifest lists every file with its size (added by the staged commit).
    on_disk = {loc.relative_to(output): Path(loc.path).stat().st_size for loc in list_files(output)}
    on_disk.pop(MANIFEST)
    assert {f["path"]: f["size"] for f in stored["files"]} == on_disk
    assert ERRORS not in on_disk
    # Sources are fingerprinted relative to the published root.
    assert set(stored["identity"]["sources"]) == {
        f"{kind}/mocap2d/{name}"
        for kind, names in {
            "groundtruth_poses": ["mocap2d_gt_train.npz", "mocap2d_gt_test.npz"],
            "detected_poses": [
                "simplebaseline/mocap2d_simplebaseline_train.npz",
                "simplebaseline/mocap2d_simplebaseline_test.npz",
            ],
        }.items()
        for name in names
    }
    splits = check_dataset(output, cfg)
    # The missing joints of the layout fixture arrived as masks.
    masked = splits["test"]["mocap2d_simplebaseline_test_00000"].observed()
    assert not masked[5:8, 3].any() and not masked[:, 14].any() and masked[:, :14].sum() > 0
    # What the trainer reads: fixed-shape arrays through Ray Data (training windows as stored,
    # longer for the augmentation's faster playback).
    batch = read_window_dataset(output, "train").take_batch(4)
    size = stored_window_size(cfg.model.window_size, cfg.augment)
    channels = cfg.model.channels
    assert batch["input"].shape == (4, size, channels)
    assert batch["target_mask"].shape == (4, size, channels)
    assert batch["frame_mask"].shape == (4, size) and batch["key_mask"].dtype == bool


def test_rerun_is_idempotent_and_config_changes_need_overwrite(
    local_run, layout: Path, tmp_path: Path
) -> None:
    cfg, source, original, _ = local_run
    copy = tmp_path / "dataset"
    shutil.copytree(original.path, copy)
    output = parse_location(copy)
    before = _tree(copy)
    # Same inputs and config: nothing is read or written (no Ray work either).
    again = run_preprocess(cfg, source, output)
    assert again.skipped and _tree(copy) == before
    # The parent holding data/ is the same input; a model setting that does not shape windows
    # is the same dataset.
    assert run_preprocess(
        demo_config("model.hidden_dim=64"), parse_location(layout), output
    ).skipped
    # Another window setting: refused, naming the change, output untouched.
    changed = demo_config("data.train_stride=4")
    with pytest.raises(DatasetError, match=r"data\.train_stride: 2 -> 4.*--overwrite"):
        run_preprocess(changed, source, output)
    assert _tree(copy) == before
    # Other inputs: refused too.
    other = tmp_path / "other"
    shutil.copytree(layout / "data", other)
    gt_train = other / "groundtruth_poses/mocap2d/mocap2d_gt_train.npz"
    arrays = load_npz(parse_location(gt_train))
    arrays["bbox"][0] = arrays["bbox"][0] + 1
    write_npz(gt_train, dict(arrays))
    with pytest.raises(DatasetError, match=r"sources\.groundtruth_poses/mocap2d/mocap2d_gt"):
        run_preprocess(cfg, parse_location(other), output)
    # With overwrite: replaced as a whole, old shards gone, no staging left behind.
    replaced = run_preprocess(changed, source, output, overwrite=True)
    assert not replaced.skipped
    manifest = load_manifest(output)
    assert manifest["identity"]["config"]["data"]["train_stride"] == 4
    listed = {f["path"] for f in manifest["files"]} | {MANIFEST}
    assert {str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file()} == listed
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    fewer = manifest["splits"]["train"]["windows"]
    assert fewer < load_manifest(original)["splits"]["train"]["windows"]


def test_outputs_that_must_not_be_replaced(local_run, layout: Path, tmp_path: Path) -> None:
    """Checked before any Ray work; nothing is touched."""
    cfg, source, _, _ = local_run
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(DatasetError, match="not a hanet dataset.*thesis.tex"):
        run_preprocess(cfg, source, parse_location(foreign))
    assert (foreign / "thesis.tex").read_text() == "precious"
    hidden = tmp_path / "repo"
    (hidden / ".git").mkdir(parents=True)
    (hidden / ".git" / "HEAD").write_text("ref")
    with pytest.raises(DatasetError, match=r"not a hanet dataset.*\.git/HEAD"):
        run_preprocess(cfg, source, parse_location(hidden))
    with pytest.raises(DatasetError, match="input must not be inside the output"):
        run_preprocess(cfg, source, parse_location(layout), overwrite=True)
    with pytest.raises(DatasetError, match="output must not be inside the input"):
        run_preprocess(cfg, source, parse_location(layout / "data" / "out"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        run_preprocess(cfg, source, parse_location(tmp_path / "file"))
    with pytest.raises(DatasetError, match="input not found"):
        run_preprocess(cfg, parse_location(tmp_path / "absent"), parse_location(tmp_path / "o"))
    with pytest.raises(DatasetError, match="dataset='nope'"):
        run_preprocess(demo_config("data.dataset=nope"), source, parse_location(tmp_path / "o"))
    with pytest.raises(DatasetError, match="test_stride_q=9"):
        run_preprocess(demo_config("data.test_stride_q=9"), source, parse_location(tmp_path / "o"))
    with pytest.raises(ConfigError, match="data.layout: unknown joint layout 'nope'"):
        demo_config("data.layout=nope")  # the config itself refuses it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "home", "repo"]


def _bad_layout(root: Path, sample_dir: Path) -> dict[str, str]:
    """Every kind of bad input, next to good sequences. Returns problem -> expected text."""
    gt, det = sample_arrays(sample_dir, "mocap2d", "simplebaseline", "train")
    gt_train = {k: list(v[:7]) for k, v in gt.items()}
    det_a = {k: list(v[:7]) for k, v in det.items()}
    det_a["joints_2d"][1] = det_a["joints_2d"][1][:-3]  # length mismatch
    det_a["joints_2d"][2] = det_a["joints_2d"][2][:, :28]  # 14 joints
    det_a["joints_2d"][3] = det_a["joints_2d"][3].copy()
    det_a["joints_2d"][3][4, 7] = np.inf  # inf
    det_a["joints_2d"][4] = det_a["joints_2d"][4][:0]  # empty
    det_a["joints_2d"][5] = np.full_like(det_a["joints_2d"][5], np.nan)  # every joint NaN
    write_pair(root, "mocap2d", "esta", "train", gt_train, det_a)
    # Another estimator on the same ground truth, with one sequence fewer.
    det_d = {k: v[:6] for k, v in det_a.items()}
    write_pair(root, "mocap2d", "estd", "train", gt_train, det_d)
    gt_test, det_test = sample_arrays(sample_dir, "mocap2d", "simplebaseline", "test")
    gt_test = {k: list(v[:3]) for k, v in gt_test.items()}
    good_test = {k: list(v[:3]) for k, v in det_test.items()}
    write_pair(root, "mocap2d", "este", "test", gt_test, good_test)
    # A truncated file, and one carrying a pickled function call.
    pair = write_pair(root, "mocap2d", "estb", "test", gt_test, good_test)
    data = Path(pair.detected.path).read_bytes()
    Path(pair.detected.path).write_bytes(data[: len(data) // 3])
    evil = dict(good_test, joints_2d=[Evil(root / "pwned")] * 3)
    write_pair(root, "mocap2d", "estc", "test", gt_test, evil)
    # A dataset whose name makes a path-like id.
    write_pair(root, "bad..name", "este", "test", gt_test, good_test)
    # One absurd but finite coordinate; and an estimator whose output is in image fractions,
    # not the pixels the config declares (valid, but worth a warning).
    absurd = dict(good_test, joints_2d=[np.array(a, copy=True) for a in good_test["joints_2d"]])
    absurd["joints_2d"][1][9, 2 * 5] = 3e6
    write_pair(root, "mocap2d", "estf", "test", gt_test, absurd)
    fractions = dict(good_test, joints_2d=[np.asarray(a) / 320.0 for a in good_test["joints_2d"]])
    write_pair(root, "mocap2d", "estg", "test", gt_test, fractions)
    return {
        "absurd": "mocap2d_estf_test.npz: sequence 1 (mocap2d_estf_test_00001): poses: frame 9, "
        "joint 5 (r_hip) at (3e+06, ",
        "length": "mocap2d_esta_train.npz: sequence 1 (mocap2d_esta_train_00001): "
        f"{len(det_a['joints_2d'][1])} frames, but ground truth sequence 1",
        "joints": "sequence 2 (mocap2d_esta_train_00002): 14 joints per frame",
        "inf": "sequence 3 (mocap2d_esta_train_00003): poses contain inf (frame 4)",
        "empty": "sequence 4 (mocap2d_esta_train_00004): empty sequence",
        "nan": "sequence 5 (mocap2d_esta_train_00005): every joint of every frame is missing",
        "count": "mocap2d_estd_train.npz: 6 sequences, but",
        "truncated": "mocap2d_estb_test.npz: not a readable npz archive",
        "pickle": "mocap2d_estc_test.npz[joints_2d]: refused to unpickle",
        "id": "bad..name_este_test_00000' is path-like",
    }


def test_bad_input_fails_with_nothing_written_or_is_skipped_and_reported(
    ray_session: Any, sample_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "in"
    expected = _bad_layout(root, sample_dir)
    inputs_before = {p: fingerprint(parse_location(p)) for p in root.rglob("*.npz")}
    cfg = demo_config("data.dataset=null", "data.estimator=null")
    output = tmp_path / "out" / "dataset"
    with pytest.raises(DatasetError) as info:
        run_preprocess(cfg, parse_location(root), parse_location(output))
    message = str(info.value)
    assert message.startswith(f"{len(expected) + 2} bad input(s); nothing was written")
    for problem, text in expected.items():
        assert text in message, (problem, message)
    assert "--on-error skip" in message
    # Nothing written (not even staging), inputs untouched, no code ran.
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert {p: fingerprint(parse_location(p)) for p in root.rglob("*.npz")} == inputs_before
    assert not (root / "pwned").exists()

    caplog.clear()
    result = run_preprocess(cfg, parse_location(root), parse_location(output), on_error="skip")
    # The fractions warn once for the run, naming a sequence, not once per sequence.
    assert len(result.unit_warnings) == 3
    assert "mocap2d_estg_test.npz: sequence 'mocap2d_estg_test_0000" in result.unit_warnings[0]
    assert "metres or normalised coordinates rather than pixels" in result.unit_warnings[0]
    units = [r for r in caplog.records if "does not fit the declared units" in r.getMessage()]
    assert len(units) == 1 and units[0].getMessage().startswith("3 sequence(s) have a body size")
    errors = json.loads((output / ERRORS).read_text())
    assert errors == result.errors and len(errors) == len(expected) + 2
    for problem, text in expected.items():
        assert any(text in e for e in errors), problem
    manifest = load_manifest(parse_location(output))
    assert manifest["errors"] == len(errors)
    written = {
        s.sequence_id
        for split in manifest["splits"]
        for s in load_split(parse_location(output), split)
    }
    assert written == {
        "mocap2d_esta_train_00000",
        "mocap2d_esta_train_00006",
        *(f"mocap2d_este_test_{i:05d}" for i in range(3)),
        "mocap2d_estf_test_00000",
        "mocap2d_estf_test_00002",
        *(f"mocap2d_estg_test_{i:05d}" for i in range(3)),
    }
    # A skip-made dataset does not satisfy a run that must fail on bad input.
    with pytest.raises(DatasetError, match="bad input"):
        run_preprocess(cfg, parse_location(root), parse_location(output))
    assert run_preprocess(
        cfg, parse_location(root), parse_location(output), on_error="skip"
    ).skipped


@pytest.mark.s3
def test_s3_round_trip(local_run, layout: Path, s3_env) -> None:
    cfg, _, local_output, local_result = local_run
    bucket = s3_env.make_bucket("hanet-preprocess-tests")
    prefix = parse_location(f"s3://{bucket}/{os.urandom(4).hex()}")
    # The input as its parent holding data/, copied to the bucket.
    for path in sorted((layout / "data").rglob("*.npz")):
        copy_file(parse_location(path), prefix.join("in", str(path.relative_to(layout))))
    source, output = prefix.join("in"), prefix.join("out", "dataset")
    assert output.access_key is not None  # the keys travel to the Ray workers inside Location
    result = run_preprocess(cfg, source, output)
    assert not result.skipped
    manifest = load_manifest(output)
    # Same content, same identity: fingerprints depend on bytes and relative names only.
    assert manifest["identity"] == local_result.manifest["identity"]
    assert manifest["splits"] == local_result.manifest["splits"]
    for info in manifest["splits"].values():
        for rel in info["files"]:
            remote = pq.read_table(output.join(rel).path, filesystem=output.filesystem())
            assert remote.equals(pq.read_table(local_output.join(rel).path))
    remote_seqs = load_split(output, "test")
    local_seqs = load_split(local_output, "test")
    assert [s.sequence_id for s in remote_seqs] == [s.sequence_id for s in local_seqs]
    assert all(np.array_equal(a.pred, b.pred) for a, b in zip(remote_seqs, local_seqs))
    # Nothing but the dataset under the output prefix (staging removed).
    names = {loc.relative_to(prefix.join("out")) for loc in list_files(prefix.join("out"))}
    assert names == {f"dataset/{f['path']}" for f in manifest["files"]} | {"dataset/manifest.json"}
    assert run_preprocess(cfg, source, output).skipped


def test_3d_sample_with_h36m_config(
    ray_session: Any, sample_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = sample_subset(
        sample_dir, tmp_path / "in", "mocap3d", "fcn", counts={"train": 3, "test": 2}
    )
    cfg = load_config(
        H36M_CONFIG,
        [
            "data.dataset=mocap3d",
            "data.estimator=fcn",
            "data.val_fraction=0",
            "data.shard_rows=200",
        ],
    )
    output = parse_location(tmp_path / "out")
    result = run_preprocess(cfg, parse_location(root), output)
    assert set(result.manifest["splits"]) == {"train", "test"}
    assert result.manifest["layout"]["name"] == "h36m17" and result.manifest["window_size"] == 101
    splits = check_dataset(output, cfg)
    assert all(s.representation == "3D" for s in splits["test"].values())
    assert not [r for r in caplog.records if "root-relative" in r.getMessage()]

    # The same poses in camera space (every frame 4 m in front of the camera, and moving):
    # under published normalisation their root path would pass through unrefined. One warning.
    moved_root = shutil.copytree(root, tmp_path / "moved")
    for det_file in (moved_root / "detected_poses").rglob("*.npz"):
        arrays = load_npz(parse_location(det_file))
        shifted = []
        for flat in arrays["joints_3d"]:
            path = np.array([0.0, 0.0, 4.0]) + np.linspace(0, 1, len(flat))[:, None] * 0.5
            shifted.append((flat.reshape(len(flat), -1, 3) + path[:, None]).reshape(len(flat), -1))
        write_npz(det_file, {**arrays, "joints_3d": shifted})
    caplog.clear()
    run_preprocess(cfg, parse_location(moved_root), parse_location(tmp_path / "out_moved"))
    warned = [r.getMessage() for r in caplog.records if "root-relative" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("5 sequence(s) are not root-relative")
    assert "mocap3d_fcn_" in warned[0] and "'body' refines that path too" in warned[0]


@pytest.mark.ray
def test_several_inputs_mix_into_one_dataset(
    ray_session: Any, sample_dir: Path, tmp_path: Path
) -> None:
    """Two sources with their own names: one dataset, every sequence once, the manifest
    accounting for each; the same with data.sources in the config; body normalisation needs
    no image size."""
    first = sample_subset(sample_dir, tmp_path / "a", counts={"train": 5, "test": 2})
    gt, det = sample_arrays(sample_dir, "mocap2d", "simplebaseline", "train")
    keep = slice(20, 26)
    write_pair(
        tmp_path / "b",
        "other2d",
        "tracker",
        "train",
        {k: list(v[keep]) for k, v in gt.items() if k != "imgshape"},
        {k: list(v[keep]) for k, v in det.items()},
    )
    cfg = demo_config("data.dataset=null", "data.estimator=null", "data.normalisation=body")
    sources = sources_for(cfg, [parse_location(first), parse_location(tmp_path / "b")])
    result = run_preprocess(cfg, sources, parse_location(tmp_path / "out"))
    per_input = {s["input"]: s["splits"] for s in result.manifest["sources"]}
    assert sum(v["sequences"] for v in per_input[parse_location(first).uri].values()) == 7
    other = per_input[parse_location(tmp_path / "b").uri]
    assert sum(v["sequences"] for v in other.values()) == 6 and "test" not in other
    splits = check_dataset(parse_location(tmp_path / "out"), cfg)
    ids = {i for seqs in splits.values() for i in seqs}
    assert len(ids) == 13 and sum(i.startswith("other2d_tracker_train") for i in ids) == 6
    # The same inputs listed in the config, in the other order: the same sequences.
    listed = cfg.replace({"data.sources": [{"path": str(tmp_path / "b")}, {"path": str(first)}]})
    again = run_preprocess(listed, sources_for(listed), parse_location(tmp_path / "out2"))
    assert again.frames == result.frames and again.windows == result.windows
    with pytest.raises(DatasetError, match="no input"):
        sources_for(cfg)


@pytest.mark.cli
def test_cli(local_run, layout: Path, tmp_path: Path) -> None:
    """The entry point as a user runs it, once as a subprocess (connected to the test's Ray
    instance), then its error paths in-process."""
    import ray

    output = tmp_path / "cli-dataset"
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address)
    args = [
        sys.executable,
        str(REPO / "pipelines" / "preprocess.py"),
        "--config",
        str(DEMO_CONFIG),
        "--input",
        str(layout),  # the parent holding data/
        "--output",
        str(output),
        *(arg for setting in DEMO_SETTINGS for arg in ("--set", setting)),
    ]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert " test:      4 sequences" in done.stdout
    assert "frames/s" in done.stdout and "windows/s" in done.stdout
    manifest = load_manifest(parse_location(output))
    assert manifest["identity"] == local_run[3].manifest["identity"]

    import importlib.util

    from typer.testing import CliRunner

    spec = importlib.util.spec_from_file_location("preprocess_cli", args[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runner = CliRunner()
    base = args[2:]
    rerun = runner.invoke(module.app, base)
    assert rerun.exit_code == 0 and "up to date" in rerun.output
    changed = runner.invoke(module.app, [*base, "--set", "data.train_stride=3"])
    assert changed.exit_code == 2 and "--overwrite" in changed.output
    missing = runner.invoke(module.app, [*base[:2], "--input", str(tmp_path / "nope"), *base[4:]])
    assert missing.exit_code == 2 and "input not found" in missing.output
    wrong = runner.invoke(module.app, [*base, "--on-error", "maybe"])
    assert wrong.exit_code == 2 and "--on-error" in wrong.output
    bad_key = runner.invoke(module.app, [*base, "--set", "data.nope=1"])
    assert bad_key.exit_code == 2 and "data.nope" in bad_key.output
