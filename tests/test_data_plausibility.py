"""hanet.data.plausibility: absurd but finite values are found in every layout and unit, while
the bundled sample and ordinary detection failures pass; body sizes in the wrong units warn."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hanet.data.plausibility import (
    LIMIT,
    _median,
    clear_of_implausible,
    find_implausible,
    nanmedian_rows,
    outside_reference,
    reference,
    references,
    units_problem,
    units_problem_of,
)
from hanet.data.schema import SchemaError, implausibility, validate_sequence
from hanet.formats.published import find_published_pairs, read_published_pair
from hanet.io.location import parse_location
from hanet.skeletons import LAYOUTS

IMAGE = (1920, 1080)


def walking(
    joints: int,
    dims: int,
    height: float,
    frames: int = 60,
    travel: float = 0.0,
    seed: int = 0,
    origin: float = 0.0,
) -> np.ndarray:
    """A body ``height`` tall (joints scattered over it) that walks ``travel`` along x, with
    jitter: ``[frames, joints, dims]`` float32."""
    rng = np.random.default_rng(seed)
    body = rng.uniform(-0.5, 0.5, (joints, dims)) * height * np.r_[0.4, 1.0, 0.3][:dims]
    path = np.zeros((frames, 1, dims))
    path[:, 0, 0] = np.linspace(0.0, travel, frames)
    jitter = rng.normal(0.0, 0.01 * height, (frames, joints, dims))
    return (origin + body[None] + path + jitter).astype(np.float32)


def rotations(joints: int = 24, frames: int = 40, seed: int = 0) -> np.ndarray:
    """Random rotations as 6D (first two matrix columns): ``[frames, joints, 6]``."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(frames, joints, 3, 3))
    matrices, _ = np.linalg.qr(q)
    return matrices[..., :2].transpose(0, 1, 3, 2).reshape(frames, joints, 6).astype(np.float32)


def _all(poses: np.ndarray) -> np.ndarray:
    return np.ones(poses.shape[:2], dtype=bool)


# ----------------------------------------------------------------------------------------------
# What must pass


@pytest.fixture(scope="module")
def sample_sequences(sample_dir: Path):
    root = parse_location(sample_dir)
    found = []
    for dataset, representation, layout in [
        ("mocap2d", "2D", "jhmdb"),
        ("mocap3d", "3D", "h36m17"),
        ("mocapsmpl", "smpl", "smpl24"),
    ]:
        for pair in find_published_pairs(root, dataset, None):
            found += read_published_pair(pair, layout, representation, 30.0)
    return found


def test_the_bundled_sample_is_plausible_in_the_units_it_declares(sample_sequences) -> None:
    assert {s.representation for s in sample_sequences} == {"2D", "3D", "smpl"}
    for seq in sample_sequences:
        for poses, mask in ((seq.pred, seq.observed()), (seq.gt, seq.labelled_joints())):
            assert find_implausible(poses, mask, seq.representation, seq.image_size) is None
            assert units_problem(poses, mask, seq.representation, seq.image_size) is None


def _snapped_to_the_far_corner(x: np.ndarray) -> np.ndarray:
    x[10:14, 3] = (IMAGE[0] - 1, IMAGE[1] - 1)  # a wrist detected on the other side
    return x


def _track_switch(x: np.ndarray) -> np.ndarray:
    x[20:26] += np.float32(1700.0)  # the tracker followed another person for six frames
    x[20:26] = np.minimum(x[20:26], IMAGE[0])
    return x


def _collapsed(x: np.ndarray) -> np.ndarray:
    x[:40] = x[:40, :1]  # most frames: every joint at one point (a failed estimate)
    return x


def _zeros_for_missing(x: np.ndarray) -> np.ndarray:
    x[::3, 5] = 0.0  # missing joints reported at the image origin, unmarked
    return x


def _swapped(x: np.ndarray) -> np.ndarray:
    x[30:40, [3, 4]] = x[30:40, [4, 3]]
    return x


