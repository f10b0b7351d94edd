"""The two Arrow schemas every stage shares: sequences and windows.

Arrays are stored as flat ``list<float32>`` columns next to explicit shape columns, so plain
pyarrow, pandas or duckdb can read the files without Ray's tensor extension type. The schema
version is written into the Parquet metadata and checked on read.

A *sequence* is one track of one video: the estimator's poses ``pred [T, J, D]``, ground truth
when known (possibly on some frames only, ``gt_mask [T]``, and on some joints only,
``gt_joint_mask [T, J]``), which input joints were observed (``joint_mask [T, J]``), optional
confidences, and for 2D the image size and per-frame bbox.

A *window* is ``T_w = N * Q + 1`` frames of one sequence, normalised for the model (2D: x / W,
y / H as published; 3D: root-relative metres, the root being the layout's root joints), with
the masks the loss needs and the normalisation needed to map back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa

from hanet.skeletons import get_layout

# 2: sequences gained ``gt_joint_mask``; ids may no longer contain "/".
SCHEMA_VERSION = "2"
_VERSION_KEY = b"hanet.schema_version"
_KIND_KEY = b"hanet.kind"
REPRESENTATIONS = {"2D": 2, "3D": 3, "smpl": 6}
SPLITS = ("train", "val", "test", "infer")
# Ids become file names and Parquet values: one safe path component, never a path.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_ID_MAX_LENGTH = 200  # leaves room for suffixes within the usual 255-byte file-name limit


class SchemaError(ValueError):
    """A sequence or window violates the schema; the message names the source and sequence."""


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
    ],
    metadata={_VERSION_KEY: SCHEMA_VERSION.encode(), _KIND_KEY: b"sequence"},
)

WINDOW_SCHEMA = pa.schema(
    [
        pa.field("sequence_id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("start", pa.int32(), nullable=False),
        pa.field("window_size", pa.int32(), nullable=False),
        pa.field("num_joints", pa.int32(), nullable=False),
        pa.field("joint_dim", pa.int32(), nullable=False),
        pa.field("input", _f32_list(), nullable=False),  # [T_w, J * D] normalised
        pa.field("target", _f32_list(), nullable=False),  # [T_w, J * D] normalised, 0 if unknown
        pa.field("target_mask", pa.list_(pa.bool_()), nullable=False),  # [T_w, J * D]
        pa.field("frame_mask", pa.list_(pa.bool_()), nullable=False),  # [T_w] real, not padding
        pa.field("key_mask", pa.list_(pa.bool_()), nullable=False),  # [T_w] key frames
        pa.field("input_mask", pa.list_(pa.bool_()), nullable=False),  # [T_w, J] observed joints
        pa.field("scale", _f32_list(), nullable=False),  # [D] multiply to map back
        pa.field("input_offset", _f32_list(), nullable=False),  # [T_w, D] add after scaling
        pa.field("target_offset", _f32_list(), nullable=False),  # [T_w, D]
    ],
    metadata={_VERSION_KEY: SCHEMA_VERSION.encode(), _KIND_KEY: b"window"},
)

# Numeric window columns the trainer feeds to torch (strings cannot be batched).
WINDOW_TENSOR_COLUMNS = ("input", "target", "target_mask", "frame_mask", "key_mask")


@dataclass
class Sequence:
    """One track of estimator output, with ground truth when known.

    Shape:
        pred, gt: [T, J, D]; gt_mask: [T]; joint_mask, gt_joint_mask, confidence: [T, J];
        bbox: [T, 4].
    """

    sequence_id: str
    layout: str
    representation: str
    pred: np.ndarray
    gt: np.ndarray | None = None
    gt_mask: np.ndarray | None = None
    joint_mask: np.ndarray | None = None
    confidence: np.ndarray | None = None
    bbox: np.ndarray | None = None
    image_size: tuple[int, int] | None = None  # (width, height)
    fps: float | None = None
    dataset: str | None = None
    estimator: str | None = None
    split: str | None = None
    frame_names: list[str] | None = None
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Last, so positional construction written before it existed keeps working.
    gt_joint_mask: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.pred.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.pred.shape[1])

    @property
    def joint_dim(self) -> int:
        return int(self.pred.shape[2])

    def where(self) -> str:
        """``source, sequence id`` for error messages."""
        return f"{self.source or '<memory>'}: sequence {self.sequence_id!r}"

    def observed(self) -> np.ndarray:
        """[T, J] bool: joints the estimator really produced."""
        if self.joint_mask is None:
            return np.ones(self.pred.shape[:2], dtype=bool)
        return self.joint_mask

    def labelled(self) -> np.ndarray:
        """[T] bool: frames that carry ground truth."""
        if self.gt is None:
            return np.zeros(self.num_frames, dtype=bool)
        if self.gt_mask is None:
            return np.ones(self.num_frames, dtype=bool)
        return self.gt_mask

    def labelled_joints(self) -> np.ndarray:
        """[T, J] bool: joints whose ground truth is known (labelled frame and joint)."""
        mask = np.broadcast_to(self.labelled()[:, None], self.pred.shape[:2]).copy()
        if self.gt_joint_mask is not None:
            mask &= np.asarray(self.gt_joint_mask, dtype=bool)
        return mask

    def with_split(self, split: str) -> Sequence:
        return replace(self, split=split)


def check_id(value: str, what: str, where: str) -> None:
    """Ids become file names: refuse anything but one plain path component.

    Raises:
        SchemaError: empty, too long, ``/`` or ``\\``, ``..``, a leading dot or dash, or other
            characters outside ``[A-Za-z0-9_.-]``.
    """
    if not isinstance(value, str) or not _ID_PATTERN.match(value) or ".." in value:
        raise SchemaError(
            f"{where}: {what} {value!r} is path-like or has characters outside [A-Za-z0-9_.-] "
            "(it must be one plain file-name component starting with a letter or digit)"
        )
    if len(value) > _ID_MAX_LENGTH:
        raise SchemaError(
            f"{where}: {what} is {len(value)} characters long (at most {_ID_MAX_LENGTH})"
        )


def _numeric(value: Any, what: str, where: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise SchemaError(f"{where}: {what} must be numeric, not dtype {array.dtype}")
    return array


def validate_sequence(seq: Sequence, expected_joints: int | None = None) -> Sequence:
    """Check shapes, values and ids; return the sequence with missing joints masked.

    Missing input joints (NaN, or a joint the source marked missing) are recorded in
    ``joint_mask``; NaN coordinates become 0, so no NaN travels further, and finite values
    under the mask are kept (a refined sequence carries the model's estimate there). The mask
    is what counts: downstream code fills masked joints from neighbours before they reach
    features and leaves them out of metrics. Likewise unknown ground truth (NaN) is recorded in
    ``gt_joint_mask``. Infinite values are errors: no source uses them to mean "missing", so
    they signal a broken file.

    Raises:
        SchemaError: naming the source, the sequence and the problem.
    """
    where = seq.where()
    check_id(seq.sequence_id, "sequence id", where)
    try:
        layout = get_layout(seq.layout)
    except ValueError as err:
        raise SchemaError(f"{where}: {err}") from None
    if seq.representation not in REPRESENTATIONS:
        raise SchemaError(
            f"{where}: representation {seq.representation!r} is not one of {list(REPRESENTATIONS)}"
        )
    pred = _numeric(seq.pred, "poses", where)
    if pred.ndim != 3:
        raise SchemaError(f"{where}: poses must be [frames, joints, dims], got shape {pred.shape}")
    frames, joints, dims = pred.shape
    if frames == 0:
        raise SchemaError(f"{where}: empty sequence (0 frames)")
    if joints != layout.num_joints:
        raise SchemaError(
            f"{where}: {joints} joints, but layout {layout.name!r} has {layout.num_joints}"
        )
    if expected_joints is not None and joints != expected_joints:
        raise SchemaError(f"{where}: {joints} joints, but {expected_joints} are expected")
    if dims != REPRESENTATIONS[seq.representation]:
        raise SchemaError(
            f"{where}: {dims} values per joint, but {seq.representation} needs "
            f"{REPRESENTATIONS[seq.representation]}"
        )
    pred = pred.astype(np.float32)
    if np.isinf(pred).any():
        raise SchemaError(f"{where}: poses contain inf (frame {_first_bad_frame(pred)})")
    joint_mask = np.ones((frames, joints), dtype=bool)
    if seq.joint_mask is not None:
        joint_mask = _shaped(seq.joint_mask, (frames, joints), "joint mask", where).astype(bool)
    joint_mask &= ~np.isnan(pred).any(axis=-1)
    pred = np.where(np.isnan(pred), 0.0, pred).astype(np.float32)
    if not joint_mask.any():
        raise SchemaError(f"{where}: every joint of every frame is missing")

    gt, gt_mask, gt_joint_mask = None, None, None
    if seq.gt is not None:
        gt = _shaped(_numeric(seq.gt, "ground truth", where), pred.shape, "ground truth", where)
        gt = gt.astype(np.float32)
        if np.isinf(gt).any():
            raise SchemaError(f"{where}: ground truth contains inf (frame {_first_bad_frame(gt)})")
        gt_mask = np.ones(frames, dtype=bool)
        if seq.gt_mask is not None:
            gt_mask = _shaped(seq.gt_mask, (frames,), "ground-truth mask", where).astype(bool)
        gt_joint_mask = np.ones((frames, joints), dtype=bool)
        known = seq.gt_joint_mask
        if known is not None:
            gt_joint_mask = _shaped(known, (frames, joints), "ground-truth joint mask", where)
            gt_joint_mask = gt_joint_mask.astype(bool)
        gt_joint_mask &= ~np.isnan(gt).any(axis=-1)
        gt_joint_mask &= gt_mask[:, None]
        gt_mask &= gt_joint_mask.any(axis=1)
        gt = np.where(np.isnan(gt), 0.0, gt).astype(np.float32)
    confidence = None
    if seq.confidence is not None:
        confidence = _shaped(
            _numeric(seq.confidence, "confidence", where), (frames, joints), "confidence", where
        )
        confidence = np.nan_to_num(confidence.astype(np.float32), nan=0.0)
    bbox = None
    if seq.bbox is not None:
        bbox = _shaped(_numeric(seq.bbox, "bbox", where), (frames, 4), "bbox", where)
        bbox = bbox.astype(np.float32)
        if not np.isfinite(bbox).all():
            raise SchemaError(f"{where}: bbox contains NaN or inf")
    image_size = None
    if seq.image_size is not None:
        try:
            width, height = (int(v) for v in seq.image_size)
        except (TypeError, ValueError):
            raise SchemaError(
                f"{where}: image size {seq.image_size!r} is not (width, height)"
            ) from None
        if width <= 0 or height <= 0:
            raise SchemaError(f"{where}: image size {seq.image_size} must be positive")
        image_size = (width, height)
    if seq.fps is not None and not (np.isfinite(seq.fps) and seq.fps > 0):
        raise SchemaError(f"{where}: fps {seq.fps} must be a positive number")
    frame_names = None
    if seq.frame_names is not None:
        frame_names = [str(name) for name in seq.frame_names]
        if len(frame_names) != frames:
            raise SchemaError(f"{where}: {len(frame_names)} frame names for {frames} frames")
    if seq.split is not None and seq.split not in SPLITS:
        raise SchemaError(f"{where}: split {seq.split!r} is not one of {list(SPLITS)}")
    return replace(
        seq,
        pred=pred,
        gt=gt,
        gt_mask=gt_mask,
        gt_joint_mask=gt_joint_mask,
        joint_mask=joint_mask,
        confidence=confidence,
        bbox=bbox,
        image_size=image_size,
        frame_names=frame_names,
    )


def _first_bad_frame(array: np.ndarray) -> int:
    return int(np.flatnonzero(np.isinf(array).reshape(len(array), -1).any(axis=1))[0])


def _shaped(value: Any, shape: tuple[int, ...], what: str, where: str) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != tuple(shape):
        raise SchemaError(f"{where}: {what} has shape {array.shape}, expected {tuple(shape)}")
    return array


def _flat(array: np.ndarray | None, dtype: Any) -> list | None:
    return None if array is None else np.asarray(array, dtype=dtype).reshape(-1).tolist()


def sequence_to_row(seq: Sequence) -> dict[str, Any]:
    """One Arrow row (plain Python values) for :data:`SEQUENCE_SCHEMA`."""
    row = sequence_to_row_scalars(seq)
    row.update(
        {name: _flat(getattr(seq, name), dtype) for name, (dtype, _) in _ARRAY_COLUMNS.items()}
    )
    row["frame_names"] = list(seq.frame_names) if seq.frame_names is not None else None
    return row


# Array columns: (Sequence attribute, numpy dtype, trailing shape given (J, D)).
_ARRAY_COLUMNS: dict[str, tuple[Any, Any]] = {
    "pred": (np.float32, lambda j, d: (j, d)),
    "gt": (np.float32, lambda j, d: (j, d)),
    "gt_mask": (bool, lambda j, d: ()),
    "gt_joint_mask": (bool, lambda j, d: (j,)),
    "joint_mask": (bool, lambda j, d: (j,)),
    "confidence": (np.float32, lambda j, d: (j,)),
    "bbox": (np.float32, lambda j, d: (4,)),
}
# Sequences per record batch: keeps each batch's int32 list offsets far from overflowing.
_BATCH_SEQUENCES = 256


def _list_array(values: list[np.ndarray | None], field_type: pa.DataType) -> pa.Array:
    """A ``list<...>`` column built from numpy in one copy (no Python floats in between)."""
    value_type = field_type.value_type
    dtype = bool if pa.types.is_boolean(value_type) else np.float32
    sizes = np.array([0 if v is None else np.asarray(v).size for v in values], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    if offsets[-1] > np.iinfo(np.int32).max:
        raise SchemaError(f"{offsets[-1]} values in one batch overflow a list column")
    present = [np.asarray(v, dtype=dtype).reshape(-1) for v in values if v is not None]
    flat = np.concatenate(present) if present else np.zeros(0, dtype=dtype)
    nulls = np.array([v is None for v in values], dtype=bool)
    return pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32)),
        pa.array(flat, type=value_type),
        type=field_type,
        mask=pa.array(nulls) if nulls.any() else None,
    )


def _sequence_batch(sequences: list[Sequence]) -> pa.RecordBatch:
    columns: dict[str, pa.Array] = {}
    rows = [sequence_to_row_scalars(s) for s in sequences]
    for name in SEQUENCE_SCHEMA.names:
        field_type = SEQUENCE_SCHEMA.field(name).type
        if name in _ARRAY_COLUMNS:
            columns[name] = _list_array([getattr(s, name) for s in sequences], field_type)
        elif name == "frame_names":
            names = [None if s.frame_names is None else list(s.frame_names) for s in sequences]
            columns[name] = pa.array(names, type=field_type)
        else:
            columns[name] = pa.array([r[name] for r in rows], type=field_type)
    return pa.RecordBatch.from_pydict(columns, schema=SEQUENCE_SCHEMA)


def sequence_to_row_scalars(seq: Sequence) -> dict[str, Any]:
    """The non-array values of one sequence's row."""
    width, height = seq.image_size if seq.image_size is not None else (None, None)
    return {
        "sequence_id": seq.sequence_id,
        "dataset": seq.dataset,
        "estimator": seq.estimator,
        "split": seq.split,
        "layout": seq.layout,
        "representation": seq.representation,
        "fps": seq.fps,
        "num_frames": seq.num_frames,
        "num_joints": seq.num_joints,
        "joint_dim": seq.joint_dim,
        "image_width": width,
        "image_height": height,
        "source": seq.source,
    }


def sequences_to_table(sequences: Iterable[Sequence]) -> pa.Table:
    """Sequences as a :data:`SEQUENCE_SCHEMA` table (schema version in its metadata)."""
    sequences = list(sequences)
    batches = [
        _sequence_batch(sequences[begin : begin + _BATCH_SEQUENCES])
        for begin in range(0, len(sequences), _BATCH_SEQUENCES)
    ]
    return pa.Table.from_batches(batches, schema=SEQUENCE_SCHEMA)


def _array(value: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray | None:
    if value is None:
        return None
    return np.asarray(value, dtype=dtype).reshape(shape)


def row_to_sequence(row: dict[str, Any]) -> Sequence:
    """Inverse of :func:`sequence_to_row` (accepts numpy arrays or lists as values)."""
    frames, joints, dims = int(row["num_frames"]), int(row["num_joints"]), int(row["joint_dim"])
    width, height = row.get("image_width"), row.get("image_height")
    names = row.get("frame_names")
    arrays = {
        name: _array(row.get(name), (frames, *shape(joints, dims)), dtype)
        for name, (dtype, shape) in _ARRAY_COLUMNS.items()
    }
    if arrays["pred"] is None:
        raise SchemaError(f"sequence {row.get('sequence_id')!r}: no poses")
    return Sequence(
        sequence_id=str(row["sequence_id"]),
        layout=str(row["layout"]),
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


def _list_values(column: pa.ChunkedArray) -> list[np.ndarray | None]:
    """Each row of a ``list<...>`` column as a flat numpy array (None for null)."""
    array = column.combine_chunks()
    if isinstance(array, pa.ChunkedArray):  # pragma: no cover - older pyarrow
        array = pa.concat_arrays(array.chunks)
    offsets = array.offsets.to_numpy()
    values = array.values.to_numpy(zero_copy_only=False)
    nulls = array.is_null().to_numpy(zero_copy_only=False)
    return [None if nulls[i] else values[offsets[i] : offsets[i + 1]] for i in range(len(array))]


def table_to_sequences(table: pa.Table) -> list[Sequence]:
    """Inverse of :func:`sequences_to_table`; array columns go to numpy without Python lists.

    Raises:
        SchemaError: another kind or version of file, a missing column, or a wrong length.
    """
    check_schema(table.schema, "sequence", "<table>")
    missing = [
        name
        for name in ("sequence_id", "layout", "representation", "pred")
        if name not in table.column_names
    ]
    if missing:
        raise SchemaError(f"<table>: missing column(s) {missing}")
    scalars = table.select([n for n in table.column_names if n not in _ARRAY_COLUMNS]).to_pylist()
    arrays = {
        name: _list_values(table.column(name))
        for name in _ARRAY_COLUMNS
        if name in table.column_names
    }
    sequences = []
    for index, row in enumerate(scalars):
        row.update({name: values[index] for name, values in arrays.items()})
        try:
            sequences.append(row_to_sequence(row))
        except ValueError as err:  # a reshape that does not fit the stored shape
            raise SchemaError(
                f"sequence {row.get('sequence_id')!r}: arrays do not match num_frames="
                f"{row.get('num_frames')}, num_joints={row.get('num_joints')}, "
                f"joint_dim={row.get('joint_dim')} ({err})"
            ) from None
    return sequences


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
