"""Classic temporal filters: the baselines HANet is compared against.

Every filter takes a sequence ``x`` of shape ``[T, ...]`` (time first; the trailing axes are
independent channels) and an optional ``valid`` mask of shape ``[T]`` or ``[T, J]``. Missing
values are first filled by linear interpolation over time (:func:`fill_missing`), so a missing
joint never enters a filter as if it were a real position. Without a mask, non-finite values
are treated as missing.

:data:`FILTERS` maps names to functions, :data:`FILTER_GRIDS` gives a small parameter grid per
filter for tuning on validation data, and :func:`apply_filter` calls one by name.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d


def _as_float(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.float64) if not np.issubdtype(x.dtype, np.floating) else x


def _channel_mask(valid: np.ndarray | None, x: np.ndarray) -> np.ndarray:
    """``valid`` broadcast to every element of ``x``: ``[T]`` or ``[T, J]`` -> ``x.shape``."""
    if valid is None:
        return np.isfinite(x)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != x.shape[: valid.ndim]:
        raise ValueError(f"valid of shape {valid.shape} does not lead x of shape {x.shape}")
    # A missing value is missing even if the mask says otherwise.
    return np.broadcast_to(valid.reshape(valid.shape + (1,) * (x.ndim - valid.ndim)), x.shape) & (
        np.isfinite(x)
    )


def fill_missing(x: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Fill missing values by linear interpolation in time, channel by channel.

    Before the first and after the last observed frame the nearest observed value is held.
    A channel that is never observed stays NaN: there is nothing to interpolate from, and a NaN
    cannot be mistaken for a position (metrics mask it out; a 0 would pass as a real pose).

    Args:
        x: the sequence, time first.
        valid: True where observed; None means "where finite".

    Returns:
        A float copy of ``x`` with the gaps filled.

    Shape:
        x: ``[T, ...]``; valid: ``[T]`` or ``[T, J]``; output like ``x``.
    """
    x = _as_float(x)
    mask = _channel_mask(valid, x)
    # C order: the gaps are written through a reshaped view, which a transposed copy is not.
    out = np.array(x, copy=True, order="C")
    if mask.all():
        return out
    flat = out.reshape(len(out), -1)  # [T, K], a view of out
    flat_mask = mask.reshape(len(out), -1)
    frames = np.arange(len(out))
    for k in np.flatnonzero(~flat_mask.all(axis=0)):
        seen = flat_mask[:, k]
        if seen.any():
            flat[:, k] = np.interp(frames, frames[seen], flat[seen, k])
        else:
            flat[:, k] = np.nan
    return out


def savgol(
    x: np.ndarray, window: int = 11, order: int = 2, valid: np.ndarray | None = None
) -> np.ndarray:
    """Savitzky-Golay smoothing along time.

    The window is clipped to the longest odd length that fits the sequence and the order to
    ``window - 1``; the ends use ``mode="interp"`` (a polynomial fitted to the last window),
    which, unlike padding, keeps polynomials up to ``order`` intact at the ends too.

    Args:
        x: the sequence.
        window: window length in frames (made odd by rounding down).
        order: polynomial order.
        valid: observed frames or joints.

    Shape:
        x: ``[T, ...]``; output like ``x``.
    """
    x = fill_missing(x, valid)
    frames = len(x)
    window = min(window, frames)
    window -= 1 - window % 2  # largest odd length <= window
    if window < 3:
        return x
    # Imported here: scipy.signal costs 0.7 s to import, paid by every process that loads this
    # module (each refine actor, each preprocessing worker) though only evaluation uses it.
    from scipy.signal import savgol_filter

    return savgol_filter(x, window, min(order, window - 1), axis=0, mode="interp")


def gaussian(x: np.ndarray, sigma: float = 2.0, valid: np.ndarray | None = None) -> np.ndarray:
    """Gaussian smoothing along time (``mode="nearest"``: the ends are held, not zeroed).

    Args:
        x: the sequence.
        sigma: standard deviation in frames.
        valid: observed frames or joints.

    Shape:
        x: ``[T, ...]``; output like ``x``.
    """
    x = fill_missing(x, valid)
    if sigma <= 0:
        return x
    return gaussian_filter1d(x, sigma, axis=0, mode="nearest")


def _smoothing_factor(cutoff: np.ndarray | float, fps: float) -> np.ndarray | float:
    # First-order low-pass with time constant 1 / (2 pi f_c) sampled every 1 / fps seconds.
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * fps)