def _single_joint_frames(x: np.ndarray) -> np.ndarray:
    x[5:8, 1:] = np.nan  # only one joint seen
    return x


@pytest.mark.parametrize(
    "failure",
    [
        _snapped_to_the_far_corner,
        _track_switch,
        _collapsed,
        _zeros_for_missing,
        _swapped,
        _single_joint_frames,
    ],
)
def test_ordinary_2d_detection_failures_pass(failure: Callable[[np.ndarray], np.ndarray]) -> None:
    # A small person (80 px tall) in a full-HD frame makes every failure as large as it gets.
    x = failure(walking(15, 2, height=80.0, travel=300.0, origin=800.0))
    mask = ~np.isnan(x).any(axis=-1)
    x = np.nan_to_num(x)
    assert find_implausible(x, mask, "2D", IMAGE) is None
    assert units_problem(x, mask, "2D", IMAGE) is None


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_people_who_move_a_lot_pass_in_every_layout_and_unit(layout: str) -> None:
    joints = LAYOUTS[layout].num_joints
    cases = [
        (walking(joints, 2, 300.0, travel=1500.0, origin=100.0), "2D", IMAGE),
        (walking(joints, 2, 0.3, travel=0.6), "2D", (1, 1)),  # normalised image coordinates
        (walking(joints, 3, 1.7, frames=300, travel=25.0), "3D", None),  # 25 m in 10 s
    ]
    stand_then_run = walking(joints, 3, 1.7, frames=100)
    stand_then_run[80:, :, 0] += np.linspace(0.0, 12.0, 20)[:, None]  # 12 m in the last fifth
    cases.append((stand_then_run, "3D", None))
    for poses, representation, image in cases:
        assert find_implausible(poses, _all(poses), representation, image) is None
        assert units_problem(poses, _all(poses), representation, image) is None
    smpl = rotations(joints)
    assert find_implausible(smpl, _all(smpl), "smpl") is None
    assert units_problem(smpl, _all(smpl), "smpl") is None


# ----------------------------------------------------------------------------------------------
# What must be found


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize(
    ("representation", "image", "poses", "absurd"),
    [
        ("2D", IMAGE, lambda j: walking(j, 2, 300.0, origin=500.0), (1e6, 400.0)),
        ("2D", None, lambda j: walking(j, 2, 300.0, origin=500.0), (-1e5, 400.0)),
        ("2D", (1, 1), lambda j: walking(j, 2, 0.3, origin=0.5), (120.0, 0.5)),
        ("3D", None, lambda j: walking(j, 3, 1.7), (0.1, 1000.0, 0.2)),
        ("3D", None, lambda j: walking(j, 3, 1.7), (3e38, 0.0, 0.0)),  # overflows float32 maths
        ("smpl", None, lambda j: rotations(j), (1.0, 0.0, 0.0, 0.0, 1e3, 0.0)),
    ],
)
def test_one_absurd_joint_is_found_with_frame_and_joint(
    layout: str, representation: str, image, poses, absurd
) -> None:
    x = poses(LAYOUTS[layout].num_joints)
    joint = LAYOUTS[layout].num_joints - 2
    x[17, joint] = absurd
    found = find_implausible(x, _all(x), representation, image)
    assert found is not None and (found.frame, found.joint, found.count) == (17, joint, 1)
    assert found.ratio > LIMIT and found.value == pytest.approx(absurd)
    text = found.describe("l_wrist")
    assert text.startswith(f"frame 17, joint {joint} (l_wrist) at (") and "implausible" in text
    masked = _all(x)
    masked[17, joint] = False  # a joint the source marked missing is not judged
    assert find_implausible(x, masked, representation, image) is None


