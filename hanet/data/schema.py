"""The one in-memory pose record, :class:`Sequence`, and its validation.

A *sequence* is one track of one video: the estimator's poses ``pred [T, J, D]``, ground truth
when known (possibly on some frames only, ``gt_mask [T]``, and on some joints only,
``gt_joint_mask [T, J]``), which input joints were observed (``joint_mask [T, J]``), optional
confidences, and for 2D the image size and per-frame bbox. Every reader returns sequences that
passed :func:`validate_sequence`, which also refuses finite but implausible values
(:mod:`hanet.data.plausibility`); :mod:`hanet.data.arrow` stores them in Parquet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hanet.data.folds import trailing_any
from hanet.data.plausibility import (
    Reference,
    clear_of_implausible,
    find_implausible,
    units_problem,
    units_problem_of,
)
from hanet.errors import UserError
from hanet.skeletons import JointLayout, get_layout

__all__ = [
    "REPRESENTATIONS",
    "SPLITS",
    "SchemaError",
    "Sequence",
    "check_id",
    "implausibility",
    "safe_name",
    "units_warning",
    "validate_sequence",
]

REPRESENTATIONS = {"2D": 2, "3D": 3, "smpl": 6}
SPLITS = ("train", "val", "test", "infer")
# Ids become file names and Parquet values: one safe path component, never a path.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_ID_MAX_LENGTH = 200  # leaves room for suffixes within the usual 255-byte file-name limit


class SchemaError(UserError, ValueError):
    """A sequence or window violates the schema; the message names the source and sequence."""


@dataclass
class Sequence:
    """One track of estimator output, with ground truth when known.

    Shape:
        pred, gt: [T, J, D]; gt_mask: [T]; joint_mask, gt_joint_mask, confidence: [T, J];
        bbox: [T, 4]; skeleton: [J, 3].
    """

    sequence_id: str
    layout: JointLayout | str  # a built-in's name is resolved by validate_sequence
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
    gt_joint_mask: np.ndarray | None = None
    # Rest-pose bone offsets from each joint's parent, in metres, where the skeleton is known
    # (SMPL-style rotations then give joint positions by forward kinematics).
    skeleton: np.ndarray | None = None

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


def safe_name(text: str, fallback: str = "sequence", start: bool = True) -> str:
    """``text`` reduced to what :func:`check_id` accepts: characters outside ASCII letters,
    digits and ``_.-`` become ``_`` and ``..`` becomes ``_``. With ``start`` (the text begins
    an id) leading dots, dashes and underscores go too, and an empty result is ``fallback``."""
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "_.-" else "_" for c in text)
    while ".." in safe:
        safe = safe.replace("..", "_")
    if not start:
        return safe
    return safe.lstrip("._-")[:_ID_MAX_LENGTH] or fallback


def _numeric(value: Any, what: str, where: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise SchemaError(f"{where}: {what} must be numeric, not dtype {array.dtype}")
    return array


def validate_sequence(
    seq: Sequence, expected_joints: int | None = None, plausibility: bool = True
) -> Sequence:
    """Check shapes, values and ids; return the sequence with missing joints masked.

    Missing input joints (NaN, or a joint the source marked missing) are recorded in
    ``joint_mask``; NaN coordinates become 0, so no NaN travels further, and finite values
    under the mask are kept (a refined sequence carries the model's estimate there). The mask
    is what counts: downstream code fills masked joints from neighbours before they reach
    features and leaves them out of metrics. Likewise unknown ground truth (NaN) is recorded in
    ``gt_joint_mask``. Infinite values are errors: no source uses them to mean "missing", so
    they signal a broken file; so are finite values no pose can have (an observed joint or
    frame hundreds of body sizes away, see :mod:`hanet.data.plausibility`), named by frame
    and joint. ``plausibility=False`` leaves that last check to the caller, who then runs
    :func:`implausibility` over many sequences at once.

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
    joint_mask &= ~trailing_any(np.isnan(pred))
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
        gt_joint_mask &= ~trailing_any(np.isnan(gt))
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
    skeleton = None
    if seq.skeleton is not None:
        skeleton = _shaped(
            _numeric(seq.skeleton, "skeleton", where), (joints, 3), "skeleton", where
        )
        skeleton = skeleton.astype(np.float32)
        if not np.isfinite(skeleton).all():
            raise SchemaError(f"{where}: skeleton offsets contain NaN or inf")
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
    checked = replace(
        seq,
        layout=layout,
        pred=pred,
        gt=gt,
        gt_mask=gt_mask,
        gt_joint_mask=gt_joint_mask,
        joint_mask=joint_mask,
        confidence=confidence,
        bbox=bbox,
        image_size=image_size,
        frame_names=frame_names,
        skeleton=skeleton,
    )
    if plausibility:
        _check_sequence_plausible(checked)
    return checked


def implausibility(sequences: list[Sequence]) -> list[SchemaError | None]:
    """For validated sequences, the error :func:`validate_sequence` would raise for an
    implausible value in each (None where there is none), found for all of them together:
    :func:`hanet.data.plausibility.clear_of_implausible` clears almost every sequence in one
    pass, and only the rest get the exact look one by one (with the same messages)."""
    doubtful = {i for i, seq in enumerate(sequences) if seq.representation == "smpl"}
    positions = [i for i in range(len(sequences)) if i not in doubtful]
    with_truth = [i for i in positions if sequences[i].gt is not None]
    groups = []
    for members, truth in ((positions, False), (with_truth, True)):
        shapes: dict[tuple[int, ...], list[int]] = {}  # joined only where shapes agree
        for i in members:
            shapes.setdefault(sequences[i].pred.shape[1:], []).append(i)
        groups += [(same, truth) for same in shapes.values()]
    for members, truth in groups:
        seqs = [sequences[i] for i in members]
        values = [s.gt if truth else s.pred for s in seqs]
        known = [s.labelled_joints() if truth else s.observed() for s in seqs]
        clear = clear_of_implausible(values, known)
        doubtful |= {i for i, ok in zip(members, clear, strict=True) if not ok}
    errors: list[SchemaError | None] = [None] * len(sequences)
    for i in sorted(doubtful):
        try:
            _check_sequence_plausible(sequences[i])
        except SchemaError as err:
            errors[i] = err
    return errors


def _check_sequence_plausible(seq: Sequence) -> None:
    """The plausibility part of :func:`validate_sequence`, for a validated sequence."""
    layout, where = get_layout(seq.layout), seq.where()
    _check_plausible(
        seq.pred, seq.observed(), "poses", seq.representation, seq.image_size, layout, where
    )
    if seq.gt is not None:
        known = seq.labelled_joints()
        _check_plausible(
            seq.gt, known, "ground truth", seq.representation, seq.image_size, layout, where
        )


def _check_plausible(
    values: np.ndarray,
    mask: np.ndarray,
    what: str,
    representation: str,
    image_size: tuple[int, int] | None,
    layout: JointLayout,
    where: str,
) -> None:
    found = find_implausible(values, mask, representation, image_size)
    if found is not None:
        raise SchemaError(f"{where}: {what}: {found.describe(layout.joints[found.joint])}")


def units_warning(seq: Sequence, ref: Reference | None = None) -> str | None:
    """``source: sequence 'id': why`` when a validated sequence's body size does not fit its
    declared units (:func:`hanet.data.plausibility.units_problem`), else None; ``ref``, the
    sequence's :func:`hanet.data.plausibility.reference`, saves measuring it again."""
    if ref is None:
        problem = units_problem(seq.pred, seq.observed(), seq.representation, seq.image_size)
    else:
        problem = units_problem_of(ref, seq.image_size)
    return f"{seq.where()}: {problem}" if problem else None


def _first_bad_frame(array: np.ndarray) -> int:
    return int(np.flatnonzero(np.isinf(array).reshape(len(array), -1).any(axis=1))[0])


def _shaped(value: Any, shape: tuple[int, ...], what: str, where: str) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != tuple(shape):
        raise SchemaError(f"{where}: {what} has shape {array.shape}, expected {tuple(shape)}")
    return array
