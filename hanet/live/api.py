"""The live service's JSON: reading a request's frames, writing the frames that became final.

Pure Python and numpy, shared by the HTTP and the WebSocket endpoints. A request holds one
frame ``{"keypoints": [[x, y(, z)(, score)], ...]}`` or several ``{"frames": [{"keypoints":
...}, ...]}``; a joint is its ``D`` coordinates, optionally followed by a score (a score of 0
or ``null`` marks it missing), or ``null`` when missing. ``"image_size": [w, h]`` may come with
a stream's first request, for models that normalise 2D by the image size. Anything else is a
:class:`BadRequest` whose message says what is wrong.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from hanet.streaming import frame_arrays

__all__ = [
    "BadRequest",
    "Frames",
    "check_stream_id",
    "frames_answer",
    "parse_frames",
    "read_json",
]

_STREAM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class BadRequest(ValueError):
    """A request the service refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Frames:
    """The frames of one request and the image size it gave, if any.

    Shape:
        poses: ``[n, J, D]`` float32; present: ``[n, J]`` bool.
    """

    poses: np.ndarray
    present: np.ndarray
    image_size: tuple[int, int] | None


def check_stream_id(stream_id: str) -> str:
    """Stream ids are 1-128 characters of ``[A-Za-z0-9_.-]``, starting with a letter or digit.

    Raises:
        BadRequest: anything else.
    """
    if not _STREAM_ID.match(stream_id):
        raise BadRequest(
            f"stream id {stream_id[:40]!r} must be 1-128 characters of [A-Za-z0-9_.-], "
            "starting with a letter or digit"
        )
    return stream_id


def _reject_constant(name: str) -> float:
    raise BadRequest(f"{name} is not a finite number")


def _joint(value: Any, dims: int, where: str) -> tuple[list[float], bool]:
    if value is None:
        return [math.nan] * dims, False
    if not isinstance(value, list) or len(value) not in (dims, dims + 1):
        raise BadRequest(
            f"{where}: a joint is [{dims} coordinates] or [{dims} coordinates, score], "
            f"got {json.dumps(value)[:60]}"
        )
    for item in value:
        if item is not None and (isinstance(item, bool) or not isinstance(item, int | float)):
            raise BadRequest(f"{where}: {json.dumps(item)[:40]} is not a number")
    coords = value[:dims]
    if any(item is None for item in coords):
        raise BadRequest(f"{where}: a coordinate is null (send the joint as null when missing)")
    score = value[dims] if len(value) > dims else 1.0
    return [float(c) for c in coords], score is not None and score > 0


def _frame(value: Any, joints: int, dims: int, where: str) -> tuple[list, list[bool]]:
    if not isinstance(value, dict) or "keypoints" not in value:
        raise BadRequest(f'{where}: a frame is {{"keypoints": [[...], ...]}}')
    points = value["keypoints"]
    if not isinstance(points, list) or len(points) != joints:
        count = len(points) if isinstance(points, list) else type(points).__name__
        raise BadRequest(f"{where}: {count} joints, but the model expects {joints}", 422)
    parsed = [_joint(p, dims, f"{where}, joint {j}") for j, p in enumerate(points)]
    return [c for c, _ in parsed], [ok for _, ok in parsed]


def _image_size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise BadRequest("image_size is [width, height] in pixels, two positive integers")
    return int(value[0]), int(value[1])


def read_json(body: bytes | str) -> Any:
    """A request body or message as JSON (``NaN`` and ``Infinity`` refused).

    Raises:
        BadRequest: not JSON.
    """
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except BadRequest:
        raise
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(f"the body is not JSON ({err})") from None


def parse_frames(data: Any, joints: int, dims: int, max_frames: int) -> Frames:
    """A request's frames (its JSON, :func:`read_json`), checked against the model's joints
    ``J`` and dimension ``D``.

    Raises:
        BadRequest: not an object, no frames, too many frames, a wrong joint count (422), a
            non-numeric or non-finite value.
    """
    if not isinstance(data, dict) or ("keypoints" in data) == ("frames" in data):
        raise BadRequest('the body is {"keypoints": [...]} (one frame) or {"frames": [...]}')
    frames = [data] if "keypoints" in data else data["frames"]
    if not isinstance(frames, list) or not frames:
        raise BadRequest('"frames" is a non-empty list of {"keypoints": [...]}')
    if len(frames) > max_frames:
        raise BadRequest(f"{len(frames)} frames in one request; at most {max_frames}", 413)
    coords, present = [], []
    for i, frame in enumerate(frames):
        c, p = _frame(frame, joints, dims, f"frame {i}")
        coords.append(c)
        present.append(p)
    poses = np.asarray(coords, np.float64)
    if np.isinf(poses).any() or (np.abs(poses[np.isfinite(poses)]) > 3e38).any():
        raise BadRequest("a coordinate is not a finite float32 number")
    mask = np.asarray(present, bool) & ~np.isnan(poses).any(axis=-1)
    arrays = [
        frame_arrays(pose, m.astype(np.float32), joints, dims) for pose, m in zip(poses, mask)
    ]
    return Frames(
        np.stack([a for a, _ in arrays]),
        np.stack([m for _, m in arrays]),
        _image_size(data.get("image_size")),
    )


def frames_answer(frames: list[tuple[int, np.ndarray]], **extra: Any) -> dict[str, Any]:
    """``{"frames": [{"index": i, "keypoints": [[...], ...]}, ...], **extra}``; a joint that
    could not be estimated (a window without any observed joint) is ``null``."""
    out = []
    for index, pose in frames:
        points = [None if np.isnan(p).any() else p.tolist() for p in np.asarray(pose, np.float64)]
        out.append({"index": int(index), "keypoints": points})
    return {"frames": out, **extra}
