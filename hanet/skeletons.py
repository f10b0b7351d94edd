"""Joint layouts: joint names in storage order, root joints, bones and left/right mirror pairs.

A layout is a built-in (:data:`LAYOUTS`) or declared by the user in YAML::

    name: coco_body12
    joints: [l_shoulder, r_shoulder, l_elbow, r_elbow, ...]   # order = the order in the data
    roots: [l_hip, r_hip]                                      # their mean is the body centre
    bones: [l_shoulder-l_elbow, l_elbow-l_wrist, ...]           # "a-b" pairs, optional
    left_right: [l_shoulder-r_shoulder, l_elbow-r_elbow, ...]   # mirror pairs, optional

A :class:`JointLayout` is a frozen value: every sequence carries its own, and datasets and
checkpoints store the full definition, so nothing downstream depends on a file or a registry.
What needs bones (skeleton pictures, bone-length augmentation) or mirror pairs (mirroring)
is turned off for a layout that lacks them; :func:`warn_once` says so once per process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hanet.strict import ConfigError, read_yaml

log = logging.getLogger(__name__)

__all__ = [
    "H36M_TO_LSP14",
    "LAYOUTS",
    "JointLayout",
    "get_layout",
    "layout_from_mapping",
    "load_layout",
    "warn_once",
]


@dataclass(frozen=True)
class JointLayout:
    """A named joint order.

    Attributes:
        name: its name (a built-in's key, or the declared ``name``).
        joints: joint names in storage order.
        roots: indices of the joints whose mean is the body root (centre); all joints if none.
        bones: ``(parent, child)`` index pairs, for drawing and bone lengths; may be empty.
        left_right: ``(left, right)`` index pairs swapped by mirroring; may be empty.
    """

    name: str
    joints: tuple[str, ...]
    roots: tuple[int, ...]
    bones: tuple[tuple[int, int], ...] = ()
    left_right: tuple[tuple[int, int], ...] = ()

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        """Left/right joint pairs (the mirror pairs)."""
        return self.left_right

    def index(self, name: str) -> int:
        return self.joints.index(name)

    def root(self, poses: np.ndarray) -> np.ndarray:
        """Root position per frame, ``[..., J, D] -> [..., 1, D]``."""
        roots = list(self.roots) or list(range(self.num_joints))
        return poses[..., roots, :].mean(axis=-2, keepdims=True)

    def mirror_permutation(self) -> np.ndarray:
        """``[J]`` joint order after a mirror: each left joint takes its right partner's place."""
        order = np.arange(self.num_joints)
        for a, b in self.left_right:
            order[a], order[b] = b, a
        return order

    def to_mapping(self) -> dict[str, Any]:
        """The declared form (names, not indices), as stored in configs and manifests."""
        return {
            "name": self.name,
            "joints": list(self.joints),
            "roots": [self.joints[i] for i in self.roots],
            "bones": [f"{self.joints[a]}-{self.joints[b]}" for a, b in self.bones],
            "left_right": [f"{self.joints[a]}-{self.joints[b]}" for a, b in self.left_right],
        }


def _pairs(
    entries: Any, index: dict[str, int], key: str, where: str
) -> tuple[tuple[int, int], ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list | tuple):
        raise ConfigError(f"{where}: {key} must be a list of 'a-b' joint pairs")
    pairs = []
    for entry in entries:
        parts = str(entry).split("-") if isinstance(entry, str) else list(entry)
        if len(parts) != 2 or any(p not in index for p in parts) or parts[0] == parts[1]:
            raise ConfigError(
                f"{where}: {key} entry {entry!r} is not 'a-b' with two different known joints"
            )
        pairs.append((index[parts[0]], index[parts[1]]))
    return tuple(pairs)


def layout_from_mapping(raw: Any, where: str = "layout") -> JointLayout:
    """A layout from its declared form (see the module docstring).

    Raises:
        ConfigError: a missing name or joint list, a duplicate joint, or a root, bone or pair
            naming an unknown joint; the message starts with ``where``.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a layout is a mapping with name, joints, roots, ...")
    unknown = sorted(set(raw) - {"name", "joints", "roots", "bones", "left_right"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (name, joints, roots, bones, left_right)"
        )
    name, joints = raw.get("name"), raw.get("joints")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: name must be a non-empty string")
    if (
        not isinstance(joints, list | tuple)
        or not joints
        or not all(isinstance(j, str) and j for j in joints)
    ):
        raise ConfigError(f"{where}: joints must be a non-empty list of joint names")
    if len(set(joints)) != len(joints):
        twice = sorted({j for j in joints if list(joints).count(j) > 1})
        raise ConfigError(f"{where}: joint {twice[0]!r} is listed twice")
    index = {j: i for i, j in enumerate(joints)}
    roots = raw.get("roots") or []
    missing = [r for r in roots if r not in index]
    if missing:
        raise ConfigError(f"{where}: root {missing[0]!r} is not one of the joints")
    return JointLayout(
        name,
        tuple(joints),
        tuple(index[r] for r in roots),
        _pairs(raw.get("bones"), index, "bones", where),
        _pairs(raw.get("left_right"), index, "left_right", where),
    )


def load_layout(path: str | Path) -> JointLayout:
    """A layout declared in a YAML file.

    Raises:
        ConfigError: unreadable file, invalid YAML or an invalid layout; names the file.
    """
    return layout_from_mapping(read_yaml(Path(path), "joint layout"), str(path))


def _builtin(name: str, joints: str, roots: str, bones: str) -> JointLayout:
    names = joints.split()
    index = {n: i for i, n in enumerate(names)}
    # Built-in mirror pairs come from the l_/r_ name prefixes.
    mirror = [f"{n}-r_{n[2:]}" for n in names if n.startswith("l_") and f"r_{n[2:]}" in index]
    spec = {
        "name": name,
        "joints": names,
        "roots": roots.split(),
        "bones": bones.split(),
        "left_right": mirror,
    }
    return layout_from_mapping(spec, f"built-in layout {name}")


_COCO_FACE = "nose l_eye r_eye l_ear r_ear"
_COCO_BODY = (
    "l_shoulder r_shoulder l_elbow r_elbow l_wrist r_wrist l_hip r_hip l_knee r_knee l_ankle "
    "r_ankle"
)
_COCO_BODY_BONES = (
    "l_shoulder-r_shoulder l_shoulder-l_elbow l_elbow-l_wrist r_shoulder-r_elbow r_elbow-r_wrist "
    "l_shoulder-l_hip r_shoulder-r_hip l_hip-r_hip l_hip-l_knee l_knee-l_ankle r_hip-r_knee "
    "r_knee-r_ankle"
)
_COCO_FACE_BONES = "nose-l_eye nose-r_eye l_eye-l_ear r_eye-r_ear"
_FINGERS = ("thumb", "index", "middle", "ring", "pinky")
_HAND_JOINTS = "wrist " + " ".join(f"{f}{k}" for f in _FINGERS for k in range(1, 5))
_HAND_BONES = " ".join(
    f"wrist-{f}1 " + " ".join(f"{f}{k}-{f}{k + 1}" for k in range(1, 4)) for f in _FINGERS
)

LAYOUTS: dict[str, JointLayout] = {
    layout.name: layout
    for layout in (
        _builtin(
            "jhmdb",
            "neck belly face r_shoulder l_shoulder r_hip l_hip r_elbow l_elbow r_knee l_knee "
            "r_wrist l_wrist r_ankle l_ankle",
            "r_hip l_hip",
            "neck-face neck-belly neck-r_shoulder neck-l_shoulder r_shoulder-r_elbow "
            "r_elbow-r_wrist l_shoulder-l_elbow l_elbow-l_wrist belly-r_hip belly-l_hip "
            "r_hip-r_knee r_knee-r_ankle l_hip-l_knee l_knee-l_ankle",
        ),
        _builtin(
            "h36m17",
            "pelvis r_hip r_knee r_ankle l_hip l_knee l_ankle spine thorax nose head "
            "l_shoulder l_elbow l_wrist r_shoulder r_elbow r_wrist",
            "pelvis",
            "pelvis-r_hip r_hip-r_knee r_knee-r_ankle pelvis-l_hip l_hip-l_knee l_knee-l_ankle "
            "pelvis-spine spine-thorax thorax-nose nose-head thorax-l_shoulder "
            "l_shoulder-l_elbow l_elbow-l_wrist thorax-r_shoulder r_shoulder-r_elbow "
            "r_elbow-r_wrist",
        ),
        _builtin(
            "lsp14",
            "r_ankle r_knee r_hip l_hip l_knee l_ankle r_wrist r_elbow r_shoulder l_shoulder "
            "l_elbow l_wrist neck head_top",
            "r_hip l_hip",
            "r_ankle-r_knee r_knee-r_hip r_hip-l_hip l_hip-l_knee l_knee-l_ankle r_hip-neck "
            "l_hip-neck r_wrist-r_elbow r_elbow-r_shoulder r_shoulder-neck l_shoulder-neck "
            "l_shoulder-l_elbow l_elbow-l_wrist neck-head_top",
        ),
        _builtin(
            "coco17",
            f"{_COCO_FACE} {_COCO_BODY}",
            "l_hip r_hip",
            f"{_COCO_FACE_BONES} {_COCO_BODY_BONES}",
        ),
        # COCO without the face, as many trackers write it.
        _builtin("coco_body12", _COCO_BODY, "l_hip r_hip", _COCO_BODY_BONES),
        # Halpe-26 (AlphaPose): COCO-17, then head, neck, hip and the feet.
        _builtin(
            "halpe26",
            f"{_COCO_FACE} {_COCO_BODY} head neck hip l_big_toe r_big_toe l_small_toe "
            "r_small_toe l_heel r_heel",
            "l_hip r_hip",
            f"{_COCO_FACE_BONES} {_COCO_BODY_BONES} head-neck neck-l_shoulder neck-r_shoulder "
            "neck-hip l_ankle-l_heel l_ankle-l_big_toe l_big_toe-l_small_toe r_ankle-r_heel "
            "r_ankle-r_big_toe r_big_toe-r_small_toe",
        ),
        # OpenPose BODY_25.
        _builtin(
            "body25",
            "nose neck r_shoulder r_elbow r_wrist l_shoulder l_elbow l_wrist mid_hip r_hip "
            "r_knee r_ankle l_hip l_knee l_ankle r_eye l_eye r_ear l_ear l_big_toe l_small_toe "
            "l_heel r_big_toe r_small_toe r_heel",
            "mid_hip",
            "nose-neck neck-r_shoulder r_shoulder-r_elbow r_elbow-r_wrist neck-l_shoulder "
            "l_shoulder-l_elbow l_elbow-l_wrist neck-mid_hip mid_hip-r_hip r_hip-r_knee "
            "r_knee-r_ankle mid_hip-l_hip l_hip-l_knee l_knee-l_ankle nose-r_eye r_eye-r_ear "
            "nose-l_eye l_eye-l_ear l_ankle-l_big_toe l_big_toe-l_small_toe l_ankle-l_heel "
            "r_ankle-r_big_toe r_big_toe-r_small_toe r_ankle-r_heel",
        ),
        # One hand, 21 keypoints (OpenPose / MediaPipe order): wrist, then four per finger.
        _builtin("hand21", _HAND_JOINTS, "wrist", _HAND_BONES),
        _builtin(
            "mediapipe33",
            "nose l_eye_inner l_eye l_eye_outer r_eye_inner r_eye r_eye_outer l_ear r_ear "
            "l_mouth r_mouth l_shoulder r_shoulder l_elbow r_elbow l_wrist r_wrist l_pinky "
            "r_pinky l_index r_index l_thumb r_thumb l_hip r_hip l_knee r_knee l_ankle r_ankle "
            "l_heel r_heel l_foot_index r_foot_index",
            "l_hip r_hip",
            "nose-l_eye_inner l_eye_inner-l_eye l_eye-l_eye_outer l_eye_outer-l_ear "
            "nose-r_eye_inner r_eye_inner-r_eye r_eye-r_eye_outer r_eye_outer-r_ear "
            "l_mouth-r_mouth l_shoulder-r_shoulder l_shoulder-l_elbow l_elbow-l_wrist "
            "l_wrist-l_pinky l_wrist-l_index l_wrist-l_thumb r_shoulder-r_elbow "
            "r_elbow-r_wrist r_wrist-r_pinky r_wrist-r_index r_wrist-r_thumb l_shoulder-l_hip "
            "r_shoulder-r_hip l_hip-r_hip l_hip-l_knee l_knee-l_ankle l_ankle-l_heel "
            "l_heel-l_foot_index r_hip-r_knee r_knee-r_ankle r_ankle-r_heel "
            "r_heel-r_foot_index",
        ),
        _builtin(
            "smpl24",
            "pelvis l_hip r_hip spine1 l_knee r_knee spine2 l_ankle r_ankle spine3 l_foot "
            "r_foot neck l_collar r_collar head l_shoulder r_shoulder l_elbow r_elbow l_wrist "
            "r_wrist l_hand r_hand",
            "pelvis",
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


def get_layout(layout: str | JointLayout | dict[str, Any]) -> JointLayout:
    """A layout from a built-in name, a declared mapping, or itself.

    Raises:
        ConfigError: an unknown name (listing the known ones) or an invalid declaration.
    """
    if isinstance(layout, JointLayout):
        return layout
    if isinstance(layout, dict):
        return layout_from_mapping(layout)
    try:
        return LAYOUTS[layout]
    except KeyError:
        raise ConfigError(
            f"unknown joint layout {layout!r} (built-in: {', '.join(LAYOUTS)}; or the path of "
            "a layout YAML file)"
        ) from None


_warned: set[tuple[str, str]] = set()


def warn_once(layout: JointLayout, what: str) -> None:
    """Log once per process and layout that ``what`` is off because the layout lacks it."""
    if (layout.name, what) not in _warned:
        _warned.add((layout.name, what))
        log.warning("layout %s: %s", layout.name, what)