def one_euro(
    x: np.ndarray,
    fps: float,
    min_cutoff: float = 1.0,
    beta: float = 0.0,
    d_cutoff: float = 1.0,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """One-Euro filter (Casiez et al., CHI 2012), each channel independently.

    A causal low-pass whose cutoff rises with the filtered speed:
    ``f_c = min_cutoff + beta * |dx/dt|``, so slow motion is smoothed and fast motion follows
    with little lag. Being causal, it lags a ramp by about ``1 / (2 pi f_c)`` seconds; a large
    ``beta`` shrinks that lag.

    Args:
        x: the sequence.
        fps: frame rate (Hz); cutoffs are in Hz.
        min_cutoff: cutoff at rest.
        beta: speed coefficient, in the inverse of the data's unit per second.
        d_cutoff: cutoff of the derivative's own low-pass.
        valid: observed frames or joints.

    Shape:
        x: ``[T, ...]``; output like ``x``.
    """
    x = fill_missing(x, valid)
    out = np.empty_like(x)
    if len(x) == 0:
        return out
    alpha_d = _smoothing_factor(d_cutoff, fps)
    prev = x[0]
    speed = np.zeros_like(x[0])
    out[0] = prev
    for t in range(1, len(x)):
        speed = alpha_d * (x[t] - prev) * fps + (1.0 - alpha_d) * speed
        alpha = _smoothing_factor(min_cutoff + beta * np.abs(speed), fps)
        prev = alpha * x[t] + (1.0 - alpha) * prev
        out[t] = prev
    return out


def keyframe_interpolation(
    x: np.ndarray, interval: int = 10, valid: np.ndarray | None = None
) -> np.ndarray:
    """Keep frames 0, N, 2N, ... and the last frame; interpolate linearly in between.

    The released evaluation's ``INTERP`` baseline, with the last frame added so that the tail
    is predicted too.

    Args:
        x: the sequence.
        interval: key-frame spacing N.
        valid: observed frames or joints (a missing key frame is filled first).

    Shape:
        x: ``[T, ...]``; output like ``x``.
    """
    if interval < 1:
        raise ValueError(f"interval must be >= 1, got {interval}")
    x = fill_missing(x, valid)
    frames = len(x)
    t = np.arange(frames)
    left = (t // interval) * interval
    right = np.minimum(left + interval, frames - 1)
    span = np.maximum(right - left, 1)
    weight = ((t - left) / span).reshape((frames,) + (1,) * (x.ndim - 1))
    return (1.0 - weight) * x[left] + weight * x[right]


Filter = Callable[..., np.ndarray]

FILTERS: dict[str, Filter] = {
    "savgol": savgol,
    "gaussian": gaussian,
    "one_euro": one_euro,
    "keyframe_interpolation": keyframe_interpolation,
}


def _grid(**axes: list[Any]) -> list[dict[str, Any]]:
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*axes.values())]


# Small grids to pick each filter's parameters on validation data. one_euro's beta depends on the
# data's unit (pixels, normalised image coordinates, metres), hence its wide range. The
# published INTERP baseline is keyframe_interpolation at the model's interval N.
FILTER_GRIDS: dict[str, list[dict[str, Any]]] = {
    "savgol": _grid(window=[5, 9, 15, 21, 31], order=[2, 3]),
    "gaussian": _grid(sigma=[0.5, 1.0, 2.0, 3.0, 4.0, 6.0]),
    "one_euro": _grid(min_cutoff=[0.1, 0.3, 1.0, 3.0], beta=[0.0, 0.01, 0.1, 1.0, 10.0]),
    "keyframe_interpolation": _grid(interval=[2, 5, 10]),
}


def apply_filter(
    name: str,
    x: np.ndarray,
    fps: float = 30.0,
    valid: np.ndarray | None = None,
    **params: Any,
) -> np.ndarray:
    """Run a filter by name; ``fps`` goes only to the filters that take it.

    Args:
        name: a key of :data:`FILTERS`.
        x: the sequence.
        fps: frame rate, used by ``one_euro``.
        valid: observed frames or joints.
        **params: the filter's parameters, e.g. one entry of :data:`FILTER_GRIDS`.

    Shape:
        x: ``[T, ...]``; output like ``x``.

    Raises:
        ValueError: unknown filter name.
    """
    try:
        fn = FILTERS[name]
    except KeyError:
        raise ValueError(f"unknown filter {name!r} (known: {', '.join(FILTERS)})") from None
    if fn is one_euro:
        return fn(x, fps, valid=valid, **params)
    return fn(x, valid=valid, **params)
