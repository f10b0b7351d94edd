"""Causal windows: which window and position each frame is read from, padding, per-window
gap filling."""

import numpy as np
import pytest

from hanet.data.causal import (
    causal_ends,
    causal_sources,
    causal_windows,
    fill_windows,
    tail_positions,
)


@pytest.mark.parametrize("frames", [1, 2, 3, 7, 30])
@pytest.mark.parametrize("lookahead", [0, 1, 4])
def test_every_frame_is_read_from_the_window_ending_k_later(frames: int, lookahead: int) -> None:
    size = 5
    ends = causal_ends(frames, lookahead)
    window, position = causal_sources(frames, lookahead, size)
    for t in range(frames):
        end = ends[window[t]]
        assert end == min(t + lookahead, frames - 1)  # never a later frame than t + k
        assert end - (size - 1) + position[t] == t  # the position holds frame t
    # One window per frame that is final before the end, plus the last one.
    assert len(ends) == frames - min(lookahead, frames - 1)
    np.testing.assert_array_equal(tail_positions(2, lookahead, size), [3, 4])


def test_lookahead_must_fit_the_window() -> None:
    with pytest.raises(ValueError, match="lookahead"):
        causal_sources(10, 5, 5)


def test_windows_are_start_padded_with_the_first_frame() -> None:
    pred = np.arange(6, dtype=np.float32).reshape(6, 1, 1) * np.ones((1, 2, 2), np.float32)
    present = np.ones((6, 2), dtype=bool)
    windows, valid, empty = causal_windows(pred, present, np.array([1, 5]), 4)
    np.testing.assert_array_equal(windows[0, :, 0, 0], [0, 0, 0, 1])
    np.testing.assert_array_equal(windows[1, :, 0, 0], [2, 3, 4, 5])
    np.testing.assert_array_equal(valid, [[False, False, True, True], [True] * 4])
    assert not empty.any()


def test_gaps_are_filled_from_the_window_alone() -> None:
    frames = 8
    pred = np.zeros((frames, 2, 2), np.float32)
    pred[:, 0, :] = np.arange(frames)[:, None]  # joint 0 moves along a line
    pred[:, 1, :] = 10.0
    present = np.ones((frames, 2), dtype=bool)
    present[3:, 0] = False  # joint 0 lost from frame 3 on
    present[:4, 1] = False  # joint 1 missing until frame 4
    windows, _, empty = causal_windows(pred, present, np.array([2, 4, 7]), 3)
    # Window [0, 2]: all of joint 0 seen; joint 1 never seen there: the frame's other joints.
    np.testing.assert_array_equal(windows[0, :, 0, 0], [0, 1, 2])
    np.testing.assert_array_equal(windows[0, :, 1, 0], [0, 1, 2])
    # Window [2, 4]: joint 0 held at its last value in the window (frame 2), not filled from
    # frames after the window; joint 1 held back from frame 4.
    np.testing.assert_array_equal(windows[1, :, 0, 0], [2, 2, 2])
    np.testing.assert_array_equal(windows[1, :, 1, 0], [10, 10, 10])
    # Window [5, 7]: joint 0 never seen there: takes joint 1's position.
    np.testing.assert_array_equal(windows[2, :, 0, 0], [10, 10, 10])
    assert not empty.any()


def test_a_window_without_any_joint_is_marked_empty() -> None:
    present = np.zeros((1, 3, 2), dtype=bool)
    raw = np.full((1, 3, 2, 2), 5.0, np.float32)
    assert np.isfinite(fill_windows(raw, present)).all()
    _, _, empty = causal_windows(raw[0], present[0], np.array([2]), 3)
    assert empty.tolist() == [True]
