"""The live service's JSON: frames in, frames out, and every bad request named."""

import math

import numpy as np
import pytest

from hanet.live.api import BadRequest, check_stream_id, frames_answer, parse_frames, read_json


def _parse(data, joints=3, dims=2, max_frames=4):
    return parse_frames(data, joints, dims, max_frames)


def test_one_frame_several_frames_scores_and_missing_joints() -> None:
    one = _parse({"keypoints": [[1, 2], [3.5, 4], [5, 6]]})
    np.testing.assert_array_equal(one.poses[0], [[1, 2], [3.5, 4], [5, 6]])
    assert one.present.all() and one.image_size is None
    many = _parse(
        {
            "frames": [
                {"keypoints": [[1, 2, 0.9], [3, 4, 0], None]},  # zero score, null: missing
                {"keypoints": [[1, 2, None], [3, 4, 1], [5, 6, 1]]},  # null score: missing
            ],
            "image_size": [320, 240],
        }
    )
    assert many.present.tolist() == [[True, False, False], [False, True, True]]
    assert many.poses[0, 2].tolist() == [0, 0] and many.image_size == (320, 240)


@pytest.mark.parametrize(
    "data,status,message",
    [
        ([1, 2], 400, "one frame"),
        ({"keypoints": [], "frames": []}, 400, "one frame"),
        ({"frames": []}, 400, "non-empty list"),
        ({"frames": [{"keypoints": [[1, 2]] * 3}] * 5}, 413, "at most 4"),
        ({"keypoints": [[1, 2]] * 2}, 422, "2 joints, but the model expects 3"),
        ({"keypoints": [[1, 2, 3, 4]] * 3}, 400, "a joint is [2 coordinates]"),
        ({"keypoints": [[1, "x"]] * 3}, 400, '"x" is not a number'),
        ({"keypoints": [[1, True]] * 3}, 400, "true is not a number"),
        ({"keypoints": [[None, 1]] * 3}, 400, "a coordinate is null"),
        ({"keypoints": [[1e300, 1]] * 3}, 400, "not a finite float32"),
        ({"keypoints": [[1, 2]] * 3, "image_size": [0, 5]}, 400, "image_size"),
        ({"frames": [7]}, 400, "a frame is"),
    ],
)
def test_bad_requests_are_named(data, status: int, message: str) -> None:
    with pytest.raises(BadRequest, match=None) as err:
        _parse(data)
    assert err.value.status == status and message in str(err.value)


def test_json_refuses_non_finite_constants_and_garbage() -> None:
    for body in (b'{"keypoints": [[NaN, 1]]}', b'{"keypoints": [[Infinity, 1]]}', b"{", b"\xff"):
        with pytest.raises(BadRequest):
            read_json(body)
    with pytest.raises(BadRequest, match="not a finite"):
        _parse(read_json(b'{"keypoints": [[1e999, 1], [1, 1], [1, 1]]}'))


def test_stream_ids_and_answers() -> None:
    assert check_stream_id("cam-1_a.b") == "cam-1_a.b"
    for bad in ("", "../x", "-a", "a" * 129, "a b"):
        with pytest.raises(BadRequest):
            check_stream_id(bad)
    pose = np.array([[1.5, 2.0], [math.nan, math.nan]], np.float32)
    assert frames_answer([(7, pose)], ended=True) == {
        "frames": [{"index": 7, "keypoints": [[1.5, 2.0], None]}],
        "ended": True,
    }
