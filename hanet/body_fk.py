"""Forward kinematics of a joint tree: local joint rotations + rest offsets -> joint positions.

The convention is SMPL's. Every joint ``j`` has a parent ``parents[j]`` (``-1`` for the root,
and a parent always comes before its children) and a rest-pose offset ``offsets[j]``, the bone
vector from the parent's joint to ``j`` in the rest pose. A joint's rotation ``R_j`` is local
(relative to its parent) and turns everything below the joint about the joint itself:

* ``G_root = R_root`` (the global orientation) and ``G_j = G_parent(j) @ R_j``;
* ``p_root = offsets[root]`` and ``p_j = p_parent(j) + G_parent(j) @ offsets[j]``.

So a joint's own rotation moves its subtree but not the joint, identity rotations give the
rest pose, and with ``offsets[root] = 0`` the positions are root-relative. Rotations may be
matrices, the 6D representation of :func:`hanet.metrics.rotation_6d_to_matrix` or axis-angle
vectors (SMPL's stored ``pose``). Pure numpy.

Symbols in the Shape sections: ``...`` any leading (batch, frame) axes, J joints.
"""

from __future__ import annotations

import numpy as np

from hanet.metrics import rotation_6d_to_matrix
from hanet.skeletons import JointLayout, get_layout

__all__ = [
    "axis_angle_to_matrix",
    "forward_kinematics",
    "global_rotations",
    "layout_parents",
    "local_rotations",
    "matrix_to_axis_angle",
    "orthonormal_6d",
    "to_matrices",
]


def layout_parents(layout: JointLayout | str) -> np.ndarray:
    """Parent index per joint from a layout's bones, ``-1`` for its single root.

    Raises:
        ValueError: the bones do not form a tree rooted at the layout's root whose parents
            come before their children (as SMPL's do).

    Shape:
        Output ``[J]`` int64.
    """
    layout = get_layout(layout) if isinstance(layout, str) else layout
    parents = np.full(layout.num_joints, -1, dtype=np.int64)
    for parent, child in layout.bones:
        if parents[child] != -1:
            raise ValueError(f"{layout.name}: joint {layout.joints[child]} has two parents")
        parents[child] = parent
    roots = np.flatnonzero(parents == -1)
    if roots.tolist() != list(layout.roots[:1]) or len(layout.roots) != 1:
        raise ValueError(f"{layout.name}: not a tree with one root joint")
    _check_parents(parents)
    return parents


def _check_parents(parents: np.ndarray) -> np.ndarray:
    parents = np.asarray(parents, dtype=np.int64)
    if parents.ndim != 1 or not len(parents) or parents[0] != -1:
        raise ValueError(f"parents must be [J] with parents[0] == -1, got {parents.tolist()}")
    if any(not (0 <= p < j) for j, p in enumerate(parents.tolist()) if j):
        raise ValueError(f"every parent must come before its child, got {parents.tolist()}")
    return parents


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """Rotation matrices from axis-angle vectors (Rodrigues' formula).

    Shape:
        axis_angle: ``[..., 3]`` radians; output ``[..., 3, 3]``.
    """
    v = np.asarray(axis_angle, dtype=np.float64)
    theta = np.linalg.norm(v, axis=-1)[..., None, None]
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*v.shape[:-1], 3, 3)
    small = theta < 1e-8
    safe = np.where(small, 1.0, theta)
    # sin(t)/t and (1 - cos(t))/t^2, with their limits 1 and 1/2 near t = 0
    a = np.where(small, 1.0, np.sin(safe) / safe)
    b = np.where(small, 0.5, (1.0 - np.cos(safe)) / (safe * safe))
    return np.eye(3) + a * k + b * (k @ k)


def matrix_to_axis_angle(rotation: np.ndarray) -> np.ndarray:
    """Axis-angle vectors (angle in ``[0, pi]``) from rotation matrices.

    Shape:
        rotation: ``[..., 3, 3]``; output ``[..., 3]`` radians.
    """
    from scipy.spatial.transform import Rotation

    r = np.asarray(rotation, dtype=np.float64)
    flat = Rotation.from_matrix(r.reshape(-1, 3, 3)).as_rotvec()
    return flat.reshape(*r.shape[:-2], 3)


def orthonormal_6d(six: np.ndarray) -> np.ndarray:
    """The nearest valid rotations of 6D vectors, as 6D again (Gram-Schmidt on the two
    columns, :func:`hanet.metrics.rotation_6d_to_matrix`): what a filter or the network returns
    made a rotation before it is written or scored.

    Shape:
        six: ``[..., 6]``; output ``[..., 6]``.
    """
    matrix = rotation_6d_to_matrix(six)
    return np.concatenate([matrix[..., :, 0], matrix[..., :, 1]], axis=-1)


