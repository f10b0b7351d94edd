"""hanet.formats.parquet: our sequence Parquet round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hanet.data.arrow import (
    SCHEMA_VERSION,
    SEQUENCE_SCHEMA,
    sequences_to_table,
)
from hanet.data.schema import Sequence, validate_sequence
from hanet.formats.parquet import read_sequence_parquet, write_sequence_parquet
from hanet.io.location import parse_location
from hanet.skeletons import layout_from_mapping


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


def test_a_declared_layout_travels_with_its_sequences(tmp_path: Path) -> None:
    layout = layout_from_mapping(
        {"name": "pair2", "joints": ["l_hand", "r_hand"], "left_right": ["l_hand-r_hand"]}
    )
    seq = validate_sequence(
        Sequence("two", layout, "2D", np.ones((3, 2, 2), np.float32), image_size=(10, 10))
    )
    path = tmp_path / "two.parquet"
    write_sequence_parquet(parse_location(path), [seq])
    (back,) = read_sequence_parquet(parse_location(path))
    assert back.layout == layout and back.layout.left_right == ((0, 1),)
