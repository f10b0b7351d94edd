"""hanet.data.arrow: the schemas and the numpy <-> Arrow codec."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from posedata import seq2d

from hanet.config import ModelConfig
from hanet.data.arrow import (
    SEQUENCE_SCHEMA,
    check_schema,
    fixed_list,
    from_fixed_list,
    from_ragged_list,
    parquet_bytes,
    ragged_list,
    sequences_to_table,
    table_to_sequences,
    window_batch,
    window_schema,
    window_table,
)
from hanet.data.schema import SchemaError
from hanet.data.windows import window_arrays


def test_check_schema_refuses_other_kinds_and_versions() -> None:
    check_schema(window_schema(11, 15, 2), "window", "w")
    with pytest.raises(SchemaError, match="not a hanet sequence file"):
        check_schema(window_schema(11, 15, 2), "sequence", "w.parquet")
    old = SEQUENCE_SCHEMA.with_metadata({b"hanet.kind": b"sequence", b"hanet.schema_version": b"0"})
    with pytest.raises(SchemaError, match="schema version '0'"):
        check_schema(old, "sequence", "old.parquet")
    with pytest.raises(SchemaError, match="found kind 'none'"):
        table_to_sequences(pa.table({"x": [1]}))


def test_codec_round_trips_fixed_and_ragged_columns() -> None:
    windows = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    column = fixed_list(windows, pa.float32())
    assert column.type == pa.list_(pa.float32(), 12) and len(column) == 2
    np.testing.assert_array_equal(from_fixed_list(column, (3, 4)), windows)
    np.testing.assert_array_equal(from_fixed_list(column.slice(1), (3, 4)), windows[1:])
    masks = [np.array([[True, False]]), None, np.zeros((2, 2), dtype=bool)]
    ragged = ragged_list(masks, pa.bool_())
    back = from_ragged_list(pa.chunked_array([ragged.slice(0, 2), ragged.slice(2)]))
    assert back[1] is None and back[0].tolist() == [True, False]
    assert back[2].dtype == bool and back[2].shape == (4,)


def test_window_table_and_batch_use_one_shape_per_dataset() -> None:
    model = ModelConfig(num_joints=15, joint_dim=2, interval=2, num_intervals=2)
    parts = [
        window_arrays(seq2d(12, "a"), model, "test"),
        window_arrays(seq2d(7, "b"), model, "train"),
    ]
    table = window_table(parts)
    assert table.schema.field("input").type == pa.list_(pa.float32(), 5 * 30)
    check_schema(table.schema, "window", "t")
    batch = window_batch(table)
    assert batch["input"].shape == (table.num_rows, 5, 30)
    assert batch["frame_mask"].shape == (table.num_rows, 5) and batch["key_mask"].dtype == bool
    np.testing.assert_array_equal(batch["input"][: len(parts[0]["start"])], parts[0]["input"])


def test_sequence_files_split_float_bytes_under_lz4_and_read_back_exactly() -> None:
    seq = seq2d(9, "a")
    seq.pred[3, 2] = np.nan  # a missing joint survives the byte split
    data = parquet_bytes(sequences_to_table([seq]))
    meta = pq.ParquetFile(pa.BufferReader(data)).metadata.row_group(0)
    columns = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert "BYTE_STREAM_SPLIT" in columns["pred.list.element"].encodings
    assert columns["pred.list.element"].compression == "LZ4"
    assert "BYTE_STREAM_SPLIT" not in columns["joint_mask.list.element"].encodings
    (back,) = table_to_sequences(pq.read_table(pa.BufferReader(data)))
    np.testing.assert_array_equal(back.pred, seq.pred)  # NaN where it was, bit for bit
    # Window shards are read every epoch: they keep zstd.
    model = ModelConfig(num_joints=15, joint_dim=2, interval=2, num_intervals=2)
    shard = parquet_bytes(window_table([window_arrays(seq2d(12, "b"), model, "train")]))
    assert pq.ParquetFile(pa.BufferReader(shard)).metadata.row_group(0).column(0).compression == (
        "ZSTD"
    )
