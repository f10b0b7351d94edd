"""The conventions of the published (DeciWatch/HANet) npz files, shared by the paired
ground-truth/detection reader and the detections-only reader and writer.

Every key is an object array with one entry per sequence (or a stacked numeric array); poses
are ``[T, J * D]`` per entry (``joints_2d`` pixels, ``joints_3d`` metres, ``pose`` SMPL
rotations as axis-angle ``[T, 72]`` or 6D ``[T, 144]``).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from hanet.data.schema import REPRESENTATIONS
from hanet.formats.common import ReadError
from hanet.skeletons import H36M_TO_LSP14, get_layout

__all__ = [
    "POSE_KEYS",
    "axis_angle_to_6d",
    "sequence_entries",
    "image_sizes",
    "per_sequence",
    "pose_array",
    "pose_key",
]

# Keys of published npz files that hold the poses, by representation.
POSE_KEYS = {"2D": ("joints_2d",), "3D": ("joints_3d",), "smpl": ("pose",)}


def sequence_entries(arrays: dict[str, np.ndarray], key: str, where: str) -> list[np.ndarray]:
    """One entry per sequence, whether stored as an object array or a stacked array."""
    if key not in arrays:
        raise ReadError(f"{where}: missing key {key!r} (has {sorted(arrays)})")
    value = arrays[key]
    if value.ndim == 0:
        raise ReadError(f"{where}: key {key!r} is a scalar, expected one entry per sequence")
    return [np.asarray(item) for item in value]


def pose_key(arrays: dict[str, np.ndarray], representation: str, where: str) -> str:
    """The key holding the poses of ``representation`` data."""
    candidates = POSE_KEYS[representation]
    for key in candidates:
        if key in arrays:
            return key
    raise ReadError(f"{where}: no {' or '.join(candidates)} array for {representation} data")


def axis_angle_to_6d(axis_angle: np.ndarray) -> np.ndarray:
    """``[..., 3]`` axis-angle -> ``[..., 6]``: the first two columns of the rotation matrix,
    ``[R00, R10, R20, R01, R11, R21]`` (:mod:`hanet.metrics`' default 6D layout)."""
    flat = np.asarray(axis_angle, dtype=np.float64).reshape(-1, 3)
    matrix = Rotation.from_rotvec(flat).as_matrix()  # [N, 3, 3]
    six = np.concatenate([matrix[:, :, 0], matrix[:, :, 1]], axis=-1)
    return six.reshape(*np.shape(axis_angle)[:-1], 6)


def pose_array(flat: np.ndarray, layout_name: str, representation: str, where: str) -> np.ndarray:
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
            return axis_angle_to_6d(array.reshape(len(array), -1, 3)).astype(np.float32)
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


def per_sequence(
    arrays: dict[str, np.ndarray], key: str, count: int, where: str
) -> list[np.ndarray] | None:
    """A key's entries, one per sequence, or None when the file lacks the key.

    Raises:
        ReadError: the key holds another number of entries than there are sequences.
    """
    if key not in arrays:
        return None
    entries = sequence_entries(arrays, key, where)
    if len(entries) != count:
        raise ReadError(f"{where}: {len(entries)} {key!r} entries for {count} sequences")
    return entries


def image_sizes(
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
        shapes = per_sequence(arrays, "imgshape", count, where) or []
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