@pytest.mark.parametrize(
    ("representation", "image", "poses", "offset"),
    [
        ("2D", IMAGE, walking(15, 2, 300.0, origin=500.0), 1e6),
        ("3D", None, walking(17, 3, 1.7, travel=5.0), 1e4),
    ],
)
def test_a_whole_frame_moved_absurdly_far_is_found(representation, image, poses, offset) -> None:
    poses[33:35] += np.float32(offset)  # a sentinel frame: the pose is intact, its place is not
    found = find_implausible(poses, _all(poses), representation, image)
    assert found is not None and found.frame == 33 and found.count == 2 * poses.shape[1]
    assert "the sequence's centre" in found.describe()


def test_refined_output_is_judged_against_its_input() -> None:
    x = walking(15, 2, 200.0, travel=400.0, origin=300.0)
    ref = reference(x, _all(x), "2D")
    assert outside_reference(x + 5.0, ref, IMAGE) is None
    broken = x.copy()
    broken[8, 2] = (3e7, 1.0)  # what damaged but finite weights give
    found = outside_reference(broken, ref, IMAGE)
    assert found is not None and (found.frame, found.joint) == (8, 2)
    assert "the input's poses" in found.describe()
    smpl = rotations()
    smpl_ref = reference(smpl, _all(smpl), "smpl")
    assert outside_reference(smpl * 1.5, smpl_ref) is None
    assert outside_reference(smpl * 500, smpl_ref) is not None


@pytest.mark.parametrize(
    ("representation", "image", "poses", "says"),
    [
        ("2D", IMAGE, walking(15, 2, 1.7, origin=2.0), "metres or normalised coordinates"),
        ("2D", (320, 240), walking(15, 2, 0.3, origin=0.5), "metres or normalised coordinates"),
        ("2D", (320, 240), walking(15, 2, 3000.0, origin=1e3), "pixels of a larger image"),
        ("3D", None, walking(17, 3, 1700.0), "millimetres or centimetres"),
        ("3D", None, walking(17, 3, 170.0), "millimetres or centimetres"),
        ("3D", None, walking(17, 3, 0.01), "another unit"),
        ("smpl", None, rotations() * 40, "unit vectors"),
    ],
)
def test_body_sizes_that_do_not_fit_the_units_are_named(representation, image, poses, says):
    problem = units_problem(poses, _all(poses), representation, image)
    assert problem is not None and says in problem
    # The refinement judges from the reference it measures anyway: the same words.
    assert units_problem_of(reference(poses, _all(poses), representation), image) == problem
    assert find_implausible(poses, _all(poses), representation, image) is None  # only a warning


@pytest.mark.parametrize("shape", [(7, 15), (9, 14, 2), (5, 1, 3), (4, 26)])
@pytest.mark.parametrize("holes", [0.0, 0.3, 1.0])
def test_nanmedian_rows_is_numpys_nanmedian(shape: tuple[int, ...], holes: float) -> None:
    """Rows with and without NaN, odd and even row lengths, all-NaN rows: numpy's answer."""
    rng = np.random.default_rng(len(shape) + int(holes * 10))
    values = rng.normal(size=shape).astype(np.float32)
    values[rng.random(shape) < holes] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns of all-NaN rows
        expected = np.nanmedian(values, axis=1)
    np.testing.assert_array_equal(nanmedian_rows(values), expected)


@pytest.mark.parametrize("length", [1, 2, 7, 60, 61])
def test_the_body_size_median_is_numpys(length: int) -> None:
    values = np.random.default_rng(length).gamma(2.0, 30.0, length).astype(np.float32)
    assert _median(values) == np.median(values) and _median(values).dtype == np.float32


