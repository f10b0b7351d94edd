"""Joint layouts: names, root joints, left/right pairs and bones, in one registry.

Every sequence names its layout; windows, metrics and plots look the layout up here rather than
hard-coding indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class JointLayout:
    """A named joint order.

    Attributes:
        name: registry key.
        joints: joint names in storage order.
        roots: joints whose mean is the body root (3D data is made root-relative to it).
        bones: (parent, child) index pairs, for drawing.
    """

    name: str
    joints: tuple[str, ...]
    roots: tuple[int, ...]
    bones: tuple[tuple[int, int], ...]

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        """Left/right joint pairs, found from the ``l_``/``r_`` name prefixes."""
        index = {name: i for i, name in enumerate(self.joints)}
        pairs = []
        for i, name in enumerate(self.joints):
            if name.startswith("l_") and "r_" + name[2:] in index:
                pairs.append((i, index["r_" + name[2:]]))
        return tuple(pairs)

    def index(self, name: str) -> int:
        return self.joints.index(name)

    def root(self, poses: np.ndarray) -> np.ndarray:
        """Root position per frame, ``[..., J, D] -> [..., 1, D]``."""
        return poses[..., list(self.roots), :].mean(axis=-2, keepdims=True)


def _layout(name: str, joints: str, roots: tuple[str, ...], bones: str) -> JointLayout:
    names = tuple(joints.split())
    index = {n: i for i, n in enumerate(names)}
    assert len(index) == len(names), f"duplicate joint names in {name}"
    pairs = tuple((index[a], index[b]) for a, b in (edge.split("-") for edge in bones.split()))
    return JointLayout(name, names, tuple(index[r] for r in roots), pairs)


LAYOUTS: dict[str, JointLayout] = {
    layout.name: layout
    for layout in (
        _layout(
            "jhmdb",
            "neck belly face r_shoulder l_shoulder r_hip l_hip r_elbow l_elbow r_knee l_knee "
            "r_wrist l_wrist r_ankle l_ankle",
            ("r_hip", "l_hip"),
            "neck-face neck-belly neck-r_shoulder neck-l_shoulder r_shoulder-r_elbow "
            "r_elbow-r_wrist l_shoulder-l_elbow l_elbow-l_wrist belly-r_hip belly-l_hip "
            "r_hip-r_knee r_knee-r_ankle l_hip-l_knee l_knee-l_ankle",
        ),
        _layout(
            "h36m17",
            "pelvis r_hip r_knee r_ankle l_hip l_knee l_ankle spine thorax nose head "
            "l_shoulder l_elbow l_wrist r_shoulder r_elbow r_wrist",
            ("pelvis",),
            "pelvis-r_hip r_hip-r_knee r_knee-r_ankle pelvis-l_hip l_hip-l_knee l_knee-l_ankle "
            "pelvis-spine spine-thorax thorax-nose nose-head thorax-l_shoulder "
            "l_shoulder-l_elbow l_elbow-l_wrist thorax-r_shoulder r_shoulder-r_elbow "
            "r_elbow-r_wrist",
        ),
        _layout(
            "lsp14",
            "r_ankle r_knee r_hip l_hip l_knee l_ankle r_wrist r_elbow r_shoulder l_shoulder "
            "l_elbow l_wrist neck head_top",
            ("r_hip", "l_hip"),
            "r_ankle-r_knee r_knee-r_hip r_hip-l_hip l_hip-l_knee l_knee-l_ankle r_hip-neck "
            "l_hip-neck r_wrist-r_elbow r_elbow-r_shoulder r_shoulder-neck l_shoulder-neck "
            "l_shoulder-l_elbow l_elbow-l_wrist neck-head_top",
        ),
        _layout(
            "coco17",
            "nose l_eye r_eye l_ear r_ear l_shoulder r_shoulder l_elbow r_elbow l_wrist r_wrist "
            "l_hip r_hip l_knee r_knee l_ankle r_ankle",
            ("l_hip", "r_hip"),
            "nose-l_eye nose-r_eye l_eye-l_ear r_eye-r_ear l_shoulder-r_shoulder "
            "l_shoulder-l_elbow l_elbow-l_wrist r_shoulder-r_elbow r_elbow-r_wrist "
            "l_shoulder-l_hip r_shoulder-r_hip l_hip-r_hip l_hip-l_knee l_knee-l_ankle "
            "r_hip-r_knee r_knee-r_ankle",
        ),
        _layout(
            "mediapipe33",
            "nose l_eye_inner l_eye l_eye_outer r_eye_inner r_eye r_eye_outer l_ear r_ear "
            "l_mouth r_mouth l_shoulder r_shoulder l_elbow r_elbow l_wrist r_wrist l_pinky "
            "r_pinky l_index r_index l_thumb r_thumb l_hip r_hip l_knee r_knee l_ankle r_ankle "
            "l_heel r_heel l_foot_index r_foot_index",
            ("l_hip", "r_hip"),
            "nose-l_eye_inner l_eye_inner-l_eye l_eye-l_eye_outer l_eye_outer-l_ear "
            "nose-r_eye_inner r_eye_inner-r_eye r_eye-r_eye_outer r_eye_outer-r_ear "
            "l_mouth-r_mouth l_shoulder-r_shoulder l_shoulder-l_elbow l_elbow-l_wrist "
            "l_wrist-l_pinky l_wrist-l_index l_wrist-l_thumb r_shoulder-r_elbow "
            "r_elbow-r_wrist r_wrist-r_pinky r_wrist-r_index r_wrist-r_thumb l_shoulder-l_hip "
            "r_shoulder-r_hip l_hip-r_hip l_hip-l_knee l_knee-l_ankle l_ankle-l_heel "
            "l_heel-l_foot_index r_hip-r_knee r_knee-r_ankle r_ankle-r_heel "
            "r_heel-r_foot_index",
        ),
        _layout(
            "smpl24",
            "pelvis l_hip r_hip spine1 l_knee r_knee spine2 l_ankle r_ankle spine3 l_foot "
            "r_foot neck l_collar r_collar head l_shoulder r_shoulder l_elbow r_elbow l_wrist "
            "r_wrist l_hand r_hand",
            ("pelvis",),
            "pelvis-l_hip pelvis-r_hip pelvis-spine1 l_hip-l_knee r_hip-r_knee spine1-spine2 "
            "l_knee-l_ankle r_knee-r_ankle spine2-spine3 l_ankle-l_foot r_ankle-r_foot "
            "spine3-neck spine3-l_collar spine3-r_collar neck-head l_collar-l_shoulder "
            "r_collar-r_shoulder l_shoulder-l_elbow r_shoulder-r_elbow l_elbow-l_wrist "
            "r_elbow-r_wrist l_wrist-l_hand r_wrist-r_hand",
        ),
    )
}

# The published 3DPW files store 17 H36M-order joints; their loader reorders them to the LSP
# order and keeps the first 14.
H36M_TO_LSP14 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)


def get_layout(name: str) -> JointLayout:
    """Look a layout up by name; an unknown name is a ValueError listing the known ones."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown joint layout {name!r} (known: {', '.join(LAYOUTS)})") from None
