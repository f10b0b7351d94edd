"""The Arrow side of the data: the two schemas every stage shares, and the one numpy <-> Arrow
codec for tensor columns.

Sequences have a different number of frames each, so their arrays are ``list<...>`` columns
holding the flattened ``[T, ...]`` array next to explicit shape columns (``num_frames``,
``num_joints``, ``joint_dim``). Windows all have one shape per dataset, so their arrays are
``fixed_size_list`` columns: a shard's column is one contiguous buffer, read back with a
reshape and no per-row work. Plain pyarrow, pandas or duckdb read both without Ray's tensor
extension type. The schema kind and version are written into the Parquet metadata and checked
on read. :func:`parquet_bytes` is the one way both are written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hanet.data.schema import SchemaError, Sequence
from hanet.skeletons import LAYOUTS, JointLayout, get_layout, layout_from_mapping

__all__ = [
    "SCHEMA_VERSION",
    "SEQUENCE_SCHEMA",
    "WINDOW_BATCH_COLUMNS",
    "check_schema",
    "fixed_list",
    "from_fixed_list",
    "from_ragged_list",
    "parquet_bytes",
    "parquet_options",
    "ragged_list",
    "sequences_to_table",
    "table_to_sequences",
    "window_batch",
    "window_schema",
    "window_table",
]

# 3: window arrays became fixed-size lists; 4: sequences gained ``skeleton``.
SCHEMA_VERSION = "4"
_VERSION_KEY = b"hanet.schema_version"
_KIND_KEY = b"hanet.kind"
# Declared (not built-in) layouts of a sequence table, by name: JSON of their declared form.
_LAYOUTS_KEY = b"hanet.layouts"
# Sequences per record batch: keeps each batch's int32 list offsets far from overflowing.
_BATCH_SEQUENCES = 256


# ----------------------------------------------------------------------------------------------
# The codec


def fixed_list(values: np.ndarray, value_type: pa.DataType) -> pa.FixedSizeListArray:
    """An array ``[N, ...]`` as a column of N fixed-size lists (each row flattened)."""
    values = np.ascontiguousarray(values)
    width = int(np.prod(values.shape[1:], dtype=np.int64))
    if values.size > np.iinfo(np.int32).max:
        raise SchemaError(f"{values.size} values in one column: write smaller shards")
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), type=value_type), width)


def from_fixed_list(column: pa.Array | pa.ChunkedArray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`fixed_list`: ``[N, *shape]`` (a view of the buffer where possible)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)  # flatten honours slicing
    return flat.reshape((len(column), *shape))


def ragged_list(values: list[np.ndarray | None], value_type: pa.DataType) -> pa.ListArray:
    """Arrays of differing sizes (or None) as a ``list<value_type>`` column, each flattened."""
    dtype = bool if pa.types.is_boolean(value_type) else value_type.to_pandas_dtype()
    flat = [None if v is None else np.asarray(v, dtype=dtype).reshape(-1) for v in values]
    return pa.array(flat, type=pa.list_(value_type))


def from_ragged_list(column: pa.Array | pa.ChunkedArray) -> list[np.ndarray | None]:
    """Inverse of :func:`ragged_list`: one flat numpy array (or None) per row."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return list(column.to_numpy(zero_copy_only=False))


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """How every hanet table is written.

    - Dictionary encoding for the text columns only. pyarrow's default tries a dictionary on
      every column; on pose values it rarely pays (they repeat only where windows overlap,
      which the codec finds anyway) and, for tables small enough that the dictionary never
      overflows, doubles the writing time and grows the file.
    - Window shards: zstd. They are written once and read every epoch, so size comes first.
    - Sequence files: byte-stream-split float columns under lz4. Refinement reads and writes
      one per object, so speed comes first: on files of a few short tracks this writes in
      half the time of zstd (and reads in two thirds), in files of the same size (splitting
      the floats' bytes lets lz4 find what zstd finds in the raw values). No statistics for
      their array columns: a minimum and maximum of all the values of a list column select
      nothing, and left out they save a tenth of the writing time.
    """
    text = [f.name for f in schema if pa.types.is_string(f.type)]
    kind = (schema.metadata or {}).get(_KIND_KEY)
    if kind != b"sequence":
        return {"compression": "zstd", "use_dictionary": text}
    floats = [
        f"{f.name}.list.element"  # the leaf column of a list
        for f in schema
        if pa.types.is_list(f.type) and pa.types.is_floating(f.type.value_type)
    ]
    scalars = [f.name for f in schema if not pa.types.is_list(f.type)]
    return {
        "compression": "lz4",
        "use_dictionary": text,
        "use_byte_stream_split": floats,
        "write_statistics": scalars,
    }


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as the bytes of one Parquet file, written with :func:`parquet_options`."""
    buffer = pa.BufferOutputStream()  # Arrow's own: no call back into Python per page
    pq.write_table(table, buffer, **parquet_options(table.schema))
    return buffer.getvalue().to_pybytes()


# ----------------------------------------------------------------------------------------------
# Schemas


def _metadata(kind: str, **extra: Any) -> dict[bytes, bytes]:
    meta = {_VERSION_KEY: SCHEMA_VERSION.encode(), _KIND_KEY: kind.encode()}
    meta.update({f"hanet.{k}".encode(): str(v).encode() for k, v in extra.items()})
    return meta


def _f32_list() -> pa.DataType:
    return pa.list_(pa.float32())


SEQUENCE_SCHEMA = pa.schema(
    [
        pa.field("sequence_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string()),
        pa.field("estimator", pa.string()),
        pa.field("split", pa.string()),
        pa.field("layout", pa.string(), nullable=False),
        pa.field("representation", pa.string(), nullable=False),
        pa.field("fps", pa.float32()),
        pa.field("num_frames", pa.int32(), nullable=False),
        pa.field("num_joints", pa.int32(), nullable=False),
        pa.field("joint_dim", pa.int32(), nullable=False),
        pa.field("image_width", pa.int32()),
        pa.field("image_height", pa.int32()),
        pa.field("pred", _f32_list(), nullable=False),  # [T, J, D]
        pa.field("gt", _f32_list()),  # [T, J, D]
        pa.field("gt_mask", pa.list_(pa.bool_())),  # [T]
        pa.field("gt_joint_mask", pa.list_(pa.bool_())),  # [T, J] labelled joints
        pa.field("joint_mask", pa.list_(pa.bool_())),  # [T, J]
        pa.field("confidence", _f32_list()),  # [T, J]
        pa.field("bbox", _f32_list()),  # [T, 4] x1, y1, x2, y2 (pixels)
        pa.field("frame_names", pa.list_(pa.string())),  # [T]
        pa.field("source", pa.string()),
        pa.field("skeleton", _f32_list()),  # [J, 3] rest bone offsets (metres)
    ],
    metadata=_metadata("sequence"),
)


def _window_shapes(frames: int, joints: int, dims: int) -> dict[str, tuple[tuple[int, ...], Any]]:
    """Window array columns: (per-row shape, Arrow value type)."""
    f32, boolean = pa.float32(), pa.bool_()
    return {
        "input": ((frames, joints * dims), f32),  # normalised
        "target": ((frames, joints * dims), f32),  # normalised, 0 where unknown
        "target_mask": ((frames, joints * dims), boolean),
        "frame_mask": ((frames,), boolean),  # real frame, not padding
        "key_mask": ((frames,), boolean),  # key frames
        "input_mask": ((frames, joints), boolean),  # observed joints
        "scale": ((dims,), f32),  # multiply to map back
        "input_offset": ((frames, dims), f32),  # add after scaling
        "target_offset": ((frames, dims), f32),
    }


_WINDOW_SCALARS = (
    ("sequence_id", pa.string()),
    ("split", pa.string()),
    ("start", pa.int32()),
    ("window_size", pa.int32()),
    ("num_joints", pa.int32()),
    ("joint_dim", pa.int32()),
)


def window_schema(frames: int, joints: int, dims: int) -> pa.Schema:
    """The window schema for windows of ``frames`` frames of ``joints`` x ``dims`` values."""
    fields = [pa.field(name, kind, nullable=False) for name, kind in _WINDOW_SCALARS]
    for name, (shape, kind) in _window_shapes(frames, joints, dims).items():
        width = int(np.prod(shape))
        fields.append(pa.field(name, pa.list_(kind, width), nullable=False))
    return pa.schema(fields, metadata=_metadata("window"))


def check_schema(schema: pa.Schema, kind: str, where: str) -> None:
    """Refuse Parquet written by another tool or another schema version."""
    metadata = schema.metadata or {}
    found_kind = metadata.get(_KIND_KEY, b"").decode()
    found_version = metadata.get(_VERSION_KEY, b"").decode()
    if found_kind != kind:
        raise SchemaError(f"{where}: not a hanet {kind} file (found kind {found_kind or 'none'!r})")
    if found_version != SCHEMA_VERSION:
        raise SchemaError(
            f"{where}: schema version {found_version!r}, this code reads {SCHEMA_VERSION!r}"
        )


# ----------------------------------------------------------------------------------------------
# Sequences


# Array columns: (numpy dtype, trailing shape given (J, D)).
_ARRAY_COLUMNS: dict[str, tuple[Any, Any]] = {
    "pred": (np.float32, lambda j, d: (j, d)),
    "gt": (np.float32, lambda j, d: (j, d)),
    "gt_mask": (bool, lambda j, d: ()),
    "gt_joint_mask": (bool, lambda j, d: (j,)),
    "joint_mask": (bool, lambda j, d: (j,)),
    "confidence": (np.float32, lambda j, d: (j,)),
    "bbox": (np.float32, lambda j, d: (4,)),
}
# Per-sequence (not per-frame) arrays: (numpy dtype, shape given (J, D)).
_SEQUENCE_ARRAYS: dict[str, tuple[Any, Any]] = {"skeleton": (np.float32, lambda j, d: (j, 3))}


def _scalars(seq: Sequence) -> dict[str, Any]:
    """The non-array values of one sequence's row."""
    width, height = seq.image_size if seq.image_size is not None else (None, None)
    return {
        "sequence_id": seq.sequence_id,
        "dataset": seq.dataset,
        "estimator": seq.estimator,
        "split": seq.split,
        "layout": get_layout(seq.layout).name,
        "representation": seq.representation,
        "fps": seq.fps,
        "num_frames": seq.num_frames,
        "num_joints": seq.num_joints,
        "joint_dim": seq.joint_dim,
        "image_width": width,
        "image_height": height,
        "source": seq.source,
    }


