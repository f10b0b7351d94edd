"""Causal windows: refine frame t from the one window that ends at frame t + k.

With a look-ahead of k frames the refined frame t depends on input frames <= t + k only: it is
read at position ``T - 1 - k`` of the window ``[t + k - T + 1, t + k]``. Windows that would
start before the first frame are edge-padded at their start (the first frame repeated, marked
as padding), and the last k frames of a finished sequence come from the window that ends at its
last frame. Everything a window needs (gap filling, the per-window normalisation) is computed
from that window alone, so an offline sequence and a stream fed frame by frame
(:mod:`hanet.streaming`) give the same windows.

All arrays index time first; windows are ``[W, T, ...]``.
"""

from __future__ import annotations

import numpy as np

from hanet.filters import fill_missing

__all__ = ["causal_ends", "causal_sources", "causal_windows", "fill_windows", "tail_positions"]


def _check(lookahead: int, window_size: int) -> None:
    if not 0 <= lookahead < window_size:
        raise ValueError(f"lookahead={lookahead} must be in [0, window_size={window_size})")


def causal_ends(num_frames: int, lookahead: int) -> np.ndarray:
    """The last frame of every window a causal refinement of ``num_frames`` frames reads:
    one per output frame ``t <= F - 1 - k`` (ending at ``t + k``), the last one ending at the
    last frame also serving the final k frames.

    Shape:
        Output: ``[W]`` int64, ``W = F - min(k, F - 1)``.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return np.arange(min(lookahead, num_frames - 1), num_frames, dtype=np.int64)


def tail_positions(count: int, lookahead: int, window_size: int) -> np.ndarray:
    """Window positions of the last ``count`` frames (``count <= k + 1``) in the window that
    ends at the last frame: ``T - count .. T - 1``.

    Shape:
        Output: ``[count]`` int64.
    """
    _check(lookahead, window_size)
    return np.arange(window_size - count, window_size, dtype=np.int64)


def causal_sources(
    num_frames: int, lookahead: int, window_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """For every frame, the window (index into :func:`causal_ends`) and the position in that
    window it is read from.

    Shape:
        Outputs: ``[F]`` int64 each.
    """
    _check(lookahead, window_size)
    ends = causal_ends(num_frames, lookahead)
    frame = np.arange(num_frames, dtype=np.int64)
    end = np.minimum(frame + lookahead, num_frames - 1)
    return end - ends[0], window_size - 1 - (end - frame)


def fill_windows(raw: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Each window's missing joints filled from that window alone: gaps interpolated linearly
    in time (held at its ends); a joint absent from the whole window takes the mean of the
    frame's other joints; a window with no joint at all stays 0 (its output is meaningless and
    the caller marks it).

    Shape:
        raw: ``[W, T, J, D]``; present: ``[W, T, J]``; output ``[W, T, J, D]`` float32.
    """
    if present.all():
        return np.asarray(raw, np.float32)
    # Time first makes every (window, joint, axis) one channel of fill_missing.
    filled = fill_missing(np.moveaxis(raw, 1, 0), np.moveaxis(present, 1, 0))
    filled = np.moveaxis(filled, 0, 1)  # [W, T, J, D]
    never = ~present.any(axis=1)  # [W, J]
    if never.any():
        seen = (~never)[:, None, :, None]  # [W, 1, J, 1]
        total = np.where(seen, np.nan_to_num(filled), 0.0).sum(axis=2, keepdims=True)
        mean = total / np.maximum(seen.sum(axis=2, keepdims=True), 1)  # [W, T, 1, D]
        filled = np.where(never[:, None, :, None], mean, filled)
    return np.nan_to_num(filled).astype(np.float32)


def causal_windows(
    pred: np.ndarray, present: np.ndarray, ends: np.ndarray, window_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The windows ending at ``ends``, start-padded with the first frame, gaps filled per
    window.

    Args:
        pred: the estimator's poses (values at missing joints are ignored).
        present: True where a joint was observed.
        ends: last frame of each window (:func:`causal_ends`).
        window_size: T.

    Returns:
        ``(windows, valid, empty)``: filled windows, False at padding, and True for windows
        without a single observed joint.

    Shape:
        pred: ``[F, J, D]``; present: ``[F, J]``; windows: ``[W, T, J, D]``; valid: ``[W, T]``;
        empty: ``[W]``.
    """
    index = np.asarray(ends, np.int64)[:, None] - np.arange(window_size - 1, -1, -1)[None, :]
    valid = index >= 0
    clipped = np.maximum(index, 0)
    seen = present[clipped]  # [W, T, J]
    return fill_windows(pred[clipped], seen), valid, ~seen.any(axis=(1, 2))
