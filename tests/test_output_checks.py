"""hanet.output_checks: refined poses that are not finite, not of the input's shape or far
outside the input's own extent are refused, naming the sequence, frame and joint."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from posedata import seq2d

from hanet.data.schema import validate_sequence
from hanet.output_checks import RefinedPoseError, check_refined


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
