"""hanet.data.folds: short-axis reductions give numpy's own values."""

from __future__ import annotations

import numpy as np
import pytest

from hanet.data.folds import (
    fold,
    trailing_all,
    trailing_any,
    trailing_max,
    trailing_norm,
    trailing_sum,
)


@pytest.mark.parametrize("dims", [1, 2, 3, 6, 12])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_last_axis_reductions_equal_numpys(dims: int, dtype: type) -> None:
    rng = np.random.default_rng(dims)
    values = rng.normal(0, 100, (40, 15, dims)).astype(dtype)
    values[3, 4, 0] = np.nan  # propagates through max, sum and norm as in numpy
    values[5, 6, -1] = -np.inf
    flags = values > 0
    assert np.array_equal(trailing_any(flags), flags.any(axis=-1))
    assert np.array_equal(trailing_all(flags), flags.all(axis=-1))
    for mine, numpys in (
        (trailing_max(values), values.max(axis=-1)),
        (trailing_sum(values), values.sum(axis=-1)),
        (trailing_norm(values), np.linalg.norm(values, axis=-1)),
    ):
        assert mine.dtype == numpys.dtype and mine.shape == numpys.shape
        np.testing.assert_allclose(mine, numpys, rtol=1e-6 if dtype == np.float32 else 1e-12)
        assert np.array_equal(np.isnan(mine), np.isnan(numpys))


@pytest.mark.parametrize("joints", [1, 2, 15, 40])
def test_folding_over_joints_equals_numpys_reduction(joints: int) -> None:
    poses = np.random.default_rng(joints).uniform(-5, 5, (3, 20, joints, 2)).astype(np.float32)
    before = poses.copy()
    for ufunc, method in ((np.maximum, "max"), (np.minimum, "min")):
        assert np.array_equal(fold(ufunc, poses, -2), getattr(poses, method)(axis=-2))
    # The inputs stay as they were (the fold writes into its own output only).
    assert np.array_equal(poses, before)
