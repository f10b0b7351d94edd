"""Readers: the published npz layout, per-video keypoint JSON and our sequence Parquet.

Every reader returns :class:`hanet.schema.Sequence` objects that have passed
:func:`hanet.schema.validate_sequence`, and every error names the file, the sequence and the
problem. Files are read through :mod:`hanet.storage`, so local paths and ``s3://`` URIs work
alike.

The published files keep one object-array entry per sequence, which numpy can only store as a
pickle. Unpickling an untrusted file can run code, so :func:`load_npz` parses the archive
itself and unpickles with an allow-list of numpy array reconstruction, strings and numbers.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from hanet.schema import (
    REPRESENTATIONS,
    SchemaError,
    Sequence,
    check_schema,
    table_to_sequences,
    validate_sequence,
)
from hanet.skeletons import H36M_TO_LSP14, get_layout
from hanet.storage import Location, is_dir, list_files, read_bytes

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".parquet", ".npz", ".json")


class ReadError(ValueError):
    """An input file cannot be read or does not match what it claims to be."""


# ----------------------------------------------------------------------------------------------
# Safe npz loading


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class UnsafePickleError(ReadError):
    """The file's pickle asks for something other than numpy arrays, strings and numbers."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, where: str) -> None:
        super().__init__(file, encoding="latin1")
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self._where}: refused to unpickle {module}.{name}; only numpy arrays, strings and "
            "numbers are allowed in a pose file"
        )


def _check_plain(value: Any, where: str) -> None:
    """After unpickling, only arrays of numbers or strings (possibly nested) may remain."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            for item in value.flat:
                _check_plain(item, where)
        return
    if isinstance(value, (str, bytes, int, float, np.generic)) or value is None:
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(item, where)
        return
    raise UnsafePickleError(f"{where}: unexpected {type(value).__name__} inside an object array")


def load_npz(location: Location) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` without trusting its pickles.

    Raises:
        ReadError: unreadable or truncated archive, or a member that is not an array.
        UnsafePickleError: a pickle that asks for anything beyond numpy arrays and plain values.
    """
    where = location.uri
    try:
        data = read_bytes(location)
    except (OSError, FileNotFoundError) as err:
        raise ReadError(f"{where}: cannot read ({err})") from err
    arrays: dict[str, np.ndarray] = {}
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.namelist()
        for member in members:
            key = member[:-4] if member.endswith(".npy") else member
            arrays[key] = _load_npy(archive.read(member), f"{where}[{key}]")
    except UnsafePickleError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError) as err:
        raise ReadError(f"{where}: not a readable npz archive ({err})") from err
    if not arrays:
        raise ReadError(f"{where}: the npz archive holds no arrays")
    return arrays


def _load_npy(raw: bytes, where: str) -> np.ndarray:
    stream = io.BytesIO(raw)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:  # pragma: no cover - numpy writes only these
        raise ReadError(f"{where}: unsupported .npy version {version}")
    if not dtype.hasobject:
        stream.seek(0)
        return np.lib.format.read_array(stream, allow_pickle=False)
    try:
        value = _RestrictedUnpickler(stream, where).load()
    except UnsafePickleError:
        raise
    except Exception as err:  # a broken pickle stream raises many types
        raise ReadError(f"{where}: corrupt object array ({type(err).__name__}: {err})") from err
    if not isinstance(value, np.ndarray):
        raise UnsafePickleError(f"{where}: the pickle holds a {type(value).__name__}, not an array")
    _check_plain(value, where)
    if value.shape != tuple(shape):
        raise ReadError(f"{where}: array shape {value.shape} differs from its header {shape}")
    return value


# ----------------------------------------------------------------------------------------------
# The published layout: groundtruth_poses/<ds>/<ds>_gt_<split>.npz + detected_poses/<ds>/<est>/


@dataclass(frozen=True)
class PublishedPair:
    """One ground-truth file and the matching estimator file for a dataset split."""

    dataset: str
    estimator: str
    split: str
    gt: Location
    detected: Location


