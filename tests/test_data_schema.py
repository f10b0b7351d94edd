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
from hanet.data.schema import SchemaError, Sequence, check_id, safe_name, validate_sequence
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
