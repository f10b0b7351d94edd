"""An estimator's npz on its own (the published detections layout, no ground truth): read as
refinement input, and written back with the refined poses in place of the estimator's."""

from __future__ import annotations

import io

import numpy as np

from hanet.data.schema import Sequence, safe_name
from hanet.formats.common import (
    OutputFormatError,
    ReadError,
    frame_names,
    missing_joints,
    validated,
)
from hanet.formats.npz_layout import (
    POSE_KEYS,
    image_sizes,
    per_sequence,
    pose_array,
    pose_key,
    sequence_entries,
)
from hanet.formats.safe_npz import load_npz
from hanet.io.location import Location

__all__ = ["encode_detections_npz", "read_detections_npz"]


def read_detections_npz(
    location: Location,
    layout: str,
    representation: str,
    fps: float | None = None,
    image_size: tuple[int, int] | None = None,
    data: bytes | None = None,
) -> list[Sequence]:
    """An estimator npz on its own (no ground truth), as refinement input;
    ``data``: the file's content when the caller already read it (else it is read here).

    Raises:
        ReadError: naming the file, the sequence and the problem.
    """
    arrays = load_npz(location, data)
    key = pose_key(arrays, representation, location.uri)
    entries = sequence_entries(arrays, key, location.uri)
    if not entries:
        raise ReadError(f"{location.uri}: no sequences")
    names = per_sequence(arrays, "imgname", len(entries), location.uri)
    sizes = image_sizes(arrays, len(entries), location.uri)
    stem = safe_name(location.name.rsplit(".", 1)[0])
    sequences = []
    for index, flat in enumerate(entries):
        seq_id = f"{stem}_{index:05d}"
        where = f"{location.uri}: sequence {index} ({seq_id})"
        try:
            pred = pose_array(flat, layout, representation, where)
            missing = missing_joints(pred, representation)
            seq = Sequence(
                sequence_id=seq_id,
                layout=layout,
                representation=representation,
                pred=np.where(missing[..., None], np.nan, pred),
                joint_mask=~missing,
                image_size=sizes[index] if sizes is not None else image_size,
                fps=fps,
                split="infer",
                frame_names=frame_names(names[index] if names else None, len(pred), where),
                source=location.uri,
            )
            sequences.append(validated(seq, where))
        except (ValueError, TypeError) as err:  # ReadError is a ValueError
            raise (err if isinstance(err, ReadError) else ReadError(f"{where}: {err}")) from None
    return sequences


def _merged_poses(seq: Sequence, original: np.ndarray, where: str) -> np.ndarray:
    """Refined poses in the original entry's shape; missing joints keep the input's marker
    (NaN or -1), so a reader of the output sees them missing exactly as in the input."""
    original = np.asarray(original)
    if original.size != seq.pred.size or original.dtype == object:
        raise OutputFormatError(
            f"{where}: the stored poses {original.shape} do not map one-to-one onto the refined "
            f"{seq.pred.shape}; use output format 'parquet'"
        )
    stored = original.astype(np.float32).reshape(seq.pred.shape)
    merged = np.where(seq.observed()[..., None], seq.pred, stored)
    dtype = original.dtype if np.issubdtype(original.dtype, np.floating) else np.float32
    return merged.reshape(original.shape).astype(dtype)


def encode_detections_npz(
    location: Location, refined: list[Sequence], representation: str
) -> bytes:
    """The input detections npz with its pose entries replaced by the refined poses.

    Every other key (image names, image shapes, ...) is copied unchanged. Entries stay one per
    sequence, in the input's order, as an object array or a stacked array like the input.
    """
    arrays = load_npz(location)
    key = next((k for k in POSE_KEYS[representation] if k in arrays), None)
    if key is None:
        raise OutputFormatError(f"{location.uri}: no pose array to replace")
    entries = arrays[key]
    if len(entries) != len(refined):
        raise OutputFormatError(
            f"{location.uri}: {len(entries)} pose entries but {len(refined)} refined sequences"
        )
    merged = [
        _merged_poses(seq, entry, f"{location.uri}: sequence {i}")
        for i, (seq, entry) in enumerate(zip(refined, entries))
    ]
    if entries.dtype == object:
        out = np.empty(len(merged), dtype=object)
        for i, poses in enumerate(merged):
            out[i] = poses
    else:
        out = np.stack(merged)
    arrays = {**arrays, key: out}
    buffer = io.BytesIO()
    # Object arrays need pickle to be written; readers load them with safe_npz.load_npz.
    np.savez_compressed(buffer, allow_pickle=True, **arrays)
    return buffer.getvalue()
