"""Live refinement, frame by frame, with a fixed delay of k frames.

``StreamRefiner.from_checkpoint("model.pt", lookahead=2)`` refines one stream in process (a
notebook, a capture loop; no Ray): ``push`` one frame, get back the frames that became final;
``flush`` at the end. Frame t is final once frame t + k has arrived: it is read from the window
that ends there (:mod:`hanet.data.causal`), so the output equals the offline refinement with
``refine.lookahead=k`` frame by frame. Memory per stream is constant: the last T frames.

The pieces are separate so that a server can hold many streams and run their windows as one
batch (:mod:`hanet.live`): a :class:`StreamState` per stream turns frames into
:class:`WindowJob` s, and a :class:`WindowRunner` runs any number of jobs in one forward pass.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from hanet.body_fk import orthonormal_6d
from hanet.checkpoint import Source, load_model
from hanet.config import Config
from hanet.data.causal import fill_windows, tail_positions
from hanet.data.normalise import WindowNorm, window_norm
from hanet.data.schema import SchemaError
from hanet.model import HANet
from hanet.refiner import RefineError, Refiner

__all__ = [
    "StreamRefiner",
    "StreamState",
    "WindowJob",
    "WindowRunner",
    "frame_arrays",
    "live_lookahead",
]


def live_lookahead(config: Config) -> int:
    """The delay a live refiner uses by default: ``refine.lookahead``, else the one the model
    was trained for (``train.lookahead``), else 0."""
    for value in (config.refine.lookahead, config.train.lookahead):
        if value is not None:
            return value
    return 0


@dataclass(frozen=True)
class WindowJob:
    """One window to run and the frames to read from it.

    Shape:
        units: ``[T, C]`` in model units; norm: one window's map; positions, frames: ``[n]``.
    """

    units: np.ndarray
    norm: WindowNorm
    positions: np.ndarray
    frames: np.ndarray
    empty: bool


def frame_arrays(
    keypoints: np.ndarray, confidence: np.ndarray | None, joints: int, dims: int
) -> tuple[np.ndarray, np.ndarray]:
    """One frame's poses and which joints are present (finite, and confidence above 0).

    Shape:
        keypoints: ``[J, D]``; confidence: ``[J]``; outputs ``[J, D]`` float32 and ``[J]`` bool.

    Raises:
        ValueError: wrong shapes, or an infinite coordinate.
    """
    pose = np.asarray(keypoints, np.float32)
    if pose.shape != (joints, dims):
        raise ValueError(f"a frame must be {joints} joints x {dims}, got shape {pose.shape}")
    if np.isinf(pose).any():
        raise ValueError("keypoints contain inf")
    present = ~np.isnan(pose).any(axis=1)
    if confidence is not None:
        score = np.asarray(confidence, np.float32)
        if score.shape != (joints,):
            raise ValueError(f"confidence must hold {joints} values, got shape {score.shape}")
        present &= np.nan_to_num(score, nan=0.0) > 0
    return np.where(present[:, None], pose, 0.0).astype(np.float32), present


class StreamState:
    """The last T frames of one stream, turned into causal windows as frames arrive.

    Args:
        config: the run configuration (window, layout, normalisation).
        lookahead: k, the delay in frames.
        image_size: ``(width, height)`` for 2D ``published`` normalisation (else the config's
            ``data.image_width/height``); not needed for ``body``.

    Raises:
        RefineError: a look-ahead outside the window, or a missing image size.
    """

    def __init__(
        self, config: Config, lookahead: int, image_size: tuple[int, int] | None = None
    ) -> None:
        size = config.model.window_size
        if not 0 <= lookahead < size:
            raise RefineError(f"lookahead={lookahead} must be in [0, {size - 1}] for this model")
        self.config, self.lookahead, self.size = config, lookahead, size
        self.image_size = image_size or config.data.image_size
        if (
            config.data.normalisation == "published"
            and config.data.representation == "2D"
            and self.image_size is None
        ):
            raise RefineError(
                "this model normalises 2D input by the image size (data.normalisation="
                "published): give the stream's image size (image_size; to the service, "
                '"image_size": [width, height] with a stream\'s first frames) or set '
                "data.image_width and data.image_height"
            )
        self.poses: deque[np.ndarray] = deque(maxlen=size)
        self.present: deque[np.ndarray] = deque(maxlen=size)
        self.count = 0  # frames pushed
        self.done = 0  # frames handed out

    def push(self, pose: np.ndarray, present: np.ndarray) -> WindowJob | None:
        """Add one frame (:func:`frame_arrays`); the window job of the frame that became final,
        if one did."""
        self.poses.append(pose)
        self.present.append(present)
        self.count += 1
        if self.count <= self.lookahead:
            return None
        return self._job(np.array([self.size - 1 - self.lookahead]))

    def flush(self) -> WindowJob | None:
        """The job for the frames still pending (read from the window ending at the last
        frame), None when there are none; the state is then empty, ready for a new stream."""
        pending = self.count - self.done
        job = self._job(tail_positions(pending, self.lookahead, self.size)) if pending else None
        self.poses.clear()
        self.present.clear()
        self.count = self.done = 0
        return job

    def _job(self, positions: np.ndarray) -> WindowJob:
        pad = self.size - len(self.poses)  # before T frames: repeat the first one, as padding
        poses = np.stack([self.poses[0]] * pad + list(self.poses))[None]  # [1, T, J, D]
        present = np.stack([self.present[0]] * pad + list(self.present))[None]
        valid = (np.arange(self.size) >= pad)[None]
        raw = fill_windows(poses, present)
        data = self.config.data
        try:
            norm = window_norm(
                raw,
                valid,
                data.representation,
                data.joint_layout,
                data.normalisation,
                self.image_size,
                "stream",
            )
        except SchemaError as err:
            raise RefineError(str(err)) from None
        units = norm.apply(raw).reshape(self.size, -1)
        frames = self.count - self.size + positions
        self.done = int(frames[-1]) + 1
        return WindowJob(units, norm, positions, frames, not present.any())


class WindowRunner:
    """Runs the jobs of any number of streams as one batch and maps each back.

    Args:
        refiner: holds the model, its device and the batch size (``refine.batch_windows``).
    """

    def __init__(self, refiner: Refiner) -> None:
        self.refiner = refiner
        self.joints = refiner.config.model.num_joints
        self.smpl = refiner.config.data.representation == "smpl"

    def run(self, jobs: list[WindowJob]) -> list[np.ndarray]:
        """Every job's refined frames in original units.

        Shape:
            Output: one ``[n, J, D]`` float32 array per job (NaN for a window without a single
            observed joint).
        """
        if not jobs:
            return []
        outputs = self.refiner.run_windows(np.stack([job.units for job in jobs]))
        results = []
        for job, out in zip(jobs, outputs):
            units = out[job.positions].reshape(1, len(job.positions), self.joints, -1)
            norm = WindowNorm(job.norm.scale, job.norm.offset[:, job.positions])
            poses = norm.invert(units)[0]
            if job.empty:
                poses[:] = np.nan
            if self.smpl:
                poses = orthonormal_6d(poses)
            results.append(poses.astype(np.float32))
        return results


class StreamRefiner:
    """Refines one live stream with a delay of ``lookahead`` frames.

    Args:
        model: a trained HANet.
        config: its configuration.
        lookahead: k; None takes :func:`live_lookahead` of the config.
        device: where the model runs (default: CUDA if available).
        image_size: ``(width, height)`` when the model normalises 2D by the image size.
    """

    def __init__(
        self,
        model: HANet,
        config: Config,
        lookahead: int | None = None,
        device: torch.device | str | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> None:
        if lookahead is None:
            lookahead = live_lookahead(config)
        self.runner = WindowRunner(Refiner(model, config, device=device))
        self.state = StreamState(config, lookahead, image_size)
        self.joints, self.dims = config.model.num_joints, config.model.joint_dim

    @classmethod
    def from_checkpoint(
        cls,
        source: Source,
        lookahead: int | None = None,
        device: torch.device | str | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> StreamRefiner:
        """Load a checkpoint (location, path, bytes or file) and refine one stream with it."""
        model, config = load_model(source)
        return cls(model, config, lookahead, device, image_size)

    @property
    def lookahead(self) -> int:
        return self.state.lookahead

    def push(self, keypoints: np.ndarray, confidence: np.ndarray | None = None) -> list[np.ndarray]:
        """Add one frame ``[J, D]`` (missing joints as NaN, or confidence 0); the frames that
        became final, in order (each ``[J, D]``; at most one)."""
        pose, present = frame_arrays(keypoints, confidence, self.joints, self.dims)
        return self._run(self.state.push(pose, present))

    def flush(self) -> list[np.ndarray]:
        """The last frames of the stream (up to k, read from the last window); the refiner is
        then ready for a new stream."""
        return self._run(self.state.flush())

    def _run(self, job: WindowJob | None) -> list[np.ndarray]:
        return [] if job is None else list(self.runner.run([job])[0])
