"""Classic filters: invariants, smoothing, masks."""

import math

import numpy as np
import pytest

from hanet.filters import (
    FILTER_GRIDS,
    FILTERS,
    apply_filter,
    fill_missing,
    gaussian,
    keyframe_interpolation,
    one_euro,
    savgol,
)

FPS = 30.0
T = 60


def _run(name: str, x: np.ndarray, **kwargs) -> np.ndarray:
    return apply_filter(name, x, fps=FPS, **kwargs)


def _linear() -> np.ndarray:
    t = np.arange(T, dtype=np.float64)[:, None, None]
    return 0.3 + 0.02 * t * np.array([[1.0, -2.0], [0.5, 3.0], [0.0, 1.0]])  # [T, 3, 2]


@pytest.mark.parametrize("name", list(FILTERS))
def test_constant_is_preserved(name: str) -> None:
    x = np.full((T, 3, 2), 1.5)
    np.testing.assert_allclose(_run(name, x), x, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "params", "interior"),
    [
        ("savgol", {"window": 11, "order": 2}, 0),  # mode="interp" keeps lines at the ends too
        ("gaussian", {"sigma": 2.0}, 8),  # mode="nearest" bends the ends; 4 sigma inside
        ("keyframe_interpolation", {"interval": 7}, 0),
    ],
)
def test_linear_is_preserved(name: str, params: dict, interior: int) -> None:
    x = _linear()
    got = _run(name, x, **params)
    inner = slice(interior, T - interior)
    np.testing.assert_allclose(got[inner], x[inner], atol=1e-10)


def test_one_euro_ramp_lag() -> None:
    # beta = 0 is a first-order low-pass: on a ramp of v per frame it settles at a lag of
    # v * (1 - a) / a = v * fps * tau, with tau = 1 / (2 pi min_cutoff).
    v = 0.02
    x = v * np.arange(400.0)[:, None]
    lag = x - one_euro(x, FPS, min_cutoff=1.0, beta=0.0)
    assert lag[-1, 0] == pytest.approx(v * FPS / (2 * math.pi), rel=1e-6)
    # A large beta raises the cutoff with speed, so the lag nearly vanishes.
    fast = x - one_euro(x, FPS, min_cutoff=1.0, beta=100.0)
    assert abs(fast[-1, 0]) < 0.05 * lag[-1, 0]


@pytest.mark.parametrize(
    ("name", "params", "ratio"),
    [
        ("savgol", {"window": 9, "order": 2}, 0.6),
        ("gaussian", {"sigma": 2.0}, 0.6),
        ("one_euro", {"min_cutoff": 1.0, "beta": 0.0}, 0.6),
        # Between key frames at weight w the variance is (1-w)^2 + w^2: 0.68 on average for N=5.
        ("keyframe_interpolation", {"interval": 5}, 0.75),
    ],
)
def test_white_noise_variance_drops(name: str, params: dict, ratio: float) -> None:
    noise = np.random.default_rng(0).normal(size=(500, 4))
    smoothed = _run(name, noise, **params)
    assert smoothed.var() < ratio * noise.var()


def test_keyframe_interpolation_keeps_key_frames_and_last() -> None:
    x = np.random.default_rng(1).normal(size=(23, 2))
    got = keyframe_interpolation(x, interval=10)
    np.testing.assert_array_equal(got[[0, 10, 20, 22]], x[[0, 10, 20, 22]])
    np.testing.assert_allclose(got[5], (x[0] + x[10]) / 2)
    np.testing.assert_allclose(got[21], (x[20] + x[22]) / 2)


def test_fill_missing() -> None:
    x = _linear()
    holed = x.copy()
    valid = np.ones((T, 3), dtype=bool)
    valid[[0, 1, 10, 11, 12, T - 1], 0] = False  # joint 0: gaps inside and at both ends
    valid[:, 2] = False  # joint 2: never observed
    holed[~valid] = 123.0  # garbage where missing
    filled = fill_missing(holed, valid)
    np.testing.assert_allclose(filled[2:-1, :2], x[2:-1, :2])  # interior gaps: exact on a line
    np.testing.assert_allclose(filled[:2, 0], np.broadcast_to(x[2, 0], (2, 2)))  # held at start
    np.testing.assert_allclose(filled[-1, 0], x[-2, 0])  # held at the end
    assert np.isnan(filled[:, 2]).all()
    # Without a mask, NaN marks the missing values; a [T] mask drops whole frames.
    nan_holed = x.copy()
    nan_holed[10:13] = np.nan
    np.testing.assert_allclose(fill_missing(nan_holed), x)
    frame_valid = np.ones(T, dtype=bool)
    frame_valid[10:13] = False
    garbage_frames = x + 99.0 * ~frame_valid[:, None, None]
    np.testing.assert_allclose(fill_missing(garbage_frames, frame_valid), x)


@pytest.mark.parametrize("name", list(FILTERS))
def test_masked_garbage_never_acts_as_a_value(name: str) -> None:
    x = np.sin(np.arange(T) / 5.0)[:, None, None] * np.ones((1, 2, 2))
    valid = np.ones((T, 2), dtype=bool)
    valid[20:23, 1] = False
    garbage = x.copy()
    garbage[~valid] = 1e6
    np.testing.assert_allclose(_run(name, garbage, valid=valid), _run(name, fill_missing(x, valid)))


def test_grids_run_and_unknown_name_fails() -> None:
    x = np.random.default_rng(2).normal(size=(40, 2))
    for name, grid in FILTER_GRIDS.items():
        assert grid, name
        for params in grid:
            assert _run(name, x, **params).shape == x.shape
    with pytest.raises(ValueError, match="unknown filter"):
        apply_filter("kalman", x)


def test_short_sequences() -> None:
    x = np.array([[1.0], [2.0]])
    np.testing.assert_allclose(savgol(x, window=31), x)  # window clipped below 3: unchanged
    assert gaussian(x[:1], 2.0).shape == (1, 1)
    assert one_euro(x, FPS).shape == (2, 1)


def test_fill_missing_of_a_transposed_view() -> None:
    # A time axis that is not the outermost in memory (a moved axis) is filled all the same.
    windows = np.moveaxis(np.stack([_linear(), _linear()]), 1, 0)  # [T, 2, 3, 2], transposed
    valid = np.ones(windows.shape[:3], dtype=bool)
    valid[10:13, 1, 0] = False
    holed = np.where(valid[..., None], windows, 123.0)
    holed = np.moveaxis(np.ascontiguousarray(np.moveaxis(holed, 0, 1)), 1, 0)
    assert not holed.flags.c_contiguous
    np.testing.assert_allclose(fill_missing(holed, valid), windows)