def test_the_joint_screen_never_clears_what_the_exact_check_flags(sample_sequences) -> None:
    """clear_of_implausible judges many sequences at once with bounds in place of medians: it
    must clear the ordinary sample (or it would save nothing) and never clear a sequence in
    which find_implausible finds something: absurd joints, moved frames, overflowing values,
    next to and between ordinary ones; and implausibility() then names exactly those."""
    cases: list[tuple[np.ndarray, np.ndarray, tuple[int, int] | None]] = []
    for seq in sample_sequences:
        if seq.representation != "smpl":
            cases.append((seq.pred, seq.observed(), seq.image_size))
    ordinary = len(cases)
    for failure in (_snapped_to_the_far_corner, _track_switch, _collapsed, _single_joint_frames):
        x = failure(walking(15, 2, 300.0, origin=500.0))
        cases.append((np.nan_to_num(x), ~np.isnan(x).any(axis=-1), IMAGE))
    for absurd in ((1e6, 400.0), (-1e5, 400.0), (3e38, 0.0)):
        x = walking(15, 2, 300.0, origin=500.0)
        x[17, 13] = absurd
        cases.append((x, _all(x), None))
    moved = walking(17, 3, 1.7, travel=5.0)
    moved[33:35] += np.float32(1e4)
    cases.append((moved, _all(moved), None))
    nothing = walking(15, 2, 300.0)
    cases.append((nothing, np.zeros(nothing.shape[:2], bool), None))
    for shape in {p.shape[1:] for p, _, _ in cases}:
        group = [(p, m) for p, m, _ in cases if p.shape[1:] == shape]
        clear = clear_of_implausible([p for p, _ in group], [m for _, m in group])
        for (poses, mask), cleared in zip(group, clear, strict=True):
            found = find_implausible(poses, mask, "2D" if shape[-1] == 2 else "3D")
            assert not (cleared and found is not None), found
        usual = [(p, m) for p, m, _ in cases[:ordinary] if p.shape[1:] == shape]
        if usual:  # the sample alone: all of it cleared
            assert clear_of_implausible([p for p, _ in usual], [m for _, m in usual]).all()


def test_implausibility_names_what_validation_one_by_one_names(sample_sequences) -> None:
    good = [s for s in sample_sequences if s.representation == "2D"][:3]
    bad_pred = dataclasses.replace(good[0], sequence_id="bad_pred", pred=good[0].pred.copy())
    bad_pred.pred[4, 2] = (1e7, 1e7)
    bad_truth = dataclasses.replace(good[1], sequence_id="bad_truth", gt=good[1].gt.copy())
    bad_truth.gt[9, 5] = (-1e7, 3.0)
    sequences = [good[0], bad_pred, good[1], bad_truth, good[2]]
    found = implausibility(sequences)
    for seq, problem in zip(sequences, found, strict=True):
        try:
            validate_sequence(seq)
            expected = None
        except SchemaError as err:
            expected = str(err)
        assert (None if problem is None else str(problem)) == expected
    assert [problem is not None for problem in found] == [False, True, False, True, False]


@pytest.mark.parametrize("representation", ["2D", "3D", "smpl"])
def test_references_of_many_sequences_are_each_ones_own(representation) -> None:
    rng = np.random.default_rng(3)
    sequences = []
    for frames in (40, 1, 17, 25):
        if representation == "smpl":
            poses = rotations()[:frames]
        else:
            dims = 2 if representation == "2D" else 3
            poses = walking(15, dims, 200.0 if dims == 2 else 1.7, travel=50.0, origin=300.0)
            poses = poses[:frames] + rng.normal(0, 3, poses[:frames].shape).astype(np.float32)
        mask = rng.random(poses.shape[:2]) > 0.3
        mask[:, 0] = True
        if frames > 1:
            mask[frames // 2] = False  # a frame with nothing observed
        sequences.append((poses, mask))
    together = references([p for p, _ in sequences], [m for _, m in sequences], representation)
    for (poses, mask), ref in zip(sequences, together):
        alone = reference(poses, mask, representation)
        assert ref.representation == alone.representation and ref.scale == alone.scale
        for got, want in ((ref.low, alone.low), (ref.high, alone.high)):
            assert (got is None and want is None) or np.array_equal(got, want)