def find_published_root(location: Location) -> Location:
    """The folder holding ``groundtruth_poses/`` and ``detected_poses/`` (or its ``data/``)."""
    for candidate in (location, location.join("data")):
        if is_dir(candidate.join("detected_poses")):
            return candidate
    raise ReadError(
        f"{location.uri}: no detected_poses/ folder here or under data/ (expected the published "
        "layout groundtruth_poses/<dataset>/ and detected_poses/<dataset>/<estimator>/)"
    )


def find_published_pairs(
    location: Location, dataset: str | None = None, estimator: str | None = None
) -> list[PublishedPair]:
    """Every (dataset, estimator, split) pair under a published-layout root.

    ``dataset``/``estimator`` of None take every one found. A detections file without its
    ground-truth partner is still paired (with the ground-truth path it should have), so
    reading the pair reports the missing file; inference-only data belongs in
    :func:`read_detections_npz`.

    Raises:
        ReadError: no published root here, or no pair for ``dataset``/``estimator``.
    """
    root = find_published_root(location)
    detected_root = root.join("detected_poses")
    pairs = []
    for det in list_files(detected_root, suffixes=(".npz",)):
        relative = PurePosixPath(det.path).relative_to(PurePosixPath(detected_root.path))
        if len(relative.parts) != 3:
            continue
        ds, est, name = relative.parts
        if (dataset and ds != dataset) or (estimator and est != estimator):
            continue
        prefix = f"{ds}_{est}_"
        if not name.startswith(prefix) or not name.endswith(".npz"):
            log.warning("%s: name does not follow <ds>_<estimator>_<split>.npz; skipped", det.uri)
            continue
        split = name[len(prefix) : -len(".npz")]
        gt = root.join("groundtruth_poses", ds, f"{ds}_gt_{split}.npz")
        pairs.append(PublishedPair(ds, est, split, gt, det))
    if not pairs:
        wanted = f"dataset={dataset!r}, estimator={estimator!r}"
        raise ReadError(f"{root.uri}: no detected_poses/<ds>/<estimator>/*.npz for {wanted}")
    return sorted(pairs, key=lambda p: (p.dataset, p.estimator, p.split))


def _entries(arrays: dict[str, np.ndarray], key: str, where: str) -> list[np.ndarray]:
    """One entry per sequence, whether stored as an object array or a stacked array."""
    if key not in arrays:
        raise ReadError(f"{where}: missing key {key!r} (has {sorted(arrays)})")
    value = arrays[key]
    if value.ndim == 0:
        raise ReadError(f"{where}: key {key!r} is a scalar, expected one entry per sequence")
    return [np.asarray(item) for item in value]


# Keys of published npz files that hold the poses, by representation.
POSE_KEYS = {"2D": ("joints_2d",), "3D": ("joints_3d",), "smpl": ("pose",)}


def _pose_key(arrays: dict[str, np.ndarray], representation: str, where: str) -> str:
    candidates = POSE_KEYS[representation]
    for key in candidates:
        if key in arrays:
            return key
    raise ReadError(f"{where}: no {' or '.join(candidates)} array for {representation} data")


def _axis_angle_to_6d(axis_angle: np.ndarray) -> np.ndarray:
    """[..., 3] axis-angle -> [..., 6]: the first two columns of the rotation matrix."""
    theta = np.linalg.norm(axis_angle, axis=-1, keepdims=True)
    axis = axis_angle / np.maximum(theta, 1e-8)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*x.shape, 3, 3)
    sin, cos = np.sin(theta)[..., None], np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), k.shape)
    rot = eye + sin * k + (1 - cos) * (k @ k)
    # First two columns, [R00, R10, R20, R01, R11, R21] (hanet.metrics' default 6D layout).
    return np.concatenate([rot[..., :, 0], rot[..., :, 1]], axis=-1)