def to_matrices(rotations: np.ndarray, joints: int, interleaved: bool = False) -> np.ndarray:
    """Rotation matrices from matrices, 6D or axis-angle, by the trailing shape.

    Args:
        rotations: ``[..., J, 3, 3]`` matrices, ``[..., J, 6]`` 6D (layout as
            :func:`hanet.metrics.rotation_6d_to_matrix`, ``interleaved`` chooses) or
            ``[..., J, 3]`` axis-angle; a flat ``[..., J * 6]`` or ``[..., J * 3]`` is accepted.
        joints: J, to tell the forms apart.
        interleaved: the 6D layout.

    Shape:
        Output ``[..., J, 3, 3]``.
    """
    r = np.asarray(rotations, dtype=np.float64)
    if r.shape[-3:] == (joints, 3, 3):
        return r
    flat = r.ndim and r.shape[-1] in (joints * 6, joints * 3)
    if flat and r.shape[-2:] not in ((joints, 6), (joints, 3)):
        r = r.reshape(*r.shape[:-1], joints, r.shape[-1] // joints)
    if r.shape[-2:] == (joints, 6):
        return rotation_6d_to_matrix(r, interleaved)
    if r.shape[-2:] == (joints, 3):
        return axis_angle_to_matrix(r)
    raise ValueError(
        f"rotations of shape {r.shape} are not [..., {joints}, 3, 3], [..., {joints}, 6] or "
        f"[..., {joints}, 3]"
    )


def global_rotations(local: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """World rotations ``G_j = G_parent(j) @ R_j`` from local ones.

    Shape:
        local: ``[..., J, 3, 3]``; parents: ``[J]``; output ``[..., J, 3, 3]``.
    """
    parents = _check_parents(parents)
    local = np.asarray(local, dtype=np.float64)
    out = np.empty_like(local)
    out[..., 0, :, :] = local[..., 0, :, :]
    for j in range(1, len(parents)):
        out[..., j, :, :] = out[..., parents[j], :, :] @ local[..., j, :, :]
    return out


def local_rotations(world: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Local rotations ``R_j = G_parent(j)^T @ G_j`` from world ones (the root keeps its own).

    Shape:
        world: ``[..., J, 3, 3]``; parents: ``[J]``; output ``[..., J, 3, 3]``.
    """
    parents = _check_parents(parents)
    world = np.asarray(world, dtype=np.float64)
    out = np.empty_like(world)
    out[..., 0, :, :] = world[..., 0, :, :]
    parent = world[..., parents[1:], :, :]
    out[..., 1:, :, :] = np.swapaxes(parent, -1, -2) @ world[..., 1:, :, :]
    return out


def forward_kinematics(
    rotations: np.ndarray,
    offsets: np.ndarray,
    parents: np.ndarray,
    *,
    interleaved: bool = False,
) -> np.ndarray:
    """Joint positions from local joint rotations and the rest skeleton.

    Args:
        rotations: local rotations (the root's is the global orientation) as matrices, 6D or
            axis-angle, see :func:`to_matrices`.
        offsets: rest-pose bone vectors from each joint's parent, metres; ``offsets[0]`` is
            the root's position (zeros give root-relative output). One skeleton for every
            frame, or one per leading index.
        parents: parent index per joint, ``-1`` first, each parent before its children
            (e.g. :func:`layout_parents` of ``"smpl24"``).
        interleaved: the 6D layout when ``rotations`` are 6D.

    Returns:
        Joint positions, in the frame the root rotation maps into.

    Shape:
        rotations: ``[..., J, 3, 3]``, ``[..., J, 6]`` or ``[..., J, 3]``; offsets ``[J, 3]``
        or ``[..., J, 3]``; parents ``[J]``; output ``[..., J, 3]``.
    """
    parents = _check_parents(parents)
    joints = len(parents)
    offsets = np.asarray(offsets, dtype=np.float64)
    if offsets.shape[-2:] != (joints, 3):
        raise ValueError(f"offsets must be [..., {joints}, 3], got {offsets.shape}")
    world = global_rotations(to_matrices(rotations, joints, interleaved), parents)
    lead = np.broadcast_shapes(world.shape[:-3], offsets.shape[:-2])
    world = np.broadcast_to(world, (*lead, joints, 3, 3))
    offsets = np.broadcast_to(offsets, (*lead, joints, 3))
    out = np.empty((*lead, joints, 3))
    out[..., 0, :] = offsets[..., 0, :]
    for j in range(1, joints):
        p = parents[j]
        out[..., j, :] = out[..., p, :] + np.einsum(
            "...ik,...k->...i", world[..., p, :, :], offsets[..., j, :]
        )
    return out