def _sequence_batch(sequences: list[Sequence]) -> pa.RecordBatch:
    rows = [_scalars(s) for s in sequences]
    columns: dict[str, pa.Array] = {}
    for name in SEQUENCE_SCHEMA.names:
        field_type = SEQUENCE_SCHEMA.field(name).type
        if name in _ARRAY_COLUMNS or name in _SEQUENCE_ARRAYS:
            values = [getattr(s, name) for s in sequences]
            columns[name] = ragged_list(values, field_type.value_type)
        elif name == "frame_names":
            names = [None if s.frame_names is None else list(s.frame_names) for s in sequences]
            columns[name] = pa.array(names, type=field_type)
        else:
            columns[name] = pa.array([r[name] for r in rows], type=field_type)
    return pa.RecordBatch.from_pydict(columns, schema=SEQUENCE_SCHEMA)


def sequences_to_table(sequences: Iterable[Sequence]) -> pa.Table:
    """Sequences as a :data:`SEQUENCE_SCHEMA` table (schema version in its metadata, and the
    full definition of every declared layout, so the file reads back without its YAML)."""
    sequences = list(sequences)
    declared: dict[str, JointLayout] = {}
    for seq in sequences:
        layout = get_layout(seq.layout)
        if LAYOUTS.get(layout.name) != layout:
            if declared.setdefault(layout.name, layout) != layout:
                raise SchemaError(f"two different layouts are both named {layout.name!r}")
    batches = [
        _sequence_batch(sequences[begin : begin + _BATCH_SEQUENCES])
        for begin in range(0, len(sequences), _BATCH_SEQUENCES)
    ]
    schema = SEQUENCE_SCHEMA
    if declared:
        text = json.dumps({name: layout.to_mapping() for name, layout in declared.items()})
        schema = schema.with_metadata({**schema.metadata, _LAYOUTS_KEY: text.encode()})
    return pa.Table.from_batches(batches, schema=SEQUENCE_SCHEMA).replace_schema_metadata(
        schema.metadata
    )