def _poses(flat: np.ndarray, layout_name: str, representation: str, where: str) -> np.ndarray:
    """Reshape a stored [T, J*D] pose array to [T, J, D] in the named layout."""
    layout = get_layout(layout_name)
    dims = REPRESENTATIONS[representation]
    array = np.asarray(flat)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise ReadError(f"{where}: poses are not numeric (dtype {array.dtype})")
    array = array.astype(np.float64)
    if array.size == 0:
        raise ReadError(f"{where}: empty sequence (0 frames)")
    if array.ndim == 1:
        array = array[None]
    if array.ndim == 2:
        if representation == "smpl" and array.shape[1] == layout.num_joints * 3:
            return _axis_angle_to_6d(array.reshape(len(array), -1, 3)).astype(np.float32)
        stored_dims = 3 if representation == "3D" else dims
        if array.shape[1] % stored_dims:
            raise ReadError(f"{where}: {array.shape[1]} values per frame is not J x {stored_dims}")
        array = array.reshape(len(array), -1, stored_dims)
    if array.ndim != 3:
        raise ReadError(f"{where}: poses have shape {array.shape}, expected [frames, J*D]")
    joints = array.shape[1]
    # 3DPW stores 17 H36M-order joints; the published loader keeps 14 in LSP order.
    if layout.name == "lsp14" and joints == 17:
        array = array[:, list(H36M_TO_LSP14)]
    elif joints != layout.num_joints:
        raise ReadError(
            f"{where}: {joints} joints per frame, but layout {layout.name!r} has "
            f"{layout.num_joints} (wrong joint count for this configuration?)"
        )
    return array.astype(np.float32)


def _validated(seq: Sequence, where: str | None = None) -> Sequence:
    """validate_sequence, its error as a ReadError that starts with ``where`` (file, sequence
    number and id) when given, so every reader's messages look alike."""
    try:
        return validate_sequence(seq)
    except SchemaError as err:
        message = str(err)
        if where is not None and message.startswith(seq.where()):
            message = where + message[len(seq.where()) :]
        raise ReadError(message) from None


def _missing(poses: np.ndarray, representation: str) -> np.ndarray:
    """[T, J] True where the estimator marked a joint missing (NaN, or all -1 in 2D)."""
    missing = np.isnan(poses).any(axis=-1)
    if representation == "2D":
        missing |= (poses == -1).all(axis=-1)
    return missing


def _frame_names(entry: np.ndarray | None, frames: int, where: str) -> list[str] | None:
    if entry is None:
        return None
    # Files written under Python 2 hold bytes; str(b"x") would give "b'x'".
    names = [
        n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)
        for n in np.asarray(entry).reshape(-1)
    ]
    if len(names) != frames:
        raise ReadError(f"{where}: {len(names)} image names for {frames} frames")
    return names


def _per_sequence(
    arrays: dict[str, np.ndarray], key: str, count: int, where: str
) -> list[np.ndarray] | None:
    """A key's entries, one per sequence, or None when the file lacks the key.

    Raises:
        ReadError: the key holds another number of entries than there are sequences.
    """
    if key not in arrays:
        return None
    entries = _entries(arrays, key, where)
    if len(entries) != count:
        raise ReadError(f"{where}: {len(entries)} {key!r} entries for {count} sequences")
    return entries


def _image_sizes(
    arrays: dict[str, np.ndarray], count: int, where: str
) -> list[tuple[int, int]] | None:
    """(width, height) per sequence from ``imgshape`` (H, W[, C]) entries.

    A single numeric (H, W[, C]) shared by every sequence is accepted too.
    """
    if "imgshape" not in arrays:
        return None
    raw = arrays["imgshape"]
    if raw.dtype != object and raw.ndim == 1 and len(raw) in (2, 3) and count not in (2, 3):
        shapes = [raw] * count
    else:
        shapes = _per_sequence(arrays, "imgshape", count, where) or []
    sizes = []
    for index, shape in enumerate(shapes):
        flat = np.asarray(shape).reshape(-1)
        try:
            height, width = int(flat[0]), int(flat[1])
        except (IndexError, TypeError, ValueError):
            raise ReadError(
                f"{where}: sequence {index}: imgshape {flat.tolist()} lacks (height, width)"
            ) from None
        sizes.append((width, height))
    return sizes


