"""Refine whole sequences with a trained HANet: window, run, merge, map back.

The same code serves a notebook user (``Refiner.from_checkpoint(path).refine(seq)``), the
trainer's validation, the evaluation report and the batch-refinement actors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
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
    merge_windows,
    split_windows,
    test_starts,
    window_measures,
    window_position_weights,
)
from hanet.errors import UserError
from hanet.model import HANet
from hanet.skeletons import get_layout


class RefineError(UserError, ValueError):
    """A sequence does not fit the checkpoint (layout, joints, representation)."""


@dataclass(frozen=True)
class Cut:
    """A sequence cut into the windows the model reads.

    Causal cuts (``refine.lookahead``) have one window per output frame, some starting before
    the first frame (negative starts, padded).

    Shape:
        starts: ``[W]``; windows: ``[W, T, C]`` in model units; valid: ``[W, T]`` (False at
        padding); norm: the windows' maps to model units; empty: ``[W]``.
    """

    starts: np.ndarray
    windows: np.ndarray
    valid: np.ndarray
    norm: WindowNorm
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
        self.check(seq)
        config = self.config
        size = config.model.window_size
        lookahead, empty = config.refine.lookahead, None
        if lookahead is None:
            starts = test_starts(seq.num_frames, size, config.test_window_step())
            filled = filled_input(seq)
            raw, valid = split_windows(filled, starts, size)  # [W, T, J, D]
            measures = window_measures(filled, seq.layout, starts, size)
        else:
            ends = causal_ends(seq.num_frames, lookahead)
            raw, valid, empty = causal_windows(seq.pred, seq.observed(), ends, size)
            starts, measures = ends - (size - 1), None
        try:
            norm = input_norm(raw, valid, seq, config.data.normalisation, measures)
        except SchemaError as err:
            raise RefineError(str(err)) from None
        windows = norm.apply(raw).reshape(len(starts), size, config.model.channels)
        return Cut(starts, windows, valid, norm, empty)

    def merge(self, seq: Sequence, cut: Cut, outputs: np.ndarray) -> np.ndarray:
        """The model's window outputs mapped back (each with its own normalisation) and merged
        into one sequence of poses ``[F, J, D]`` (float32): averaged over overlapping windows,
        then smoothed over time by ``refine.smooth_sigma``; or for causal cuts each frame taken
        from its one window (NaN where that window saw no joint at all)."""
        size = self.config.model.window_size
        back = cut.norm.invert(outputs.reshape(len(cut.starts), size, seq.num_joints, -1))
        lookahead = self.config.refine.lookahead
        if lookahead is None:
            merged = merge_windows(back, cut.starts, seq.num_frames, cut.valid, self.weights)
            sigma = self.config.refine.smooth_sigma
            if sigma > 0:
                merged = gaussian_filter1d(merged, sigma, axis=0, mode="nearest")
        else:
            window, position = causal_sources(seq.num_frames, lookahead, size)
            merged = back[window, position]
            merged[cut.empty[window]] = np.nan
        if seq.representation == "smpl":
            merged = orthonormal_6d(merged)  # written and scored as valid rotations
        return merged.astype(np.float32)

    @torch.inference_mode()
    def refine_many(self, sequences: Iterable[Sequence]) -> list[Sequence]:
        """Refine several sequences, batching their windows together."""
        sequences = list(sequences)
        cuts = [self.cut(seq) for seq in sequences]
        if not cuts:
            return []
        outputs = self.run_windows(np.concatenate([cut.windows for cut in cuts]))
        refined, offset = [], 0
        for seq, cut in zip(sequences, cuts):
            out = outputs[offset : offset + len(cut.starts)]
            offset += len(cut.starts)
            refined.append(dataclasses.replace(seq, pred=self.merge(seq, cut, out)))
        return refined

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


def _default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
