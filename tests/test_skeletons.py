"""hanet.skeletons: built-in and declared joint layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hanet.skeletons import LAYOUTS, get_layout, layout_from_mapping, load_layout
from hanet.strict import ConfigError

BODY12 = {
    "name": "body12",
    "joints": ["l_shoulder", "r_shoulder", "l_hip", "r_hip", "l_knee", "r_knee"],
    "roots": ["l_hip", "r_hip"],
    "bones": ["l_shoulder-l_hip", "r_shoulder-r_hip", "l_hip-l_knee", "r_hip-r_knee"],
    "left_right": ["l_shoulder-r_shoulder", "l_hip-r_hip", "l_knee-r_knee"],
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_builtins_are_consistent(name: str) -> None:
    layout = LAYOUTS[name]
    assert len(set(layout.joints)) == layout.num_joints and layout.roots
    perm = layout.mirror_permutation()
    assert sorted(perm.tolist()) == list(range(layout.num_joints))
    assert (perm[perm] == np.arange(layout.num_joints)).all()  # mirroring twice is the identity
    for left, right in layout.left_right:
        assert layout.joints[left][2:] == layout.joints[right][2:]
    assert layout_from_mapping(layout.to_mapping()) == layout


def test_builtin_joint_counts() -> None:
    counts = {n: LAYOUTS[n].num_joints for n in ("coco_body12", "halpe26", "body25", "hand21")}
    assert counts == {"coco_body12": 12, "halpe26": 26, "body25": 25, "hand21": 21}
    assert LAYOUTS["coco_body12"].joints == LAYOUTS["coco17"].joints[5:]
    assert LAYOUTS["hand21"].left_right == () and len(LAYOUTS["hand21"].bones) == 20


def test_declared_layout_from_yaml(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "body12.yaml"
    path.write_text(yaml.safe_dump(BODY12))
    layout = load_layout(path)
    assert layout.num_joints == 6 and layout.roots == (2, 3)
    assert layout.left_right == ((0, 1), (2, 3), (4, 5)) and len(layout.bones) == 4
    poses = np.arange(6 * 2, dtype=float).reshape(1, 6, 2)
    np.testing.assert_allclose(layout.root(poses)[0, 0], poses[0, 2:4].mean(axis=0))
    bare = layout_from_mapping({"name": "bare", "joints": ["a", "b", "c"]})
    assert bare.bones == () and bare.left_right == () and bare.roots == ()
    np.testing.assert_allclose(bare.root(poses[:, :3])[0, 0], poses[0, :3].mean(axis=0))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"joints": ["a", "a"]}, "joint 'a' is listed twice"),
        ({"roots": ["nose"]}, "root 'nose' is not one of the joints"),
        ({"bones": ["l_hip-pelvis"]}, "bones entry 'l_hip-pelvis'"),
        ({"left_right": ["l_hip"]}, "left_right entry 'l_hip'"),
        ({"name": ""}, "name must be a non-empty string"),
        ({"colour": "red"}, "unknown key 'colour'"),
    ],
)
def test_bad_declarations_name_the_problem(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        layout_from_mapping({**BODY12, **change}, "my.yaml")


def test_unknown_names_list_the_builtins() -> None:
    with pytest.raises(ConfigError, match="unknown joint layout 'nope'.*coco_body12"):
        get_layout("nope")
    assert get_layout(LAYOUTS["jhmdb"]) is LAYOUTS["jhmdb"]