def read_published_pair(
    pair: PublishedPair,
    layout: str,
    representation: str,
    fps: float | None = None,
    errors: list[str] | None = None,
) -> list[Sequence]:
    """Read and pair one ground-truth file with its estimator file, checked.

    Pairing follows the published loaders: by sequence index and frame order. Problems that
    concern a whole file (unreadable, truncated, unsafe pickle, missing keys, differing
    sequence counts) always raise. A bad sequence (length mismatch, wrong joint count, inf,
    empty, ...) raises too, or when ``errors`` is a list, its message is appended there and
    the other sequences are kept. Every message names the file, the sequence and the problem.
    Differing image names are logged (the published loaders pair by index regardless).

    Missing joints (2D ``-1, -1`` or NaN) become masks: ``joint_mask`` for the estimator,
    ``gt_joint_mask`` for the ground truth.

    Raises:
        ReadError: see above.
    """
    gt_arrays, det_arrays = load_npz(pair.gt), load_npz(pair.detected)
    gt_where, det_where = pair.gt.uri, pair.detected.uri
    gt_key = _pose_key(gt_arrays, representation, gt_where)
    det_key = _pose_key(det_arrays, representation, det_where)
    gt_entries = _entries(gt_arrays, gt_key, gt_where)
    det_entries = _entries(det_arrays, det_key, det_where)
    if len(gt_entries) != len(det_entries):
        raise ReadError(
            f"{det_where}: {len(det_entries)} sequences, but {gt_where} has {len(gt_entries)}"
        )
    count = len(gt_entries)
    if count == 0:
        raise ReadError(f"{det_where}: no sequences")
    gt_names = _per_sequence(gt_arrays, "imgname", count, gt_where)
    det_names = _per_sequence(det_arrays, "imgname", count, det_where)
    sizes = _image_sizes(gt_arrays, count, gt_where)
    bboxes = _per_sequence(gt_arrays, "bbox", count, gt_where)
    if representation == "2D" and sizes is None:
        raise ReadError(f"{gt_where}: 2D ground truth needs 'imgshape' (image height, width)")
    split = {"train": "train", "test": "test", "val": "val", "valid": "val"}.get(pair.split)
    sequences = []
    mismatched_names = 0
    for index in range(count):
        seq_id = f"{pair.dataset}_{pair.estimator}_{pair.split}_{index:05d}"
        where = f"{det_where}: sequence {index} ({seq_id})"
        try:
            gt_seq_where = f"{gt_where}: sequence {index} ({seq_id})"
            gt = _poses(gt_entries[index], layout, representation, gt_seq_where)
            pred = _poses(det_entries[index], layout, representation, where)
            if len(gt) != len(pred):
                raise ReadError(
                    f"{where}: {len(pred)} frames, but ground truth sequence {index} in "
                    f"{gt_where} has {len(gt)} (length mismatch)"
                )
            names = _frame_names(gt_names[index] if gt_names else None, len(gt), where)
            det_frame_names = _frame_names(det_names[index] if det_names else None, len(gt), where)
            if names and det_frame_names and names != det_frame_names:
                mismatched_names += 1
            bbox = None
            if bboxes is not None:
                bbox = np.asarray(bboxes[index], dtype=np.float32)
                if bbox.size != 4 * len(gt):
                    raise ReadError(
                        f"{gt_where}: sequence {index}: bbox has {bbox.size} values for "
                        f"{len(gt)} frames (expected [frames, 4])"
                    )
                bbox = bbox.reshape(-1, 4)
            missing = _missing(pred, representation)
            gt_missing = _missing(gt, representation)
            seq = Sequence(
                sequence_id=seq_id,
                layout=layout,
                representation=representation,
                pred=np.where(missing[..., None], np.nan, pred),
                gt=np.where(gt_missing[..., None], 0.0, gt).astype(np.float32),
                gt_mask=~gt_missing.all(axis=1),
                gt_joint_mask=~gt_missing,
                joint_mask=~missing,
                bbox=bbox,
                image_size=sizes[index] if sizes is not None else None,
                fps=fps,
                dataset=pair.dataset,
                estimator=pair.estimator,
                split=split,
                frame_names=names or det_frame_names,
                source=det_where,
            )
            sequences.append(_validated(seq, where))
        except (ReadError, ValueError, TypeError) as err:
            # ValueError/TypeError: numpy refusing an entry (ragged, non-numeric, ...).
            message = str(err) if isinstance(err, ReadError) else f"{where}: {err}"
            if errors is None:
                raise ReadError(message) from None
            errors.append(message)
    if mismatched_names:
        log.warning(
            "%s: image names differ from %s in %d of %d sequences (paired by index)",
            det_where,
            gt_where,
            mismatched_names,
            count,
        )
    return sequences


