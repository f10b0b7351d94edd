"""Cutting sequences into fixed-length windows and merging window predictions back.

HANet sees windows of ``T = N * Q + 1`` frames whose key frames sit at ``t % N == 0``. Training
uses every start (stride 1, as published); testing uses starts ``0, step, 2 * step, ...``. The
released code drops the frames after the last full test window and zero-pads short sequences;
here the last test window is aligned to the end of the sequence instead, so every frame is
predicted, and short sequences are padded by repeating their last frame, with a validity mask
that keeps the padding out of losses and metrics.

All functions index the first axis as time and leave the trailing axes alone, so the same code
serves ``[T, J, D]`` poses, ``[T, C]`` flattened coordinates and ``[T, J]`` masks.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

import numpy as np

from hanet.config import ModelConfig
from hanet.data.normalise import (
    FrameMeasures,
    filled_input,
    filled_target,
    frame_measures,
    layout_roots,
    target_mask,
    target_norm,
    window_norm,
)
from hanet.data.schema import Sequence
from hanet.skeletons import JointLayout, get_layout

__all__ = [
    "joined_windows",
    "key_frame_mask",
    "measured_groups",
    "merge_windows",
    "split_windows",
    "stacked_window_arrays",
    "test_starts",
    "train_starts",
    "window_arrays",
    "window_measures",
    "window_position_weights",
    "window_starts",
]


def key_frame_mask(window_size: int, interval: int) -> np.ndarray:
    """Which frames of a window are key frames (seen by the model): ``t % N == 0``.

    Args:
        window_size: T, frames per window; must be ``N * Q + 1`` with ``Q >= 1``, so the first
            and the last frame are key frames and there are at least two (a window whose
            attention keys are all masked yields NaN).
        interval: N, a key frame every N frames.

    Shape:
        Output: ``[T]`` bool.

    Raises:
        ValueError: the window does not start and end on a key frame, or has fewer than two.
    """
    if interval < 1 or window_size < interval + 1 or (window_size - 1) % interval != 0:
        raise ValueError(
            f"window_size={window_size} must be N * Q + 1 with interval N={interval} and Q >= 1"
        )
    return np.arange(window_size) % interval == 0


def _strided_starts(num_frames: int, window_size: int, step: int) -> np.ndarray:
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if window_size < 1 or step < 1:
        raise ValueError(f"window_size and step must be >= 1, got {window_size}, {step}")
    last = num_frames - window_size
    if last <= 0:
        # One (possibly padded) window holds the whole sequence.
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, last + 1, step, dtype=np.int64)
    if starts[-1] != last:
        # A final window flush with the end, so the tail is not dropped as in the released code.
        starts = np.append(starts, last)
    return starts


def train_starts(num_frames: int, window_size: int, stride: int = 1) -> np.ndarray:
    """Start frames of the training windows of one sequence.

    Every ``stride``-th start from 0, plus the start that aligns the last window with the end of
    the sequence when the stride skips it. With ``stride > window_size`` some frames fall in no
    window; that is allowed for training (it only thins the samples).

    Args:
        num_frames: sequence length.
        window_size: frames per window, T.
        stride: distance between consecutive starts.

    Returns:
        Increasing start indices; ``[0]`` when ``num_frames <= window_size``.

    Shape:
        Output: ``[W]`` int64.
    """
    return _strided_starts(num_frames, window_size, stride)


def test_starts(num_frames: int, window_size: int, step: int) -> np.ndarray:
    """Start frames of the test windows of one sequence, covering every frame.

    Starts are ``0, step, 2 * step, ...`` and, when those do not reach the last frame, one more
    window aligned to the end (``num_frames - window_size``). Note that this last window's key
    frames are not on the global ``0, N, 2N, ...`` grid; that is fine, as each window carries its
    own key frames.

    Args:
        num_frames: sequence length.
        window_size: frames per window, T.
        step: distance between consecutive starts, ``N * Q_step``; at most ``window_size``.

    Returns:
        Increasing start indices; ``[0]`` when ``num_frames <= window_size``.

    Shape:
        Output: ``[W]`` int64.

    Raises:
        ValueError: ``step > window_size`` would leave frames between windows unpredicted.
    """
    if step > window_size:
        raise ValueError(f"step={step} > window_size={window_size} leaves frames uncovered")
    return _strided_starts(num_frames, window_size, step)


# The name starts with "test": stop pytest from collecting it wherever a test module imports it.
test_starts.__test__ = False  # type: ignore[attr-defined]


def _window_indices(
    starts: np.ndarray, window_size: int, num_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Frame index of every window position, and whether it is a real frame."""
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    if starts.size == 0:
        raise ValueError("no window starts given")
    if starts.min() < 0 or starts.max() >= num_frames:
        raise ValueError(f"window starts must lie in [0, {num_frames}), got {starts.tolist()}")
    index = starts[:, None] + np.arange(window_size, dtype=np.int64)[None, :]  # [W, T]
    return index, index < num_frames


