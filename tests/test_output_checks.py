"""hanet.output_checks: refined poses that are not finite, not of the input's shape or far
outside the input's own extent are refused, naming the sequence, frame and joint."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from posedata import seq2d

from hanet.data.plausibility import reference
from hanet.data.schema import validate_sequence
from hanet.output_checks import RefinedPoseError, check_refined, check_refined_many


@pytest.fixture
def original():
    return validate_sequence(seq2d(30, "clip_a", source="/in/a.parquet"))


def _refined(original, change=None):
    pred = original.pred + 2.0
    if change is not None:
        change(pred)
    return dataclasses.replace(original, pred=pred.astype(np.float32))


def test_a_close_refinement_passes(original) -> None:
    check_refined(original, _refined(original))


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda p: p.__setitem__((7, 3, 0), np.nan), "not finite (NaN or inf) at frame 7, joint 3"),
        (lambda p: p.__setitem__((slice(None),), np.nan), "450 joint(s) in all"),
        (lambda p: p.__setitem__((2, 14, 1), np.inf), "at frame 2, joint 14 (l_ankle)"),
        (lambda p: p.__setitem__((9, 0), (4e8, 1.0)), "frame 9, joint 0 (neck) at (4e+08, 1)"),
    ],
)
def test_broken_refinements_are_refused(original, change, says) -> None:
    with pytest.raises(RefinedPoseError) as err:
        check_refined(original, _refined(original, change))
    message = str(err.value)
    assert message.startswith("/in/a.parquet: sequence 'clip_a': refined poses")
    assert says in message and "nothing was written" in message and "\n" not in message


def test_another_shape_is_refused(original) -> None:
    short = dataclasses.replace(original, pred=original.pred[:-1])
    with pytest.raises(RefinedPoseError, match=r"shape \(29, 15, 2\), the input \(30, 15, 2\)"):
        check_refined(original, short)


def _several(representation: str = "2D") -> list:
    """Four validated sequences of different lengths (one with a frame not observed)."""
    out = []
    for i, frames in enumerate((30, 1, 12, 45)):
        seq = seq2d(frames, f"clip_{i}", source="/in/b.parquet")
        if representation == "3D":
            poses = np.concatenate([seq.pred, seq.pred[..., :1]], axis=-1) / 100.0
            seq = dataclasses.replace(
                seq, pred=poses, gt=None, representation="3D", image_size=None
            )
        out.append(validate_sequence(seq))
    out[3].joint_mask[5] = False
    return out


@pytest.mark.parametrize("representation", ["2D", "3D"])
def test_many_sequences_are_checked_as_each_alone(representation) -> None:
    originals = _several(representation)
    refs = [reference(s.pred, s.observed(), s.representation) for s in originals]
    rng = np.random.default_rng(0)
    refined = [(s.pred + rng.normal(0, 0.5, s.pred.shape)).astype(np.float32) for s in originals]
    together = check_refined_many(originals, refined, refs)
    alone = [
        check_refined(s, dataclasses.replace(s, pred=p), r)
        for s, p, r in zip(originals, refined, refs)
    ]
    assert together == pytest.approx(alone, rel=1e-9) and all(d > 0 for d in together)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.__setitem__((0, 3, 0), np.nan),
        lambda p: p.__setitem__((0, 0), (4e8, 1.0)),
        lambda p: p.__setitem__((0, 2, 1), -np.inf),
    ],
)
@pytest.mark.parametrize("bad", [1, 3])
def test_many_sequences_fail_as_the_first_bad_one_alone(change, bad) -> None:
    originals = _several()
    refs = [reference(s.pred, s.observed(), s.representation) for s in originals]
    refined = [s.pred + 2.0 for s in originals]
    change(refined[bad])
    with pytest.raises(RefinedPoseError) as together:
        check_refined_many(originals, refined, refs)
    with pytest.raises(RefinedPoseError) as alone:
        check_refined(originals[bad], dataclasses.replace(originals[bad], pred=refined[bad]))
    assert str(together.value) == str(alone.value)
    assert f"sequence 'clip_{bad}'" in str(together.value)


def test_a_point_near_the_picture_is_forgiven_in_many_as_alone() -> None:
    originals = _several()
    # A person a few pixels tall: a joint at the image's far corner is hundreds of body sizes
    # outside the input's extent, but inside the margin that 2D outputs are allowed.
    originals[2] = dataclasses.replace(originals[2], pred=originals[2].pred / 50)
    refs = [reference(s.pred, s.observed(), s.representation) for s in originals]
    refined = [s.pred + 0.01 for s in originals]
    width, height = originals[2].image_size
    refined[2][0, 0] = (2 * width - 1, 2 * height - 1)
    assert (2 * width - 1 - refs[2].high[0]) / refs[2].scale > 100  # flagged but for the image
    assert len(check_refined_many(originals, refined, refs)) == 4
    without_image = [dataclasses.replace(s, image_size=None) for s in originals]
    with pytest.raises(RefinedPoseError, match="sequence 'clip_2'.*frame 0, joint 0"):
        check_refined_many(without_image, refined, refs)
