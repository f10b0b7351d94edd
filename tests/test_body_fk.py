"""Forward kinematics of a joint tree (hanet.body_fk), and its round trip with the bundled SMPL
sample that scripts/make_sample.py built with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hanet.body_fk import (
    axis_angle_to_matrix,
    forward_kinematics,
    global_rotations,
    layout_parents,
    local_rotations,
    matrix_to_axis_angle,
    to_matrices,
)
from hanet.skeletons import get_layout

SMPL = get_layout("smpl24")
PARENTS = layout_parents(SMPL)
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
# SMPL's kinematic tree as the body model ships it (kintree_table[0], root -1)
SMPL_KINTREE = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


def _offsets(seed: int = 0) -> np.ndarray:
    offsets = np.random.default_rng(seed).uniform(-0.3, 0.3, (SMPL.num_joints, 3))
    offsets[0] = 0.0
    return offsets


def _subtree(joint: int) -> set[int]:
    out = {joint}
    for j in range(joint + 1, len(PARENTS)):
        if PARENTS[j] in out:
            out.add(j)
    return out


def test_smpl_parents_are_the_body_models() -> None:
    assert PARENTS.tolist() == SMPL_KINTREE
    with pytest.raises(ValueError):
        forward_kinematics(np.zeros((1, 3, 3)), np.zeros((3, 3)), np.array([-1, 2, 0]))


@pytest.mark.parametrize("form", ["matrix", "6d", "axis_angle", "flat_axis_angle"])
def test_identity_rotations_give_the_rest_pose(form: str) -> None:
    offsets = _offsets()
    frames, joints = 3, SMPL.num_joints
    rotations = {
        "matrix": np.broadcast_to(np.eye(3), (frames, joints, 3, 3)),
        "6d": np.tile([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], (frames, joints, 1)),
        "axis_angle": np.zeros((frames, joints, 3)),
        "flat_axis_angle": np.zeros((frames, joints * 3)),
    }[form]
    positions = forward_kinematics(rotations, offsets, PARENTS)
    rest = np.zeros((joints, 3))
    for j in range(1, joints):
        rest[j] = rest[PARENTS[j]] + offsets[j]  # bone vectors summed down the chain
    assert positions.shape == (frames, joints, 3)
    np.testing.assert_allclose(positions, np.broadcast_to(rest, positions.shape), atol=1e-12)


@pytest.mark.parametrize("joint", ["l_shoulder", "spine1", "r_hip", "pelvis", "l_hand"])
def test_rotating_one_joint_moves_exactly_its_subtree(joint: str) -> None:
    offsets = _offsets(1)
    index = SMPL.index(joint)
    rotation = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    local = np.broadcast_to(np.eye(3), (1, SMPL.num_joints, 3, 3)).copy()
    rest = forward_kinematics(local, offsets, PARENTS)[0]
    local[0, index] = rotation
    moved = forward_kinematics(local, offsets, PARENTS)[0]
    below = _subtree(index) - {index}
    for j in range(SMPL.num_joints):
        if j in below:
            # the subtree turns rigidly about the joint itself
            expected = rest[index] + rotation @ (rest[j] - rest[index])
            np.testing.assert_allclose(moved[j], expected, atol=1e-12)
            assert np.linalg.norm(moved[j] - rest[j]) > 1e-3
        else:
            np.testing.assert_allclose(moved[j], rest[j], atol=1e-12)


def test_rotation_forms_agree_and_local_global_round_trip() -> None:
    rng = np.random.default_rng(2)
    rot = Rotation.random(5 * SMPL.num_joints, random_state=3).as_matrix().reshape(5, -1, 3, 3)
    offsets = _offsets(3)
    by_matrix = forward_kinematics(rot, offsets, PARENTS)
    six = np.concatenate([rot[..., :, 0], rot[..., :, 1]], axis=-1)
    interleaved = rot[..., :, :2].reshape(5, SMPL.num_joints, 6)  # [R00, R01, R10, R11, ...]
    axis_angle = matrix_to_axis_angle(rot)
    np.testing.assert_allclose(forward_kinematics(six, offsets, PARENTS), by_matrix, atol=1e-12)
    np.testing.assert_allclose(
        forward_kinematics(interleaved, offsets, PARENTS, interleaved=True), by_matrix, atol=1e-12
    )
    np.testing.assert_allclose(
        forward_kinematics(axis_angle.reshape(5, -1), offsets, PARENTS), by_matrix, atol=1e-12
    )
    np.testing.assert_allclose(axis_angle_to_matrix(axis_angle), rot, atol=1e-12)
    np.testing.assert_allclose(axis_angle_to_matrix(np.zeros(3)), np.eye(3))
    world = global_rotations(rot, PARENTS)
    np.testing.assert_allclose(local_rotations(world, PARENTS), rot, atol=1e-12)
    # one skeleton per sequence broadcasts against the frames; a per-frame one is accepted too
    per_frame = np.broadcast_to(offsets, (5, *offsets.shape))
    np.testing.assert_allclose(forward_kinematics(rot, per_frame, PARENTS), by_matrix)
    with pytest.raises(ValueError):
        to_matrices(rng.normal(size=(5, SMPL.num_joints, 4)), SMPL.num_joints)


def _smpl_sample(split: str) -> tuple[dict, dict]:
    gt = SAMPLE / "groundtruth_poses" / "mocapsmpl" / f"mocapsmpl_gt_{split}.npz"
    det = SAMPLE / "detected_poses" / "mocapsmpl" / "pare" / f"mocapsmpl_pare_{split}.npz"
    with np.load(gt, allow_pickle=True) as g, np.load(det, allow_pickle=True) as d:
        return dict(g), dict(d)


@pytest.mark.parametrize("split", ["train", "test"])
def test_round_trip_with_the_generator(split: str) -> None:
    """FK of the stored pose over the stored skeleton gives the stored joints, for the ground
    truth and the detections (which share the true skeleton), to the 2^-12 m rounding."""
    gt, det = _smpl_sample(split)
    for pose, pred, joints, pred_joints, offsets in zip(
        gt["pose"], det["pose"], gt["joints_3d"], det["joints_3d"], gt["skeleton_offsets"]
    ):
        offsets = np.asarray(offsets, np.float64)
        assert offsets.shape == (24, 3) and not offsets[0].any()
        for rotations, stored in ((pose, joints), (pred, pred_joints)):
            frames = len(rotations)
            positions = forward_kinematics(np.asarray(rotations, np.float64), offsets, PARENTS)
            stored = np.asarray(stored, np.float64).reshape(frames, 24, 3)
            assert np.abs(positions - stored).max() <= 2.0**-13 + 1e-6
        # the rest skeleton is a T-pose: the arms point along +x (left) and -x (right)
        for side, sign in (("l", 1.0), ("r", -1.0)):
            bone = offsets[SMPL.index(f"{side}_elbow")]
            assert sign * bone[0] > 0.95 * np.linalg.norm(bone)
