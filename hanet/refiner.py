"""Refine whole sequences with a trained HANet: window, run, merge, map back.

The same code serves a notebook user (``Refiner.from_checkpoint(path).refine(seq)``), the
trainer's validation, the evaluation report and the batch-refinement actors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import torch

from hanet.config import Config
from hanet.dataset import denormalise, normalise
from hanet.model import HANet
from hanet.schema import SchemaError, Sequence
from hanet.windows import merge_windows, split_windows, test_starts, window_position_weights


class RefineError(ValueError):
    """A sequence does not fit the checkpoint (layout, joints, representation)."""


class Refiner:
    """Loads a model once and refines sequences of any length.

    Every frame is covered: windows start every ``N * stride_q`` frames (or every
    ``refine.window_step`` frames when the config sets it) with a last window
    aligned to the end, short sequences are edge-padded, and overlapping predictions are
    averaged. Missing input joints get the model's estimate but stay marked in ``joint_mask``.
    """

    def __init__(
        self,
        model: HANet,
        config: Config,
        stride_q: int | None = None,
        batch_windows: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        self.config = config
        self.device = torch.device(device) if device is not None else _default_device()
        self.model = model.to(self.device).eval()
        self.stride_q = stride_q or config.refine.stride_q
        self.batch_windows = batch_windows or config.refine.batch_windows

    @classmethod
    def from_checkpoint(cls, source, **kwargs) -> Refiner:  # noqa: ANN001 - path or file
        from hanet.checkpoint import load_model

        model, config = load_model(source)
        return cls(model, config, **kwargs)

    def check(self, seq: Sequence) -> None:
        cfg = self.config
        if seq.representation != cfg.data.representation:
            raise RefineError(
                f"{seq.where()}: {seq.representation} data, but the checkpoint was trained on "
                f"{cfg.data.representation}"
            )
        if seq.num_joints != cfg.model.num_joints or seq.joint_dim != cfg.model.joint_dim:
            raise RefineError(
                f"{seq.where()}: {seq.num_joints} joints x {seq.joint_dim}, but the checkpoint "
                f"expects {cfg.model.num_joints} x {cfg.model.joint_dim} (layout "
                f"{cfg.data.layout!r})"
            )
        if seq.layout != cfg.data.layout:
            raise RefineError(
                f"{seq.where()}: joint layout {seq.layout!r}, but the checkpoint was trained on "
                f"{cfg.data.layout!r}"
            )

    @torch.inference_mode()
    def refine_many(self, sequences: Iterable[Sequence]) -> list[Sequence]:
        """Refine several sequences, batching their windows together."""
        sequences = list(sequences)
        size, channels = self.config.model.window_size, self.config.model.channels
        step = self.config.test_window_step(self.stride_q)
        pieces = []
        for seq in sequences:
            self.check(seq)
            try:
                norm = normalise(seq)
            except SchemaError as err:
                raise RefineError(str(err)) from None
            starts = test_starts(seq.num_frames, size, step)
            windows, valid = split_windows(norm.input.reshape(-1, channels), starts, size)
            pieces.append((seq, norm, starts, windows, valid))
        if not pieces:
            return []
        weights = window_position_weights(size, self.config.refine.merge_weights)
        all_windows = np.concatenate([p[3] for p in pieces])
        outputs = self.run_windows(all_windows)
        refined = []
        offset = 0
        for seq, norm, starts, windows, valid in pieces:
            out = outputs[offset : offset + len(windows)]
            offset += len(windows)
            merged = merge_windows(out, starts, seq.num_frames, valid, weights)
            poses = denormalise(
                merged.reshape(seq.num_frames, seq.num_joints, seq.joint_dim),
                norm.scale,
                norm.input_offset,
            )
            refined.append(dataclasses.replace(seq, pred=poses.astype(np.float32)))
        return refined

    def refine(self, seq: Sequence) -> Sequence:
        """A copy of ``seq`` whose ``pred`` holds the refined poses."""
        return self.refine_many([seq])[0]

    @torch.inference_mode()
    def run_windows(self, windows: np.ndarray) -> np.ndarray:
        """The model's final poses for normalised windows ``[W, T, C]``, in chunks."""
        results = []
        for begin in range(0, len(windows), self.batch_windows):
            chunk = torch.from_numpy(
                np.ascontiguousarray(windows[begin : begin + self.batch_windows])
            )
            out = self.model(chunk.to(self.device, torch.float32)).final
            results.append(out.float().cpu().numpy())
        return np.concatenate(results) if results else np.zeros_like(windows)


def _default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
