"""Window starts, split and merge."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from posedata import seq2d

from hanet.config import ModelConfig
from hanet.data.schema import validate_sequence
from hanet.data.windows import (
    key_frame_mask,
    merge_windows,
    split_windows,
    stacked_window_arrays,
    train_starts,
    window_arrays,
    window_position_weights,
)
from hanet.data.windows import (
    test_starts as strided_test_starts,  # a test_* name would be collected
)


def test_key_frame_mask() -> None:
    np.testing.assert_array_equal(np.flatnonzero(key_frame_mask(11, 5)), [0, 5, 10])
    np.testing.assert_array_equal(np.flatnonzero(key_frame_mask(11, 10)), [0, 10])
    assert key_frame_mask(11, 10).dtype == bool
    for bad in [(10, 10), (11, 3), (1, 1)]:  # not N * Q + 1 with Q >= 1
        with pytest.raises(ValueError):
            key_frame_mask(*bad)


@pytest.mark.parametrize(
    ("frames", "window", "stride", "expected"),
    [
        (15, 11, 1, [0, 1, 2, 3, 4]),
        (15, 11, 3, [0, 3, 4]),  # 4 = 15 - 11 appended: the stride skipped it
        (17, 11, 3, [0, 3, 6]),
        (11, 11, 1, [0]),
        (5, 11, 1, [0]),
    ],
)
def test_train_starts(frames: int, window: int, stride: int, expected: list[int]) -> None:
    np.testing.assert_array_equal(train_starts(frames, window, stride), expected)


@pytest.mark.parametrize(
    ("frames", "window", "step", "expected"),
    [
        (31, 11, 10, [0, 10, 20]),  # exactly covered: JHMDB layout, shared boundary key frames
        (35, 11, 10, [0, 10, 20, 24]),  # released code drops frames 31..34; we add a window
        (40, 11, 10, [0, 10, 20, 29]),
        (11, 11, 10, [0]),
        (3, 11, 10, [0]),
    ],
)
def test_test_starts(frames: int, window: int, step: int, expected: list[int]) -> None:
    np.testing.assert_array_equal(strided_test_starts(frames, window, step), expected)


def test_test_starts_rejects_gaps() -> None:
    with pytest.raises(ValueError, match="uncovered"):
        strided_test_starts(100, 11, 12)


def test_split_pads_short_sequence_with_last_frame() -> None:
    x = np.arange(4 * 2, dtype=np.float32).reshape(4, 2)
    windows, valid = split_windows(x, np.array([0]), 6)
    assert windows.shape == (1, 6, 2)
    np.testing.assert_array_equal(windows[0, 4:], [x[3], x[3]])
    np.testing.assert_array_equal(valid, [[True] * 4 + [False] * 2])


def test_merge_averages_overlaps() -> None:
    # Two windows of length 3 over 4 frames overlap at frames 1 and 2.
    windows = np.array([[0.0, 2.0, 4.0], [10.0, 20.0, 30.0]])
    merged = merge_windows(windows, np.array([0, 1]), 4)
    np.testing.assert_allclose(merged, [0.0, 6.0, 12.0, 30.0])


def test_merge_ignores_invalid_positions_and_reports_gaps() -> None:
    windows = np.array([[1.0, 2.0, 3.0], [100.0, 5.0, 6.0]])
    valid = np.array([[True, True, True], [False, True, True]])
    merged = merge_windows(windows, np.array([0, 1]), 4, valid)
    np.testing.assert_allclose(merged, [1.0, 2.0, 4.0, 6.0])
    with pytest.raises(ValueError, match="covered by no window"):
        merge_windows(windows, np.array([0, 1]), 4, np.array([[True] * 3, [True, True, False]]))


@settings(max_examples=60, deadline=None)
@given(
    frames=st.integers(1, 300),
    window=st.integers(1, 40),
    step_fraction=st.floats(0.0, 1.0),
    train=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_split_merge_round_trip(
    frames: int, window: int, step_fraction: float, train: bool, seed: int
) -> None:
    step = 1 + int(step_fraction * (window - 1))  # 1 .. window: every frame covered
    starts = (train_starts if train else strided_test_starts)(frames, window, step)
    # Random floats: a naive sum-then-divide mean would not give them back bit for bit.
    x = np.random.default_rng(seed).normal(size=(frames, 3, 2))
    windows, valid = split_windows(x, starts, window)

    assert windows.shape == (len(starts), window, 3, 2)
    assert np.all(np.diff(starts) > 0) and starts[0] == 0
    covered = np.zeros(frames, dtype=int)
    for s, v in zip(starts, valid):
        covered[s : s + v.sum()] += 1
        # Exactly the positions past the end of the sequence are padding.
        np.testing.assert_array_equal(v, s + np.arange(window) < frames)
    assert np.all(covered > 0)
    assert starts[-1] + window >= frames  # the last window reaches the end

    merged = merge_windows(windows, starts, frames, valid)
    assert merged.dtype == x.dtype
    np.testing.assert_array_equal(merged, x)


def test_weighted_merge_is_the_weighted_mean_and_keeps_identical_predictions_exact():
    rng = np.random.default_rng(3)
    size, frames = 7, 23
    starts = strided_test_starts(frames, size, 1)
    truth = rng.normal(size=(frames, 4)).astype(np.float32)
    cut, valid = split_windows(truth, starts, size)
    weights = window_position_weights(size, "sine")
    assert weights.shape == (size,) and (weights > 0).all() and weights[3] == weights.max()
    assert np.array_equal(merge_windows(cut, starts, frames, valid, weights), truth)

    noisy = cut + rng.normal(size=cut.shape).astype(np.float32)
    merged = merge_windows(noisy, starts, frames, valid, weights)
    expected = np.zeros((frames, 4))
    total = np.zeros(frames)
    for w, start in enumerate(starts):
        for t in range(size):
            if valid[w, t] and start + t < frames:
                expected[start + t] += weights[t] * noisy[w, t]
                total[start + t] += weights[t]
    np.testing.assert_allclose(merged, expected / total[:, None], rtol=1e-5, atol=1e-6)
    assert window_position_weights(size, "uniform") is None
    with pytest.raises(ValueError):
        merge_windows(noisy, starts, frames, valid, -weights)


@pytest.mark.parametrize("normalisation", ["body", "published"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_stacked_windows_are_each_sequences_windows_in_turn(normalisation, split) -> None:
    """Joining the sequences' frames must not let one sequence's frames, padding, ground truth
    or normalisation leak into another's windows: the stack equals the windows of each
    sequence alone, one after the other, bit for bit; with a short (padded) sequence, one
    without ground truth, one with gaps and one of another image size (another map)."""
    holes = np.ones((30, 15), bool)
    holes[5:9, 3] = False
    seqs = [
        seq2d(40, "a"),
        seq2d(6, "short"),
        seq2d(25, "no_truth", gt=None),
        seq2d(30, "gaps", joint_mask=holes),
        seq2d(33, "wide", image_size=(1920, 1080)),
    ]
    seqs = [validate_sequence(s) for s in seqs]
    model = ModelConfig(num_joints=15, joint_dim=2, interval=5, num_intervals=2)
    args = (model, split, 2, 1, normalisation, 14)
    stacked = stacked_window_arrays(seqs, *args)
    alone = [window_arrays(s, *args) for s in seqs]
    for name, column in stacked.items():
        expected = np.concatenate([a[name] for a in alone])
        assert column.dtype == expected.dtype, name
        np.testing.assert_array_equal(column, expected, err_msg=name)