def read_detections_npz(
    location: Location,
    layout: str,
    representation: str,
    fps: float | None = None,
    image_size: tuple[int, int] | None = None,
) -> list[Sequence]:
    """An estimator npz on its own (no ground truth), as refinement input.

    Raises:
        ReadError: naming the file, the sequence and the problem.
    """
    arrays = load_npz(location)
    key = _pose_key(arrays, representation, location.uri)
    entries = _entries(arrays, key, location.uri)
    if not entries:
        raise ReadError(f"{location.uri}: no sequences")
    names = _per_sequence(arrays, "imgname", len(entries), location.uri)
    sizes = _image_sizes(arrays, len(entries), location.uri)
    stem = _safe_stem(location.name)
    sequences = []
    for index, flat in enumerate(entries):
        seq_id = f"{stem}_{index:05d}"
        where = f"{location.uri}: sequence {index} ({seq_id})"
        try:
            pred = _poses(flat, layout, representation, where)
            missing = _missing(pred, representation)
            seq = Sequence(
                sequence_id=seq_id,
                layout=layout,
                representation=representation,
                pred=np.where(missing[..., None], np.nan, pred),
                joint_mask=~missing,
                image_size=sizes[index] if sizes is not None else image_size,
                fps=fps,
                split="infer",
                frame_names=_frame_names(names[index] if names else None, len(pred), where),
                source=location.uri,
            )
            sequences.append(_validated(seq, where))
        except (ValueError, TypeError) as err:  # ReadError is a ValueError
            raise (err if isinstance(err, ReadError) else ReadError(f"{where}: {err}")) from None
    return sequences


# ----------------------------------------------------------------------------------------------
# Per-video keypoint JSON (COCO keypoint results), inference only

_LAYOUT_BY_KEYPOINTS = {17: "coco17", 33: "mediapipe33", 15: "jhmdb", 14: "lsp14"}


def _safe_token(text: str) -> str:
    """``text`` reduced to the id character set (ASCII letters, digits, ``_.-``)."""
    return "".join(c if (c.isascii() and c.isalnum()) or c in "_.-" else "_" for c in text)


def _safe_stem(name: str) -> str:
    """A file name without its suffix, usable as the start of a sequence id."""
    safe = _safe_token(name.rsplit(".", 1)[0]).lstrip("._-").replace("..", "_")
    return safe or "sequence"


def _frame_order(frames: set[Any], where: str) -> list[Any]:
    """Frames in time order. Integer ids are frame numbers: the whole range between the first
    and the last is kept, so a frame in which nobody was detected still takes its time step
    (the filters and the model assume uniform time)."""
    if frames and all(isinstance(f, int) and not isinstance(f, bool) for f in frames):
        first, last = min(frames), max(frames)
        span = last - first + 1
        # Ids far sparser than frames are image ids, not frame numbers: do not invent frames.
        if span <= 4 * len(frames) + 1000:
            return list(range(first, last + 1))
        log.warning(
            "%s: image ids are sparse (%d ids over %d); kept as given", where, len(frames), span
        )
        return sorted(frames)
    try:
        return sorted(frames)
    except TypeError:
        return sorted(frames, key=str)


