"""The published layout: ``groundtruth_poses/<ds>/<ds>_gt_<split>.npz`` paired with
``detected_poses/<ds>/<estimator>/<ds>_<estimator>_<split>.npz`` (DeciWatch/HANet), read as
validated sequences with ground truth.

Pairing follows the published loaders: by sequence index and frame order. Every error names the
file, the sequence and the problem.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from hanet.data.schema import Sequence
from hanet.formats.common import ReadError, frame_names, missing_joints, validated_many
from hanet.formats.npz_layout import (
    image_sizes,
    per_sequence,
    pose_array,
    pose_key,
    sequence_entries,
)
from hanet.formats.safe_npz import load_npz
from hanet.io.location import Location
from hanet.io.storage import is_dir, list_files, write_bytes_atomic

log = logging.getLogger(__name__)

__all__ = [
    "PublishedPair",
    "find_published_pairs",
    "find_published_root",
    "read_published_pair",
    "write_published_pair",
]


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


def read_published_pair(
    pair: PublishedPair,
    layout: str,
    representation: str,
    fps: float | None = None,
    errors: list[str] | None = None,
    indices: range | None = None,
) -> list[Sequence]:
    """Read and pair one ground-truth file with its estimator file, checked.

    ``indices`` reads only those sequences (by their number in the files), so that several
    tasks can share one large pair; their ids stay those of a whole read.

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
    gt_key = pose_key(gt_arrays, representation, gt_where)
    det_key = pose_key(det_arrays, representation, det_where)
    gt_entries = sequence_entries(gt_arrays, gt_key, gt_where)
    det_entries = sequence_entries(det_arrays, det_key, det_where)
    if len(gt_entries) != len(det_entries):
        raise ReadError(
            f"{det_where}: {len(det_entries)} sequences, but {gt_where} has {len(gt_entries)}"
        )
    count = len(gt_entries)
    if count == 0:
        raise ReadError(f"{det_where}: no sequences")
    gt_names = per_sequence(gt_arrays, "imgname", count, gt_where)
    det_names = per_sequence(det_arrays, "imgname", count, det_where)
    sizes = image_sizes(gt_arrays, count, gt_where)
    bboxes = per_sequence(gt_arrays, "bbox", count, gt_where)
    # The rest skeleton of each sequence, where the file knows it (SMPL rotations -> joints).
    skeletons = per_sequence(gt_arrays, "skeleton_offsets", count, gt_where)
    split = {"train": "train", "test": "test", "val": "val", "valid": "val"}.get(pair.split)
    # Per sequence in file order: its problem, or the sequence and where it was read (checked
    # together below, so that the plausibility checks of all run at once).
    read: list[str | tuple[Sequence, str]] = []
    mismatched_names = 0
    for index in range(count) if indices is None else [i for i in indices if i < count]:
        seq_id = f"{pair.dataset}_{pair.estimator}_{pair.split}_{index:05d}"
        where = f"{det_where}: sequence {index} ({seq_id})"
        try:
            gt_seq_where = f"{gt_where}: sequence {index} ({seq_id})"
            gt = pose_array(gt_entries[index], layout, representation, gt_seq_where)
            pred = pose_array(det_entries[index], layout, representation, where)
            if len(gt) != len(pred):
                raise ReadError(
                    f"{where}: {len(pred)} frames, but ground truth sequence {index} in "
                    f"{gt_where} has {len(gt)} (length mismatch)"
                )
            names = frame_names(gt_names[index] if gt_names else None, len(gt), where)
            det_frame_names = frame_names(det_names[index] if det_names else None, len(gt), where)
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
            missing = missing_joints(pred, representation)
            gt_missing = missing_joints(gt, representation)
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
                skeleton=skeletons[index] if skeletons is not None else None,
            )
            read.append((seq, where))
        except (ReadError, ValueError, TypeError) as err:
            # ValueError/TypeError: numpy refusing an entry (ragged, non-numeric, ...).
            read.append(str(err) if isinstance(err, ReadError) else f"{where}: {err}")
    pending = [item for item in read if not isinstance(item, str)]
    checked = iter(validated_many(pending))  # type: ignore[arg-type]
    sequences = []
    for item in read:
        result = item if isinstance(item, str) else next(checked)
        if isinstance(result, Sequence):
            sequences.append(result)
            continue
        if errors is None:
            raise ReadError(str(result)) from None
        errors.append(str(result))
    if mismatched_names:
        log.warning(
            "%s: image names differ from %s in %d of %d sequences (paired by index)",
            det_where,
            gt_where,
            mismatched_names,
            count,
        )
    return sequences


def _npz_bytes(arrays: Mapping[str, Seq[Any]]) -> bytes:
    entries = {}
    for key, values in arrays.items():
        column = np.empty(len(values), dtype=object)  # one entry per sequence, as published
        for index, value in enumerate(values):
            column[index] = np.asarray(value)
        entries[key] = column
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=True, **entries)
    return buffer.getvalue()


def write_published_pair(
    root: Location,
    dataset: str,
    estimator: str,
    split: str,
    gt: Mapping[str, Seq[Any]],
    detected: Mapping[str, Seq[Any]],
) -> PublishedPair:
    """Write one split in the published layout under ``root`` (each key a list with one entry
    per sequence, as :func:`read_published_pair` reads them), both files atomically."""
    pair = PublishedPair(
        dataset,
        estimator,
        split,
        root.join("groundtruth_poses", dataset, f"{dataset}_gt_{split}.npz"),
        root.join("detected_poses", dataset, estimator, f"{dataset}_{estimator}_{split}.npz"),
    )
    write_bytes_atomic(pair.gt, _npz_bytes(gt))
    write_bytes_atomic(pair.detected, _npz_bytes(detected))
    return pair