def _declared_layouts(schema: pa.Schema, where: str) -> dict[str, JointLayout]:
    text = (schema.metadata or {}).get(_LAYOUTS_KEY)
    if not text:
        return {}
    try:
        return {
            name: layout_from_mapping(spec, f"{where}: layout {name!r}")
            for name, spec in json.loads(text).items()
        }
    except (ValueError, AttributeError) as err:  # ConfigError is a ValueError
        raise SchemaError(f"{where}: unreadable layout definitions ({err})") from None


def _row_to_sequence(row: dict[str, Any]) -> Sequence:
    frames, joints, dims = int(row["num_frames"]), int(row["num_joints"]), int(row["joint_dim"])
    width, height = row.get("image_width"), row.get("image_height")
    names = row.get("frame_names")
    arrays = {}
    for name, (dtype, shape) in _ARRAY_COLUMNS.items():
        value = row.get(name)
        if value is not None:
            value = np.asarray(value, dtype=dtype).reshape((frames, *shape(joints, dims)))
        arrays[name] = value
    for name, (dtype, shape) in _SEQUENCE_ARRAYS.items():
        value = row.get(name)
        if value is not None:
            value = np.asarray(value, dtype=dtype).reshape(shape(joints, dims))
        arrays[name] = value
    if arrays["pred"] is None:
        raise SchemaError(f"sequence {row.get('sequence_id')!r}: no poses")
    return Sequence(
        sequence_id=str(row["sequence_id"]),
        layout=row["layout"] if isinstance(row["layout"], JointLayout) else str(row["layout"]),
        representation=str(row["representation"]),
        image_size=(int(width), int(height)) if width is not None and height is not None else None,
        fps=None if row.get("fps") is None else float(row["fps"]),
        dataset=row.get("dataset"),
        estimator=row.get("estimator"),
        split=row.get("split"),
        frame_names=None if names is None else [str(n) for n in names],
        source=row.get("source"),
        **arrays,
    )