def _keypoint_triples(det: dict[str, Any], count: int, number: int, where: str) -> np.ndarray:
    try:
        triples = np.asarray(det["keypoints"], dtype=np.float64).reshape(count, 3)
    except (TypeError, ValueError):
        raise ReadError(
            f"{where}: detection {number} (image {det.get('image_id')!r}): keypoints are not "
            f"{count} numeric x, y, score triples"
        ) from None
    if np.isinf(triples).any():
        raise ReadError(f"{where}: detection {number} (image {det.get('image_id')!r}): inf")
    return triples


def read_keypoint_json(
    location: Location,
    layout: str | None = None,
    fps: float | None = None,
    image_size: tuple[int, int] | None = None,
) -> list[Sequence]:
    """One video's COCO-style keypoint results -> one sequence per track.

    Accepts a list of ``{"image_id", "keypoints": [x, y, score, ...], "score"?, "track_id"?}``
    or a dict with ``"annotations"`` (and optional ``"images"`` giving ``id``, ``width``,
    ``height``). Frames are ordered by image id; integer ids count frames, so gaps in them are
    kept as frames. A track absent from a frame gets that frame marked missing, so time stays
    uniform. Without track ids, the highest-scoring detection per frame is kept. Joints with
    zero (or negative, or NaN) confidence are missing; confidences are kept.

    Raises:
        ReadError: naming the file, the detection and the problem.
    """
    where = location.uri
    try:
        document = json.loads(read_bytes(location))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReadError(f"{where}: not valid JSON ({err})") from err
    except OSError as err:
        raise ReadError(f"{where}: cannot read ({err})") from err
    images: dict[Any, dict] = {}
    if isinstance(document, dict):
        listed = document.get("images", []) or []
        images = {img.get("id"): img for img in listed if isinstance(img, dict)}
        document = document.get("annotations", document.get("results"))
    if not isinstance(document, list) or not document:
        raise ReadError(f"{where}: expected a non-empty list of keypoint detections")
    frames: set[Any] = set(images)
    keypoint_count = None
    for number, det in enumerate(document):
        if not isinstance(det, dict) or "image_id" not in det or "keypoints" not in det:
            raise ReadError(f"{where}: detection {number} lacks image_id or keypoints")
        keypoints = det["keypoints"]
        if not isinstance(keypoints, list) or not keypoints or len(keypoints) % 3:
            raise ReadError(f"{where}: detection {number}: keypoints must be x, y, score triples")
        if keypoint_count is None:
            keypoint_count = len(keypoints) // 3
        elif len(keypoints) // 3 != keypoint_count:
            raise ReadError(
                f"{where}: detection {number} has {len(keypoints) // 3} keypoints, earlier ones "
                f"{keypoint_count}"
            )
        frame = det["image_id"]
        if isinstance(frame, (list, dict)):
            raise ReadError(f"{where}: detection {number}: image_id {frame!r} is not a scalar")
        frames.add(frame)
    tracks = best_per_track(document)
    layout_name = layout or _LAYOUT_BY_KEYPOINTS.get(keypoint_count or 0)
    if layout_name is None:
        raise ReadError(f"{where}: no joint layout known for {keypoint_count} keypoints")
    if get_layout(layout_name).num_joints != keypoint_count:
        raise ReadError(
            f"{where}: {keypoint_count} keypoints per detection, but layout {layout_name!r} has "
            f"{get_layout(layout_name).num_joints}"
        )
    order = _frame_order(frames, where)
    index = {frame: i for i, frame in enumerate(order)}
    size = image_size
    if images:
        first = next(iter(images.values()))
        if "width" in first and "height" in first:
            size = (int(first["width"]), int(first["height"]))
    stem = _safe_stem(location.name)
    sequences = []
    used_ids: set[str] = set()
    for track_id, detections in sorted(tracks.items(), key=lambda kv: str(kv[0])):
        seq_id = f"{stem}_track{_safe_token(str(track_id)).replace('..', '_')}"
        while seq_id in used_ids:  # two track ids that sanitise alike stay two sequences
            seq_id += "_"
        used_ids.add(seq_id)
        pred = np.full((len(order), keypoint_count, 2), np.nan, dtype=np.float32)
        conf = np.zeros((len(order), keypoint_count), dtype=np.float32)
        for number, (frame, det) in enumerate(detections.items()):
            triples = _keypoint_triples(det, keypoint_count, number, where)
            pred[index[frame]] = triples[:, :2]
            conf[index[frame]] = triples[:, 2]
        conf = np.nan_to_num(conf, nan=0.0)
        observed = (conf > 0) & ~np.isnan(pred).any(axis=-1)
        seq = Sequence(
            sequence_id=seq_id,
            layout=layout_name,
            representation="2D",
            pred=np.where(observed[..., None], pred, np.nan),
            joint_mask=observed,
            confidence=conf,
            image_size=size,
            fps=fps,
            split="infer",
            frame_names=[str(f) for f in order],
            source=where,
        )
        sequences.append(_validated(seq))
    return sequences