def split_windows(
    x: np.ndarray, starts: np.ndarray, window_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Slice a sequence into windows.

    Positions past the end of the sequence repeat the last frame (edge padding: a padded key
    frame then looks like a still pose, not a jump to zero) and are marked invalid.

    Args:
        x: the sequence, time first. A torch tensor works too (it is indexed, not copied).
        starts: window starts from :func:`train_starts` or :func:`test_starts`.
        window_size: frames per window, T.

    Returns:
        ``(windows, valid)``: the windows, and False at padded positions.

    Shape:
        x: ``[F, ...]``; windows: ``[W, T, ...]``; valid: ``[W, T]`` bool.
    """
    num_frames = len(x)
    index, valid = _window_indices(starts, window_size, num_frames)
    clipped = np.minimum(index, num_frames - 1)
    return x[clipped], valid


def window_measures(
    filled: np.ndarray, layout: JointLayout | str, starts: np.ndarray, window_size: int
) -> FrameMeasures:
    """The body map's frame measures of a sequence, cut into its windows: exactly what
    measuring each window would give (padding repeats the last frame either way), with every
    frame measured once.

    Shape:
        filled: ``[F, J, D]``; output extent ``[W, T]``, root ``[W, T, D]``.
    """
    measures = frame_measures(filled, layout_roots(layout, filled.shape[1]))
    extent, _ = split_windows(measures.extent, starts, window_size)
    root, _ = split_windows(measures.root, starts, window_size)
    return FrameMeasures(extent, root)


def merge_windows(
    windows: np.ndarray,
    starts: np.ndarray,
    num_frames: int,
    valid: np.ndarray | None = None,
    position_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Average overlapping window predictions back into one sequence.

    Each frame gets the mean of every valid window position that maps onto it. The mean is
    taken as ``ref + mean(w - ref)``, with ``ref`` the frame's value in the first window that
    covers it: identical predictions then merge back bit-exactly (a plain sum over three copies
    of 0.1 divided by 3 does not give 0.1), and the differences are small, which keeps float16
    and float32 sums accurate.

    Args:
        windows: window predictions (integer input gives float output).
        starts: the starts the windows were cut at.
        num_frames: length of the merged sequence.
        valid: False at positions to ignore (padding); positions past ``num_frames`` are always
            ignored. None means every in-range position counts.
        position_weights: ``[T]`` positive weights by position in the window (a weighted
            mean); None is the plain mean. See :func:`window_position_weights`.

    Returns:
        The merged sequence.

    Shape:
        windows: ``[W, T, ...]``; valid: ``[W, T]``; output: ``[num_frames, ...]``.

    Raises:
        ValueError: a frame is covered by no valid window position, or shapes disagree.
    """
    num_windows, window_size = windows.shape[:2]
    num_windows, window_size = windows.shape[:2]
    index, in_range = _window_indices(starts, window_size, num_frames)
    if index.shape[0] != num_windows:
        raise ValueError(f"{num_windows} windows but {index.shape[0]} starts")
    use = in_range
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != use.shape:
            raise ValueError(f"valid has shape {valid.shape}, expected {use.shape}")
        use = use & valid
    flat_pos = np.flatnonzero(use)  # positions into the flattened [W * T] windows
    frame = index.reshape(-1)[flat_pos]
    count = np.bincount(frame, minlength=num_frames)
    if position_weights is not None:
        position_weights = np.asarray(position_weights, dtype=np.float64)
        if position_weights.shape != (window_size,) or not (position_weights > 0).all():
            raise ValueError(f"position_weights must be {window_size} positive values")
    missing = np.flatnonzero(count == 0)
    if missing.size:
        raise ValueError(
            f"{missing.size} frames covered by no window, first {missing[:5].tolist()}"
        )
    # np.unique returns the first occurrence in window order: a deterministic reference.
    _, first = np.unique(frame, return_index=True)
    feat_shape = tuple(windows.shape[2:])
    count = count.reshape((num_frames,) + (1,) * len(feat_shape))
    flat = np.asarray(windows).reshape((num_windows * window_size,) + feat_shape)

    flat = np.asarray(windows).reshape((num_windows * window_size,) + feat_shape)
    if not np.issubdtype(flat.dtype, np.floating):
        flat = flat.astype(np.float64)
    contrib = flat[flat_pos]
    ref = contrib[first]
    # Sum per frame by sorting contributions by frame and reducing each run (np.add.at is
    # several times slower); every frame has a contribution, so no run is empty.
    order = np.argsort(frame, kind="stable")
    run_starts = np.concatenate([[0], np.cumsum(count.reshape(-1))[:-1]])
    if position_weights is None:
        dev = np.add.reduceat((contrib - ref[frame])[order], run_starts, axis=0)
        return ref + dev / count.astype(flat.dtype)
    weight, total = _weights(position_weights, flat_pos, frame, num_frames, feat_shape)
    dev = np.add.reduceat((weight * (contrib - ref[frame]))[order], run_starts, axis=0)
    return ref + (dev / total).astype(flat.dtype)


def _weights(
    position_weights: np.ndarray,
    flat_pos: np.ndarray,
    frame: np.ndarray,
    num_frames: int,
    feat_shape: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Per-contribution weights and per-frame weight totals, shaped to broadcast."""
    weight = position_weights[flat_pos % len(position_weights)]
    total = np.bincount(frame, weights=weight, minlength=num_frames)
    pad = (1,) * len(feat_shape)
    return weight.reshape((-1,) + pad), total.reshape((num_frames,) + pad)


def window_position_weights(window_size: int, kind: str) -> np.ndarray | None:
    """Merge weights by position in the window: None for "uniform" (a plain mean); for
    "sine", ``sin(pi (t + 1/2) / T)``, highest mid-window and small but positive at the edges,
    where a window has context on one side only and whose entries and exits would otherwise
    put steps into the merged sequence."""
    if kind == "uniform":
        return None
    if kind == "sine":
        return np.sin(np.pi * (np.arange(window_size) + 0.5) / window_size)
    raise ValueError(f"unknown merge weights {kind!r} (uniform, sine)")


def window_starts(
    num_frames: int,
    model: ModelConfig,
    split: str,
    train_stride: int,
    test_stride_q: int,
    stored_size: int | None = None,
) -> np.ndarray:
    """Train: every start (or every ``train_stride``-th) of windows of ``stored_size`` frames
    (the model's window unless augmentation needs longer ones); otherwise strided windows of
    the model's size with a last one aligned to the end, so every frame is covered."""
    size = model.window_size
    if split == "train":
        return train_starts(num_frames, stored_size or size, train_stride)
    # Raises ValueError when interval * test_stride_q > window_size (frames left uncovered).
    return test_starts(num_frames, size, model.interval * test_stride_q)


def window_arrays(
    seq: Sequence,
    model: ModelConfig,
    split: str,
    train_stride: int = 1,
    test_stride_q: int = 1,
    normalisation: str = "published",
    stored_size: int | None = None,
) -> dict[str, np.ndarray]:
    """The windows of one validated sequence: :func:`stacked_window_arrays` of one."""
    return stacked_window_arrays(
        [seq], model, split, train_stride, test_stride_q, normalisation, stored_size
    )


def joined_windows(
    lengths: Seq[int], starts: Seq[np.ndarray], window_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The windows of sequences joined end to end, as one gather: ``(owner, index, valid)``,
    the sequence of each window, the joined frame at each of its positions, and whether that
    position is a real frame. Past its end a window repeats its own sequence's last frame (as
    :func:`split_windows` pads).

    Shape:
        lengths: ``[S]``; starts[i]: ``[W_i]`` (starts within sequence i); owner: ``[W]``;
        index, valid: ``[W, T]``.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    counts = np.array([len(x) for x in starts], dtype=np.int64)
    owner = np.repeat(np.arange(len(lengths)), counts)  # [W] the sequence of each window
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    local = np.concatenate(starts)[:, None] + np.arange(window_size)[None, :]  # [W, T]
    last = (lengths - 1)[owner][:, None]
    index = first[owner][:, None] + np.minimum(local, last)  # [W, T] into the joined frames
    return owner, index, local <= last


def stacked_window_arrays(
    seqs: list[Sequence],
    model: ModelConfig,
    split: str,
    train_stride: int = 1,
    test_stride_q: int = 1,
    normalisation: str = "published",
    stored_size: int | None = None,
) -> dict[str, np.ndarray]:
    """The windows of validated sequences of one shape (joints x values) as stacked arrays,
    one per window column, the windows of each sequence in turn.

    Column names and meanings follow :func:`hanet.data.arrow.window_schema`. The sequences'
    frames are joined end to end and every window column is one gather from them, so each
    numpy operation runs once for all windows: no per-window Python, and none per sequence
    beyond finding its starts and filling its gaps (with clips of a few dozen frames, numpy's
    cost per call outweighed the arithmetic). Each window is normalised with its own map
    (:func:`hanet.data.normalise.window_norm`), stored as ``scale`` and the offsets. Training
    windows hold ``stored_size`` frames when given (the extra frames feed the time
    augmentation of :mod:`hanet.data.augment`); ``key_mask`` then continues the key-frame
    pattern over them.

    Shape:
        input, target, target_mask: ``[W, T, J * D]``; frame_mask, key_mask: ``[W, T]``;
        input_mask: ``[W, T, J]``; scale: ``[W, D]``; input_offset, target_offset:
        ``[W, T, D]``; sequence_id, split, start, window_size, num_joints, joint_dim: ``[W]``.
    """
    joints, dims = seqs[0].num_joints, seqs[0].joint_dim
    size = stored_size if split == "train" and stored_size else model.window_size
    starts = [
        window_starts(s.num_frames, model, split, train_stride, test_stride_q, size) for s in seqs
    ]
    owner, index, valid = joined_windows([s.num_frames for s in seqs], starts, size)
    filled = np.concatenate([filled_input(s) for s in seqs])  # [F, J, D]
    raw = filled[index]  # [W, T, J, D]
    supervised = np.concatenate([target_mask(s) for s in seqs])[index]  # [W, T, J]
    if any(s.gt is not None for s in seqs):
        # Sequences without ground truth take zeros: their targets are masked out anyway.
        truth = [filled_target(s) for s in seqs]
        known = [
            np.zeros(s.pred.shape, np.float32) if t is None else t for s, t in zip(seqs, truth)
        ]
        gt_raw = np.concatenate(known)[index]  # [W, T, J, D]
    count = len(owner)
    scale = np.empty((count, dims), np.float32)
    in_offset = np.empty((count, size, dims), np.float32)
    tg_offset = np.empty((count, size, dims), np.float32)
    inputs = np.empty((count, size, joints, dims), np.float32)
    targets = np.zeros((count, size, joints, dims), np.float32)
    for rows, seq, measures in measured_groups(seqs, owner, filled, index, normalisation):
        # One map per kind of sequence (representation, layout, image size, ground truth).
        in_norm = window_norm(
            raw[rows],
            valid[rows],
            seq.representation,
            seq.layout,
            normalisation,
            seq.image_size,
            seq.where(),
            measures,
        )
        if isinstance(rows, slice):
            in_norm.apply(raw, out=inputs)  # in place: one pass fewer
        else:
            inputs[rows] = in_norm.apply(raw[rows])
        tg_norm = in_norm
        if seq.gt is not None:
            tg_norm = target_norm(gt_raw[rows], seq, normalisation, in_norm)
            # Unknown ground truth is stored as 0 (never as a value relative to some offset).
            units = tg_norm.apply(gt_raw[rows])
            np.copyto(units, np.float32(0.0), where=~supervised[rows][..., None])
            targets[rows] = units
        scale[rows], in_offset[rows], tg_offset[rows] = (
            in_norm.scale,
            in_norm.offset,
            tg_norm.offset,
        )
    observed = np.concatenate([s.observed() for s in seqs])[index]  # [W, T, J]
    keys = np.arange(size) % model.interval == 0
    return {
        "sequence_id": np.array([s.sequence_id for s in seqs], dtype=object)[owner],
        "split": np.full(count, split, dtype=object),
        "start": np.concatenate(starts).astype(np.int32),
        "window_size": np.full(count, size, dtype=np.int32),
        "num_joints": np.full(count, joints, dtype=np.int32),
        "joint_dim": np.full(count, dims, dtype=np.int32),
        "input": inputs.reshape(count, size, joints * dims),
        "target": targets.reshape(count, size, joints * dims),
        "target_mask": np.repeat(supervised & valid[:, :, None], dims, axis=2),
        "frame_mask": valid,
        "key_mask": np.broadcast_to(keys, (count, size)),
        "input_mask": observed & valid[:, :, None],
        "scale": scale,
        "input_offset": in_offset,
        "target_offset": tg_offset,
    }


def measured_groups(
    seqs: Seq[Sequence],
    owner: np.ndarray,
    filled: np.ndarray,
    index: np.ndarray,
    normalisation: str,
) -> list[tuple[slice | np.ndarray, Sequence, FrameMeasures | None]]:
    """The window rows of each kind of sequence that one map covers (one slice of all rows in
    the usual case), a sequence of that kind, and for the body map the rows' frame measures
    (None for the others), every joined frame measured once per set of roots.

    Shape:
        owner: ``[W]``; filled: ``[F, J, D]`` the joined frames; index: ``[W, T]`` into them
        (:func:`joined_windows`).
    """
    measured: dict[tuple[int, ...], FrameMeasures] = {}
    out: list[tuple[slice | np.ndarray, Sequence, FrameMeasures | None]] = []
    for rows, seq in _norm_groups(seqs, owner):
        measures = None
        if normalisation == "body":
            roots = tuple(layout_roots(seq.layout, filled.shape[1]))
            if roots not in measured:
                measured[roots] = frame_measures(filled, list(roots))
            frames = measured[roots]
            measures = FrameMeasures(frames.extent[index[rows]], frames.root[index[rows]])
        out.append((rows, seq, measures))
    return out


def _norm_groups(
    seqs: Seq[Sequence], owner: np.ndarray
) -> list[tuple[slice | np.ndarray, Sequence]]:
    """The window rows of each kind of sequence that one map covers, with a sequence of that
    kind: one slice of all rows when every sequence is of one kind (the usual case)."""
    kinds: dict[tuple, list[int]] = {}
    for i, seq in enumerate(seqs):
        key = (seq.representation, get_layout(seq.layout), seq.image_size, seq.gt is not None)
        kinds.setdefault(key, []).append(i)
    if len(kinds) == 1:
        return [(slice(None), seqs[0])]
    return [
        (np.flatnonzero(np.isin(owner, members)), seqs[members[0]]) for members in kinds.values()
    ]
