"""The two Arrow schemas every stage shares: sequences and windows.

Arrays are stored as flat ``list<float32>`` columns next to explicit shape columns, so plain
pyarrow, pandas or duckdb can read the files without Ray's tensor extension type. The schema
version is written into the Parquet metadata and checked on read.

A *sequence* is one track of one video: the estimator's poses ``pred [T, J, D]``, ground truth
when known (possibly on some frames only, ``gt_mask [T]``), which input joints were observed
(``joint_mask [T, J]``), optional confidences, and for 2D the image size and per-frame bbox.

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

SCHEMA_VERSION = "1"
_VERSION_KEY = b"hanet.schema_version"
_KIND_KEY = b"hanet.kind"
REPRESENTATIONS = {"2D": 2, "3D": 3, "smpl": 6}
SPLITS = ("train", "val", "test", "infer")
# Ids become file names and Parquet values: keep them to a safe character set.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9][A-Za-z0-9_.\-]*)*$")


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
        pred, gt: [T, J, D]; gt_mask: [T]; joint_mask, confidence: [T, J]; bbox: [T, 4].
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

    def with_split(self, split: str) -> Sequence:
        return replace(self, split=split)


def check_id(value: str, what: str, where: str) -> None:
    """Ids become file names: refuse path-like or odd characters."""
    if not isinstance(value, str) or not _ID_PATTERN.match(value) or ".." in value:
        raise SchemaError(
            f"{where}: {what} {value!r} has characters outside [A-Za-z0-9_.-/] or a path-like "
            "component"
        )


def validate_sequence(seq: Sequence, expected_joints: int | None = None) -> Sequence:
    """Check shapes, values and ids; return the sequence with missing joints masked.

    Missing input joints (NaN, or a joint the source marked missing) are recorded in
    ``joint_mask`` and their coordinates set to 0, so no NaN travels further; downstream code
    fills them from neighbours before they reach features or metrics.

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
    pred = np.asarray(seq.pred)
    if pred.dtype == object or not np.issubdtype(pred.dtype, np.number):
        raise SchemaError(f"{where}: poses are not numeric (dtype {pred.dtype})")
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
        raise SchemaError(f"{where}: poses contain inf")
    joint_mask = np.ones((frames, joints), dtype=bool)
    if seq.joint_mask is not None:
        joint_mask = _shaped(seq.joint_mask, (frames, joints), "joint mask", where).astype(bool)
    joint_mask &= ~np.isnan(pred).any(axis=-1)
    pred = np.where(joint_mask[..., None], pred, 0.0).astype(np.float32)
    if not joint_mask.any():
        raise SchemaError(f"{where}: every joint of every frame is missing")

    gt, gt_mask = None, None
    if seq.gt is not None:
        gt = np.asarray(seq.gt)
        if gt.dtype == object or not np.issubdtype(gt.dtype, np.number):
            raise SchemaError(f"{where}: ground truth is not numeric (dtype {gt.dtype})")
        gt = _shaped(gt, pred.shape, "ground truth", where).astype(np.float32)
        if not np.isfinite(gt).all():
            raise SchemaError(f"{where}: ground truth contains NaN or inf")
        gt_mask = np.ones(frames, dtype=bool)
        if seq.gt_mask is not None:
            gt_mask = _shaped(seq.gt_mask, (frames,), "ground-truth mask", where).astype(bool)
    confidence = None
    if seq.confidence is not None:
        confidence = _shaped(seq.confidence, (frames, joints), "confidence", where)
        confidence = np.nan_to_num(confidence.astype(np.float32), nan=0.0)
    bbox = None
    if seq.bbox is not None:
        bbox = _shaped(seq.bbox, (frames, 4), "bbox", where).astype(np.float32)
        if not np.isfinite(bbox).all():
            raise SchemaError(f"{where}: bbox contains NaN or inf")
    if seq.representation == "2D" and seq.image_size is not None:
        width, height = seq.image_size
        if width <= 0 or height <= 0:
            raise SchemaError(f"{where}: image size {seq.image_size} must be positive")
    if seq.frame_names is not None and len(seq.frame_names) != frames:
        raise SchemaError(f"{where}: {len(seq.frame_names)} frame names for {frames} frames")
    if seq.split is not None and seq.split not in SPLITS:
        raise SchemaError(f"{where}: split {seq.split!r} is not one of {list(SPLITS)}")
    return replace(
        seq,
        pred=pred,
        gt=gt,
        gt_mask=gt_mask,
        joint_mask=joint_mask,
        confidence=confidence,
        bbox=bbox,
    )


def _shaped(value: Any, shape: tuple[int, ...], what: str, where: str) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != tuple(shape):
        raise SchemaError(f"{where}: {what} has shape {array.shape}, expected {tuple(shape)}")
    return array


def _flat(array: np.ndarray | None, dtype: Any) -> list | None:
    return None if array is None else np.asarray(array, dtype=dtype).reshape(-1).tolist()


def sequence_to_row(seq: Sequence) -> dict[str, Any]:
    """One Arrow row (plain Python values) for :data:`SEQUENCE_SCHEMA`."""
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
        "pred": _flat(seq.pred, np.float32),
        "gt": _flat(seq.gt, np.float32),
        "gt_mask": _flat(seq.gt_mask, bool),
        "joint_mask": _flat(seq.joint_mask, bool),
        "confidence": _flat(seq.confidence, np.float32),
        "bbox": _flat(seq.bbox, np.float32),
        "frame_names": list(seq.frame_names) if seq.frame_names is not None else None,
        "source": seq.source,
    }


def sequences_to_table(sequences: Iterable[Sequence]) -> pa.Table:
    rows = [sequence_to_row(seq) for seq in sequences]
    return pa.Table.from_pylist(rows, schema=SEQUENCE_SCHEMA)


def _array(value: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray | None:
    if value is None:
        return None
    return np.asarray(value, dtype=dtype).reshape(shape)


def row_to_sequence(row: dict[str, Any]) -> Sequence:
    """Inverse of :func:`sequence_to_row` (accepts numpy arrays or lists as values)."""
    frames, joints, dims = int(row["num_frames"]), int(row["num_joints"]), int(row["joint_dim"])
    width, height = row.get("image_width"), row.get("image_height")
    names = row.get("frame_names")
    return Sequence(
        sequence_id=str(row["sequence_id"]),
        layout=str(row["layout"]),
        representation=str(row["representation"]),
        pred=_array(row["pred"], (frames, joints, dims), np.float32),
        gt=_array(row.get("gt"), (frames, joints, dims), np.float32),
        gt_mask=_array(row.get("gt_mask"), (frames,), bool),
        joint_mask=_array(row.get("joint_mask"), (frames, joints), bool),
        confidence=_array(row.get("confidence"), (frames, joints), np.float32),
        bbox=_array(row.get("bbox"), (frames, 4), np.float32),
        image_size=(int(width), int(height)) if width is not None and height is not None else None,
        fps=None if row.get("fps") is None else float(row["fps"]),
        dataset=row.get("dataset"),
        estimator=row.get("estimator"),
        split=row.get("split"),
        frame_names=None if names is None else [str(n) for n in names],
        source=row.get("source"),
    )


def table_to_sequences(table: pa.Table) -> list[Sequence]:
    check_schema(table.schema, "sequence", "<table>")
    return [row_to_sequence(row) for row in table.to_pylist()]


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
