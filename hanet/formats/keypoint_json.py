"""Per-video COCO-style keypoint results (``[{"image_id", "keypoints": [x, y, score, ...],
"score"?, "track_id"?}]``, or a dict with ``"annotations"``): read as one sequence per track,
and written back with refined coordinates. Inference only (no ground truth)."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from hanet.data.schema import Sequence, safe_name
from hanet.formats.common import OutputFormatError, ReadError, validated
from hanet.io.errors import StorageError
from hanet.io.location import Location
from hanet.io.storage import read_bytes
from hanet.skeletons import get_layout

log = logging.getLogger(__name__)

__all__ = ["best_per_track", "encode_keypoint_json", "read_keypoint_json"]

_LAYOUT_BY_KEYPOINTS = {17: "coco17", 33: "mediapipe33", 15: "jhmdb", 14: "lsp14"}


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
    data: bytes | None = None,
) -> list[Sequence]:
    """One video's COCO-style keypoint results -> one sequence per track (``data``: the
    file's content when the caller already read it, else it is read here).

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
        document = json.loads(read_bytes(location) if data is None else data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReadError(f"{where}: not valid JSON ({err})") from err
    except StorageError:
        raise  # not the file's fault: storage that refused or did not answer
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
    declared = get_layout(layout_name)
    if declared.num_joints != keypoint_count:
        raise ReadError(
            f"{where}: {keypoint_count} keypoints per detection, but layout {declared.name!r} "
            f"has {declared.num_joints}"
        )
    order = _frame_order(frames, where)
    index = {frame: i for i, frame in enumerate(order)}
    size = image_size
    if images:
        first = next(iter(images.values()))
        if "width" in first and "height" in first:
            size = (int(first["width"]), int(first["height"]))
    stem = safe_name(location.name.rsplit(".", 1)[0])
    sequences = []
    used_ids: set[str] = set()
    for track_id, detections in sorted(tracks.items(), key=lambda kv: str(kv[0])):
        seq_id = f"{stem}_track{safe_name(str(track_id), start=False)}"
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
        sequences.append(validated(seq))
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


def encode_keypoint_json(location: Location, refined: list[Sequence]) -> bytes:
    """The input's COCO-style keypoint results with refined x, y and the original scores.

    The detection kept per track and frame is the one :func:`read_keypoint_json`
    keeps (the first with the highest score); its other fields (image id, track id, category,
    score) are kept. Lower-scoring duplicates were never refined and are left out. A joint with
    score 0 was missing and keeps its original coordinates, so it still reads as missing.

    Tracks are matched to the refined sequences in the reader's order (tracks sorted by the
    text of their id), and every match is checked against the stored confidences, so a change
    in the reader cannot silently put one track's poses on another.
    """
    document = json.loads(read_bytes(location))
    container_key = None
    detections = document
    if isinstance(document, dict):
        container_key = "annotations" if "annotations" in document else "results"
        detections = document[container_key]
    ordered = sorted(best_per_track(detections).items(), key=lambda kv: str(kv[0]))
    if len(ordered) != len(refined):
        raise OutputFormatError(
            f"{location.uri}: {len(ordered)} tracks but {len(refined)} refined sequences"
        )
    kept: dict[int, dict[str, Any]] = {}  # id(detection) -> refined copy
    for (track_id, frames), seq in zip(ordered, refined):
        index = {name: t for t, name in enumerate(seq.frame_names or ())}
        for frame, det in frames.items():
            t = index.get(str(frame))  # the reader names frames by the text of their image id
            triples = np.asarray(det["keypoints"], dtype=np.float64).reshape(-1, 3)
            scores = np.nan_to_num(triples[:, 2].astype(np.float32), nan=0.0)
            if t is None or (
                seq.confidence is not None and not np.array_equal(scores, seq.confidence[t])
            ):
                raise OutputFormatError(
                    f"{location.uri}: cannot match track {track_id!r}, image {frame!r} to the "
                    f"refined sequence {seq.sequence_id!r}"
                )
            observed = seq.observed()[t]
            xy = np.where(observed[:, None], seq.pred[t].astype(np.float64), triples[:, :2])
            triples = np.concatenate([xy, triples[:, 2:]], axis=1)
            kept[id(det)] = {**det, "keypoints": [float(v) for v in triples.reshape(-1)]}
    # The input's order, minus the duplicates that were not kept.
    out = [kept[id(det)] for det in detections if id(det) in kept]
    if container_key is not None:
        document = {**document, container_key: out}
    else:
        document = out
    return json.dumps(document).encode()