def _score(det: dict[str, Any]) -> float:
    try:
        return float(det.get("score", 0.0))
    except (TypeError, ValueError):
        return 0.0


def best_per_track(detections: list[dict[str, Any]]) -> dict[Any, dict[Any, dict[str, Any]]]:
    """COCO-style detections grouped as ``{track id: {image id: detection}}``, keeping per
    track and frame the first detection with the highest score. Detections without a track id
    (``track_id``, or AlphaPose's ``idx``) form one track, 0."""
    tracks: dict[Any, dict[Any, dict[str, Any]]] = {}
    for det in detections:
        track_id = det.get("track_id", det.get("idx", 0))
        track = tracks.setdefault(track_id if track_id is not None else 0, {})
        frame = det["image_id"]
        best = track.get(frame)
        if best is None or _score(det) > _score(best):
            track[frame] = det
    return tracks


# ----------------------------------------------------------------------------------------------
# Our sequence Parquet


def read_sequence_parquet(location: Location) -> list[Sequence]:
    """Sequences from a Parquet file in :data:`hanet.schema.SEQUENCE_SCHEMA`."""
    where = location.uri
    try:
        table = pq.read_table(io.BytesIO(read_bytes(location)))
    except Exception as err:  # pyarrow raises several types for a broken file
        raise ReadError(f"{where}: not a readable Parquet file ({err})") from err
    try:
        check_schema(table.schema, "sequence", where)
        sequences = table_to_sequences(table)
        return [validate_sequence(_with_source(seq, where)) for seq in sequences]
    except SchemaError as err:
        raise ReadError(str(err)) from None


def _with_source(seq: Sequence, where: str) -> Sequence:
    if not seq.source:
        seq.source = where
    return seq


def read_any(
    location: Location,
    layout: str,
    representation: str,
    fps: float | None = None,
    image_size: tuple[int, int] | None = None,
) -> list[Sequence]:
    """Sequences from one object of any supported format, chosen by its suffix."""
    name = location.name.lower()
    if name.endswith(".parquet"):
        return read_sequence_parquet(location)
    if name.endswith(".npz"):
        return read_detections_npz(location, layout, representation, fps, image_size)
    if name.endswith(".json"):
        if representation != "2D":
            raise ReadError(
                f"{location.uri}: keypoint JSON is 2D, but the model is {representation}"
            )
        return read_keypoint_json(location, layout, fps, image_size)
    raise ReadError(f"{location.uri}: unsupported file type (supported: {SUPPORTED_SUFFIXES})")


def find_leaks(train: Iterable[Sequence], test: Iterable[Sequence]) -> list[str]:
    """Clips (image-name folders) present in both splits; the published Sub-JHMDB files pool
    three official splits, which puts the same clip in train and test."""

    def clips(sequences: Iterable[Sequence]) -> set[str]:
        found = set()
        for seq in sequences:
            for name in seq.frame_names or ():
                found.add(str(PurePosixPath(name).parent))
        return found - {"."}

    return sorted(clips(train) & clips(test))