def table_to_sequences(table: pa.Table, where: str = "<table>") -> list[Sequence]:
    """Inverse of :func:`sequences_to_table`; array columns go to numpy without Python lists.

    Raises:
        SchemaError: another kind or version of file, a missing column, or a wrong length;
            the message starts with ``where``.
    """
    check_schema(table.schema, "sequence", where)
    missing = [
        name
        for name in ("sequence_id", "layout", "representation", "pred")
        if name not in table.column_names
    ]
    if missing:
        raise SchemaError(f"{where}: missing column(s) {missing}")
    declared = _declared_layouts(table.schema, where)
    array_names = [*_ARRAY_COLUMNS, *_SEQUENCE_ARRAYS]
    scalars = table.select([n for n in table.column_names if n not in array_names]).to_pylist()
    arrays = {
        name: from_ragged_list(table.column(name))
        for name in array_names
        if name in table.column_names
    }
    sequences = []
    for index, row in enumerate(scalars):
        row.update({name: values[index] for name, values in arrays.items()})
        row["layout"] = declared.get(row["layout"], row["layout"])
        try:
            sequences.append(_row_to_sequence(row))
        except ValueError as err:  # a reshape that does not fit the stored shape
            raise SchemaError(
                f"{where}: sequence {row.get('sequence_id')!r}: arrays do not match "
                f"num_frames={row.get('num_frames')}, num_joints={row.get('num_joints')}, "
                f"joint_dim={row.get('joint_dim')} ({err})"
            ) from None
    return sequences


# ----------------------------------------------------------------------------------------------
# Windows

# Numeric window columns the trainer reads (strings cannot be batched); ``scale`` lets the
# augmentation work in isotropic units.
WINDOW_BATCH_COLUMNS = ("input", "target", "target_mask", "frame_mask", "key_mask", "scale")


def window_table(parts: list[dict[str, np.ndarray]]) -> pa.Table:
    """Stacked window arrays (:func:`hanet.data.windows.window_arrays`) as a window table."""
    frames, joints, dims = (int(parts[0][k][0]) for k in ("window_size", "num_joints", "joint_dim"))
    schema = window_schema(frames, joints, dims)
    shapes = _window_shapes(frames, joints, dims)
    columns: dict[str, pa.Array] = {}
    for name, kind in _WINDOW_SCALARS:
        columns[name] = pa.array(np.concatenate([part[name] for part in parts]), type=kind)
    for name, (_, kind) in shapes.items():
        columns[name] = fixed_list(np.concatenate([part[name] for part in parts]), kind)
    return pa.table(columns, schema=schema)


def window_batch(batch: pa.Table) -> dict[str, np.ndarray]:
    """The numeric columns of window rows as fixed-shape arrays Ray batches into tensors.

    Shape:
        input, target: ``[B, T, C]`` float32; target_mask: ``[B, T, C]`` bool;
        frame_mask, key_mask: ``[B, T]`` bool; scale: ``[B, D]`` float32.
    """
    rows = batch.num_rows
    frames = int(batch.column("window_size")[0].as_py()) if rows else 1
    out = {}
    for name in WINDOW_BATCH_COLUMNS:
        column = batch.column(name)
        width = column.type.list_size
        if name == "scale":
            shape: tuple[int, ...] = (width,)
        elif name in ("frame_mask", "key_mask"):
            shape = (frames,)
        else:
            shape = (frames, width // frames)
        out[name] = from_fixed_list(column, shape)
    return out
