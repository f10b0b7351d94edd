"""Refine whole sequences with a trained HANet: window, run, merge, map back.

The same code serves a notebook user (``Refiner.from_checkpoint(path).refine(seq)``), the
trainer's validation, the evaluation report and the batch-refinement actors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from collections.abc import Sequence as Seq
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from hanet.body_fk import orthonormal_6d
from hanet.checkpoint import Source, load_model
from hanet.config import Config
from hanet.data.causal import causal_ends, causal_sources, causal_windows
from hanet.data.normalise import WindowNorm, filled_input, input_norm
from hanet.data.schema import SchemaError, Sequence
from hanet.data.windows import (
    joined_windows,
    measured_groups,
    merge_windows,
    test_starts,
    window_position_weights,
)
from hanet.errors import UserError
from hanet.model import HANet
from hanet.skeletons import get_layout


class RefineError(UserError, ValueError):
    """A sequence does not fit the checkpoint (layout, joints, representation)."""


@dataclass(frozen=True)
class Cut:
    """Sequences cut into the windows the model reads: one sequence, or several joined end to
    end (:meth:`Refiner.cut_many`), the windows of each in turn.

    ``starts`` index the joined frames (sequence ``i`` begins at ``sum(lengths[:i])``), so one
    merge serves every sequence. Causal cuts (``refine.lookahead``) have one window per output
    frame, some starting before their sequence's first frame (padded).

    Shape:
        starts: ``[W]``; windows: ``[W, T, C]`` in model units; valid: ``[W, T]`` (False at
        padding); norm: the windows' maps to model units; lengths, counts: ``[S]`` frames and
        windows of each sequence; empty: ``[W]``.
    """

    starts: np.ndarray
    windows: np.ndarray
    valid: np.ndarray
    norm: WindowNorm
    lengths: np.ndarray
    counts: np.ndarray
    # Causal cuts (refine.lookahead): True for windows without a single observed joint.
    empty: np.ndarray | None = None


class Refiner:
    """Loads a model once and refines sequences of any length.

    Every frame is covered: windows start every ``config.test_window_step()`` frames
    (``refine.window_step``, else ``N * refine.stride_q``) with a last window aligned to the
    end, short sequences are edge-padded, and overlapping predictions are merged. With
    ``refine.lookahead`` set, each frame comes instead from the one window that ends k frames
    later (:mod:`hanet.data.causal`), as a live stream gets it. Missing input joints get the
    model's estimate but stay marked in ``joint_mask``.
    """

    def __init__(
        self,
        model: HANet,
        config: Config,
        device: torch.device | str | None = None,
    ) -> None:
        self.config = config
        self.device = torch.device(device) if device is not None else _default_device()
        self.model = model.to(self.device).eval()
        cuda = self.device.type == "cuda"
        refine = config.refine
        self.batch_windows = refine.gpu_batch_windows if cuda else refine.batch_windows
        self.bf16 = refine.precision == "bf16" or (refine.precision == "auto" and cuda)
        # Compiled once here; the eager module stays in self.model (weights, checkpoints).
        self.forward = torch.compile(self.model, dynamic=True) if refine.compile else None
        self.weights = window_position_weights(
            config.model.window_size, config.refine.merge_weights
        )

    @classmethod
    def from_checkpoint(cls, source: Source, device: torch.device | str | None = None) -> Refiner:
        """Load a checkpoint (location, path, bytes or file) and refine with its config."""
        model, config = load_model(source)
        return cls(model, config, device=device)

    def check(self, seq: Sequence) -> None:
        cfg = self.config
        if seq.representation != cfg.data.representation:
            raise RefineError(
                f"{seq.where()}: {seq.representation} data, but the checkpoint was trained on "
                f"{cfg.data.representation}"
            )
        trained = cfg.data.joint_layout
        if seq.num_joints != cfg.model.num_joints or seq.joint_dim != cfg.model.joint_dim:
            raise RefineError(
                f"{seq.where()}: {seq.num_joints} joints x {seq.joint_dim}, but the checkpoint "
                f"expects {cfg.model.num_joints} x {cfg.model.joint_dim} (layout "
                f"{trained.name!r})"
            )
        layout = get_layout(seq.layout)
        if layout.joints != trained.joints:
            raise RefineError(
                f"{seq.where()}: joint layout {layout.name!r}, but the checkpoint was trained on "
                f"{trained.name!r} (joints {', '.join(trained.joints[:4])}, ...)"
            )

    def cut(self, seq: Sequence) -> Cut:
        """``seq`` checked, cut into the windows the model reads, and normalised per window."""
        return self.cut_many([seq])

    def cut_many(self, sequences: Seq[Sequence]) -> Cut:
        """Sequences checked and cut as :meth:`cut` cuts each, joined: every gather and map
        runs once for all of them (for clips of a few dozen frames, numpy's cost per call
        outweighed the arithmetic), with the same windows, bit for bit.

        Raises:
            RefineError: A sequence does not fit the checkpoint, or cannot be normalised.
        """
        for seq in sequences:
            self.check(seq)
        config = self.config
        size, channels = config.model.window_size, config.model.channels
        if not len(sequences):
            return _empty_cut(size, channels)
        lengths = np.array([seq.num_frames for seq in sequences], dtype=np.int64)
        if config.refine.lookahead is not None:
            return self._causal_cut(sequences, lengths)
        step = config.test_window_step()
        local = [test_starts(seq.num_frames, size, step) for seq in sequences]
        owner, index, valid = joined_windows(lengths, local, size)
        filled = np.concatenate([filled_input(seq) for seq in sequences])  # [F, J, D]
        raw = filled[index]  # [W, T, J, D]
        try:
            norm = _joined_norm(raw, valid, filled, index, sequences, owner, config)
        except SchemaError as err:
            raise RefineError(str(err)) from None
        windows = norm.apply(raw).reshape(len(index), size, channels)
        counts = np.array([len(starts) for starts in local], dtype=np.int64)
        # A window's first position is its start: it always lies within its own sequence.
        return Cut(index[:, 0], windows, valid, norm, lengths, counts)

    def _causal_cut(self, sequences: Seq[Sequence], lengths: np.ndarray) -> Cut:
        """Causal windows (one per output frame, :mod:`hanet.data.causal`) of each sequence,
        joined."""
        config = self.config
        size, lookahead = config.model.window_size, config.refine.lookahead
        assert lookahead is not None
        first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        parts = []
        for seq, begin in zip(sequences, first):
            ends = causal_ends(seq.num_frames, lookahead)
            raw, valid, empty = causal_windows(seq.pred, seq.observed(), ends, size)
            try:
                norm = input_norm(raw, valid, seq, config.data.normalisation, None)
            except SchemaError as err:
                raise RefineError(str(err)) from None
            parts.append((ends - (size - 1) + begin, norm.apply(raw), valid, norm, empty))
        starts, units, valid, norms, empty = zip(*parts)
        norm = WindowNorm(
            np.concatenate([n.scale for n in norms]), np.concatenate([n.offset for n in norms])
        )
        windows = np.concatenate(units).reshape(-1, size, config.model.channels)
        counts = np.array([len(s) for s in starts], dtype=np.int64)
        return Cut(
            np.concatenate(starts),
            windows,
            np.concatenate(valid),
            norm,
            lengths,
            counts,
            np.concatenate(empty),
        )

    def merge(self, seq: Sequence, cut: Cut, outputs: np.ndarray) -> np.ndarray:
        """The model's window outputs mapped back (each with its own normalisation) and merged
        into one sequence of poses ``[F, J, D]`` (float32): averaged over overlapping windows,
        then smoothed over time by ``refine.smooth_sigma``; or for causal cuts each frame taken
        from its one window (NaN where that window saw no joint at all)."""
        return self.merge_many([seq], cut, outputs)[0]

    def merge_many(
        self, sequences: Seq[Sequence], cut: Cut, outputs: np.ndarray
    ) -> list[np.ndarray]:
        """:meth:`merge` of every sequence of a :meth:`cut_many` cut, mapped back and merged
        in one pass over all windows (smoothed sequence by sequence: never across two).

        Shape:
            outputs: ``[W, T, C]``, the model's outputs for ``cut.windows``.
        """
        if not len(sequences):
            return []
        size, joints = self.config.model.window_size, sequences[0].num_joints
        back = cut.norm.invert(outputs.reshape(len(cut.starts), size, joints, -1))
        lookahead = self.config.refine.lookahead
        if lookahead is None:
            total = int(cut.lengths.sum())
            joined = merge_windows(back, cut.starts, total, cut.valid, self.weights)
            merged = np.split(joined, np.cumsum(cut.lengths)[:-1])
            sigma = self.config.refine.smooth_sigma
            if sigma > 0:
                merged = [gaussian_filter1d(m, sigma, axis=0, mode="nearest") for m in merged]
        else:
            assert cut.empty is not None
            merged = []
            for seq, rows in zip(sequences, _row_slices(cut.counts)):
                window, position = causal_sources(seq.num_frames, lookahead, size)
                part = back[rows][window, position]
                part[cut.empty[rows][window]] = np.nan
                merged.append(part)
        if sequences[0].representation == "smpl":  # one representation per checkpoint
            merged = [orthonormal_6d(m) for m in merged]  # written and scored as valid rotations
        return [m.astype(np.float32) for m in merged]

    @torch.inference_mode()
    def refine_many(self, sequences: Iterable[Sequence]) -> list[Sequence]:
        """Refine several sequences, batching their windows together."""
        sequences = list(sequences)
        if not sequences:
            return []
        cut = self.cut_many(sequences)
        merged = self.merge_many(sequences, cut, self.run_windows(cut.windows))
        return [dataclasses.replace(seq, pred=pred) for seq, pred in zip(sequences, merged)]

    def refine(self, seq: Sequence) -> Sequence:
        """A copy of ``seq`` whose ``pred`` holds the refined poses."""
        return self.refine_many([seq])[0]

    @torch.inference_mode()
    def run_windows(self, windows: np.ndarray) -> np.ndarray:
        """The model's final poses for normalised windows ``[W, T, C]``, in batches of
        ``refine.batch_windows`` (float32 out, whatever the arithmetic)."""
        forward = self.model if self.forward is None else self.forward
        cuda = self.device.type == "cuda"
        results = []
        for begin in range(0, len(windows), self.batch_windows):
            chunk = torch.from_numpy(
                np.ascontiguousarray(windows[begin : begin + self.batch_windows], np.float32)
            )
            if cuda:  # page-locked, so the copy overlaps the previous batch's kernels
                chunk = chunk.pin_memory().to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                out = forward(chunk).final
            results.append(out.float().cpu().numpy())
        return np.concatenate(results) if results else np.zeros_like(windows)


def _joined_norm(
    raw: np.ndarray,
    valid: np.ndarray,
    filled: np.ndarray,
    index: np.ndarray,
    sequences: Seq[Sequence],
    owner: np.ndarray,
    config: Config,
) -> WindowNorm:
    """The maps of joined windows: one :func:`input_norm` per kind of sequence
    (:func:`hanet.data.windows.measured_groups`; one for all in the usual case).

    Shape:
        raw: ``[W, T, J, D]``; valid, index: ``[W, T]``; filled: ``[F, J, D]``; owner: ``[W]``.
    """
    mode = config.data.normalisation
    groups = measured_groups(sequences, owner, filled, index, mode)
    if len(groups) == 1:
        _, seq, measures = groups[0]
        return input_norm(raw, valid, seq, mode, measures)
    count, frames, _, dims = raw.shape
    scale, offset = np.empty((count, dims)), np.empty((count, frames, dims))
    for rows, seq, measures in groups:
        norm = input_norm(raw[rows], valid[rows], seq, mode, measures)
        scale[rows], offset[rows] = norm.scale, norm.offset
    return WindowNorm(scale, offset)


def _empty_cut(size: int, channels: int) -> Cut:
    none = np.zeros(0, np.int64)
    return Cut(
        none,
        np.zeros((0, size, channels), np.float32),
        np.zeros((0, size), bool),
        WindowNorm(np.zeros((0, 1)), np.zeros((0, size, 1))),
        none,
        none,
    )


def _row_slices(counts: np.ndarray) -> list[slice]:
    """The window rows of each sequence of a joined cut."""
    ends = np.cumsum(counts)
    return [slice(int(end - count), int(end)) for end, count in zip(ends, counts)]


def _default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
