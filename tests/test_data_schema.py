"""hanet.data.schema: sequence validation and ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from posedata import seq2d

from hanet.data.arrow import (
    SEQUENCE_SCHEMA,
    sequences_to_table,
)
from hanet.data.schema import (
    SchemaError,
    Sequence,
    check_id,
    safe_name,
    validate_many,
    validate_sequence,
)
from hanet.formats.common import ReadError
from hanet.formats.parquet import read_sequence_parquet
from hanet.io.location import parse_location


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


@pytest.mark.parametrize(("field", "what"), [("pred", "poses"), ("gt", "ground truth")])
def test_an_absurd_finite_value_names_file_sequence_frame_and_joint(
    field: str, what: str, tmp_path: Path
) -> None:
    seq = seq2d(20, "clip_a")
    getattr(seq, field)[13, 11] = (2.5e6, 80.0)  # joint 11 is r_wrist in the jhmdb layout
    with pytest.raises(SchemaError) as info:
        validate_sequence(seq)
    assert str(info.value).startswith(
        f"<memory>: sequence 'clip_a': {what}: frame 13, joint 11 (r_wrist) at (2.5e+06, 80) is "
        "implausible: "
    )
    # Through a file, the message names the file read even when a source is recorded inside.
    good = validate_sequence(seq2d(20, "clip_a"))
    row = sequences_to_table([good]).to_pylist()[0]
    values = np.asarray(row[field], dtype=np.float32).reshape(20, 15, 2)
    values[13, 11] = (2.5e6, 80.0)
    row[field] = values.reshape(-1).tolist()
    row["source"] = "/elsewhere/original.npz"
    path = tmp_path / "shard.parquet"
    pq.write_table(pa.Table.from_pylist([row], schema=SEQUENCE_SCHEMA), path)
    with pytest.raises(ReadError) as info:
        read_sequence_parquet(parse_location(path))
    message = str(info.value)
    assert message.startswith(f"{path}: sequence 'clip_a': {what}: frame 13, joint 11 (r_wrist)")
    assert "original.npz" not in message


@pytest.mark.parametrize(
    ("text", "start", "safe"),
    [
        ("video 1", True, "video_1"),
        ("../../etc/passwd", True, "etc_passwd"),
        ("-rf", True, "rf"),
        ("...", True, "sequence"),
        ("-1", False, "-1"),
        ("ça va", True, "a_va"),
    ],
)
def test_safe_name_makes_ids_check_id_accepts(text: str, start: bool, safe: str) -> None:
    assert safe_name(text, start=start) == safe
    if start:
        check_id(safe_name(text), "id", "here")


def _one_by_one(seq: Sequence) -> Sequence | SchemaError:
    try:
        return validate_sequence(seq, plausibility=False)
    except SchemaError as err:
        return err


def with_poses(seq: Sequence, poses: np.ndarray) -> Sequence:
    seq.pred = np.broadcast_to(poses, (seq.num_frames, *poses.shape[-2:])).copy()
    return seq


def test_validating_many_at_once_gives_each_sequence_what_validating_it_alone_gives() -> None:
    rng = np.random.default_rng(3)

    def holes(frames: int, **kwargs) -> Sequence:
        seq = seq2d(frames, f"clip_{frames}", **kwargs)
        seq.pred[rng.random((frames, 15)) < 0.2] = np.nan  # missing joints
        seq.gt[rng.random((frames, 15)) < 0.3] = np.nan  # unlabelled joints
        return seq

    sequences = [
        # Alike: their values are checked together.
        holes(9),
        holes(20),
        seq2d(6, "slow", fps=-1.0),  # a bad field, found after the joined checks
        holes(12),
        seq2d(6, "../up"),  # a bad id, found before them
        # Another group, one of them with nothing observed at all.
        seq2d(5, "no_truth", gt=None, bbox=None, joint_mask=rng.random((5, 15)) < 0.7),
        with_poses(
            seq2d(3, "blind", gt=None, bbox=None, joint_mask=np.ones((3, 15), bool)),
            np.full((15, 2), np.nan),
        ),
        seq2d(8, "more", gt=None, bbox=None, joint_mask=rng.random((8, 15)) < 0.9),
        with_poses(seq2d(7, "three_d", gt=None), rng.normal(size=(7, 15, 3))),  # its own group
        # A group with an infinite value: each is checked on its own.
        holes(30, gt_mask=rng.random(30) < 0.5, confidence=rng.random((30, 15))),
        with_poses(
            seq2d(4, "inf", gt_mask=np.ones(4, bool), confidence=np.ones((4, 15))),
            np.where(np.eye(15)[:, :2] > 0, np.inf, 1.0),
        ),
        holes(11, gt_joint_mask=rng.random((11, 15)) < 0.8),
        seq2d(6, "bad_mask", joint_mask=np.ones((5, 15), bool)),
        seq2d(6, "bad_bbox", bbox=np.full((6, 4), np.nan)),
        holes(15, gt=np.zeros((15, 15, 2), np.float64)),  # float64 truth: its own group
    ]
    sequences[8].representation = "3D"
    together = validate_many(sequences)
    assert len(together) == len(sequences)
    bad = 0
    for seq, joined in zip(sequences, together, strict=True):
        alone = _one_by_one(seq)
        if isinstance(alone, SchemaError):
            bad += 1
            assert isinstance(joined, SchemaError) and str(joined) == str(alone)
            continue
        assert isinstance(joined, Sequence), joined
        for name in ("pred", "gt", "gt_mask", "gt_joint_mask", "joint_mask", "confidence", "bbox"):
            mine, theirs = getattr(joined, name), getattr(alone, name)
            assert (mine is None) == (theirs is None), name
            if mine is not None:
                assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs), name
        assert joined.layout == alone.layout and joined.image_size == alone.image_size
        assert joined.frame_names == alone.frame_names
    assert bad == 6  # inf, blind, bad_mask, bad_bbox, slow, ../up
    # The values were checked together, and the inputs were left as they were.
    assert np.isnan(sequences[0].pred).any()
