"""The sections of the run configuration: one frozen dataclass each, with its own checks.

:mod:`hanet.config` assembles them into :class:`~hanet.config.Config` and loads them from YAML.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from hanet.skeletons import LAYOUTS, JointLayout, layout_from_mapping
from hanet.strict import require

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "LayoutConfig",
    "ModelConfig",
    "RefineConfig",
    "Representation",
    "ServeConfig",
    "SourceConfig",
    "TrainConfig",
    "TuneConfig",
]

Representation = Literal["2D", "3D", "smpl"]


@dataclass(frozen=True)
class ModelConfig:
    """HANet architecture.

    ``interval`` is N (a key frame every N frames), ``num_intervals`` is Q, so a window holds
    ``T = N * Q + 1`` frames and ``Q + 1`` key frames.
    """

    num_joints: int = 15
    joint_dim: int = 2
    interval: int = 10
    num_intervals: int = 1
    hidden_dim: int = 256
    num_stages: int = 5
    num_heads: int = 4
    dropout: float = 0.1
    pre_norm: bool = False
    # "double": stage i has width hidden_dim * 2**i (published); "constant": every stage hidden_dim.
    width_growth: Literal["double", "constant"] = "double"
    decoder_kernel: int = 5
    # Output heads' initialisation. "xavier" like every other layer (the released code);
    # "zero": both heads start at 0, so an untrained model returns the key-frame-interpolated
    # input and training only has to learn corrections. On small datasets "zero" converges in a
    # fraction of the epochs and overfits less.
    head_init: Literal["xavier", "zero"] = "xavier"
    # Window-relative input: "none" feeds coordinates as they are (published); "centre"
    # subtracts each window's mean key-frame position per coordinate axis and adds it
    # back to both outputs, so the network sees the motion and the noise rather than where in
    # the image the person stands (translation-equivariant by construction).
    input_norm: Literal["none", "centre"] = "none"

    @property
    def window_size(self) -> int:
        """Frames per window, T = N * Q + 1."""
        return self.interval * self.num_intervals + 1

    @property
    def channels(self) -> int:
        """Flattened coordinates per frame, C = J * D."""
        return self.num_joints * self.joint_dim

    def stage_width(self, stage: int) -> int:
        return self.hidden_dim * (2**stage if self.width_growth == "double" else 1)

    def validate(self) -> None:
        require(self.num_joints >= 1, "model.num_joints", "must be >= 1")
        require(self.joint_dim >= 1, "model.joint_dim", "must be >= 1")
        require(self.interval >= 1, "model.interval", "must be >= 1")
        # At least two key frames per window: a window whose attention keys are all masked
        # yields NaN.
        require(self.num_intervals >= 1, "model.num_intervals", "must be >= 1")
        require(self.num_stages >= 1, "model.num_stages", "must be >= 1")
        require(self.num_heads >= 1, "model.num_heads", "must be >= 1")
        require(
            self.hidden_dim % self.num_heads == 0 and self.hidden_dim % 2 == 0,
            "model.hidden_dim",
            f"must be even and divisible by model.num_heads={self.num_heads}",
        )
        require(0.0 <= self.dropout < 1.0, "model.dropout", "must be in [0, 1)")
        require(self.decoder_kernel % 2 == 1, "model.decoder_kernel", "must be odd")


@dataclass(frozen=True)
class LayoutConfig:
    """A declared joint layout (:mod:`hanet.skeletons`), kept in full in the config so that a
    dataset or a checkpoint needs no layout file to be read again."""

    name: str
    joints: tuple[str, ...]
    roots: tuple[str, ...] = ()
    bones: tuple[str, ...] = ()  # "a-b" pairs
    left_right: tuple[str, ...] = ()  # "a-b" mirror pairs


@dataclass(frozen=True)
class SourceConfig:
    """One input of a dataset: a published-layout root or a folder of pose files, local or
    ``s3://``, with the dataset and estimator names to take from it (None: every one)."""

    path: str
    dataset: str | None = None
    estimator: str | None = None


@dataclass(frozen=True)
class DataConfig:
    """What the data is and how it is cut into windows."""

    # Published-layout names: groundtruth_poses/<dataset>/, detected_poses/<dataset>/<estimator>/.
    # None takes every pair found.
    dataset: str | None = "jhmdb"
    estimator: str | None = "simplebaseline"
    # Several inputs mixed into one dataset (each with its own names); empty: the command
    # line's --input with the names above.
    sources: tuple[SourceConfig, ...] = ()
    representation: Representation = "2D"
    # A built-in layout's name, or a declared one (a YAML file's path on input; stored in full).
    layout: str | LayoutConfig = "jhmdb"
    # Model units (hanet.data.normalise): "published" divides 2D by the image size and makes 3D
    # root-relative, as released; "body" centres every window on the body and divides by the
    # body size measured from the window itself (no image size needed).
    normalisation: Literal["published", "body"] = "published"
    fps: float = 30.0
    # Image size for 2D inputs whose files do not carry it (keypoint JSON without "images").
    image_width: int | None = None
    image_height: int | None = None
    # Train windows start every `train_stride` frames (1 = every start, as published).
    train_stride: int = 1
    # Test windows start every `interval * test_stride_q` frames; the last is aligned to the end.
    test_stride_q: int = 1
    # Fraction of train sequences (by sequence) held out for model selection.
    val_fraction: float = 0.1
    # Approximate rows per Parquet shard.
    shard_rows: int = 20000
    seed: int = 4321

    def validate(self) -> None:
        require(self.train_stride >= 1, "data.train_stride", "must be >= 1")
        require(self.test_stride_q >= 1, "data.test_stride_q", "must be >= 1")
        require(0.0 <= self.val_fraction < 1.0, "data.val_fraction", "must be in [0, 1)")
        require(self.shard_rows >= 1, "data.shard_rows", "must be >= 1")
        require(self.fps > 0, "data.fps", "must be > 0")
        require(
            (self.image_width is None) == (self.image_height is None),
            "data.image_width",
            "set data.image_width and data.image_height together",
        )

    @property
    def image_size(self) -> tuple[int, int] | None:
        if self.image_width is None or self.image_height is None:
            return None
        return (self.image_width, self.image_height)

    @property
    def joint_layout(self) -> JointLayout:
        """The joint layout the data is in."""
        if isinstance(self.layout, LayoutConfig):
            return layout_from_mapping(dataclasses.asdict(self.layout), "data.layout")
        return LAYOUTS[self.layout]  # checked by from_dict


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, loss and Ray Train scaling."""

    epochs: int = 70
    # Windows per optimiser step on each worker (the global batch is num_workers times this).
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    amsgrad: bool = True
    # "exponential": lr *= lr_decay after each epoch; "warmup_cosine": per-iteration linear
    # warm-up then cosine to min_lr.
    schedule: Literal["exponential", "warmup_cosine"] = "exponential"
    lr_decay: float = 0.95
    warmup_epochs: int = 5
    warmup_start_lr: float = 1e-6
    min_lr: float = 1e-5
    grad_clip: float = 1.0
    # Loss: lambda * L1(final, gt) + w * (L1(refined, gt) + L1(final, refined)) + OHKM.
    loss_lambda: float = 5.0
    loss_w: float = 1.0
    mutual: Literal["symmetric", "teacher"] = "symmetric"
    # Weight of an acceleration L1 term on the final poses (0 = the published loss).
    accel_weight: float = 0.0
    seed: int = 4321
    num_workers: int = 2
    use_gpu: bool = False
    cpus_per_worker: float = 0.5
    amp: bool = True
    keep_checkpoints: int = 2
    max_failures: int = 1
    # Causal training for refine.lookahead=k: the frame k before each window's end, the one a
    # causal refiner outputs, gets an extra final-pose L1 term weighted lookahead_weight (times
    # loss_lambda), and a share of the windows is start-padded as at a stream's start
    # (lookahead_pad). None = the published loss only.
    lookahead: int | None = None
    lookahead_weight: float = 1.0
    lookahead_pad: float = 0.0
    # Weight of the causal output's acceleration error over three consecutive frames, each
    # from its own window (hanet.losses.causal_accel_l1; triples the forward passes).
    lookahead_accel: float = 0.0
    # Optimiser steps per epoch and worker; 0 = the whole shard.
    max_steps_per_epoch: int = 0
    # Keep the window datasets in Ray's object store after the first read, so epochs do not
    # re-read Parquet. Turn off for corpora larger than the cluster's object store.
    materialize: bool = True

    def validate(self) -> None:
        require(self.epochs >= 1, "train.epochs", "must be >= 1")
        require(self.batch_size >= 1, "train.batch_size", "must be >= 1")
        require(self.lr > 0, "train.lr", "must be > 0")
        require(self.num_workers >= 1, "train.num_workers", "must be >= 1")
        require(self.cpus_per_worker > 0, "train.cpus_per_worker", "must be > 0")
        require(self.keep_checkpoints >= 1, "train.keep_checkpoints", "must be >= 1")
        require(self.max_failures >= 0, "train.max_failures", "must be >= 0")
        require(0 < self.lr_decay <= 1, "train.lr_decay", "must be in (0, 1]")
        require(self.lookahead is None or self.lookahead >= 0, "train.lookahead", "must be >= 0")
        require(self.lookahead_weight >= 0, "train.lookahead_weight", "must be >= 0")
        require(0 <= self.lookahead_pad <= 1, "train.lookahead_pad", "is a fraction in [0, 1]")
        require(self.lookahead_accel >= 0, "train.lookahead_accel", "must be >= 0")


@dataclass(frozen=True)
class AugmentConfig:
    """On-the-fly augmentation of training windows (:mod:`hanet.data.augment`); all off by
    default (the published training has none). Validation and test are never augmented."""

    # Probability of a horizontal mirror with the layout's left/right joints swapped.
    mirror: float = 0.0
    # Rotation up to +/- this many degrees: in the image plane (2D), about the vertical axis (3D).
    rotate_deg: float = 0.0
    # Global scale by up to +/- this fraction, and (2D) a shift by up to this many body sizes.
    scale: float = 0.0
    translate: float = 0.0
    # 3D: every bone's length changed by up to +/- this fraction (needs the layout's bones).
    bone_jitter: float = 0.0
    # Playback speed drawn from [speed_min, speed_max] (1 = as captured); a speed above 1 makes
    # preprocessing store longer training windows.
    speed_min: float = 1.0
    speed_max: float = 1.0
    # 3D: the up axis of the coordinates (y for camera frames).
    vertical_axis: int = 1

    @property
    def enabled(self) -> bool:
        return any(
            (self.mirror, self.rotate_deg, self.scale, self.translate, self.bone_jitter)
        ) or (self.speed_min, self.speed_max) != (1.0, 1.0)

    def validate(self) -> None:
        require(0.0 <= self.mirror <= 1.0, "augment.mirror", "is a probability in [0, 1]")
        for key in ("rotate_deg", "scale", "translate", "bone_jitter"):
            require(getattr(self, key) >= 0, f"augment.{key}", "must be >= 0")
        require(self.scale < 1 and self.bone_jitter < 1, "augment.scale", "must be below 1")
        require(
            0 < self.speed_min <= self.speed_max <= 4,
            "augment.speed_min",
            "needs 0 < speed_min <= speed_max <= 4",
        )
        require(self.vertical_axis in (0, 1, 2), "augment.vertical_axis", "is 0, 1 or 2")


@dataclass(frozen=True)
class TuneConfig:
    """Ray Tune sweep settings (the search space lives in its own YAML)."""

    num_samples: int = 4
    max_concurrent: int = 0  # 0 = bounded by available CPUs/GPUs
    grace_period: int = 1
    reduction_factor: int = 2
    cpus_per_trial: float = 0.5
    workers_per_trial: int = 1

    def validate(self) -> None:
        require(self.num_samples >= 1, "tune.num_samples", "must be >= 1")
        require(self.max_concurrent >= 0, "tune.max_concurrent", "must be >= 0")
        require(self.grace_period >= 1, "tune.grace_period", "must be >= 1")
        require(self.reduction_factor >= 2, "tune.reduction_factor", "must be >= 2")


@dataclass(frozen=True)
class RefineConfig:
    """Batch refinement settings."""

    # Test-time window step is interval * stride_q frames (key frames of all windows aligned,
    # as published) unless window_step is set.
    stride_q: int = 1
    # Frames between window starts, overriding stride_q when > 0. With 1 every frame is a key
    # frame in some windows and an interpolated frame in others; averaging them all removes
    # the kinks at key frames (smoother output) for about interval x the windows.
    window_step: int = 0
    # How overlapping windows merge: "uniform" mean (published) or "sine"-weighted towards
    # each window's centre (see hanet.windows.window_position_weights).
    merge_weights: Literal["uniform", "sine"] = "uniform"
    # Gaussian smoothing of the merged poses over time, sigma in frames (0 = off; offline
    # refinement only). Windows far apart (a large window_step) leave small kinks where one
    # window hands over to the next; sigma 1 smooths them for a fraction of the cost of more
    # windows (benchmarks/refine_frontier.py).
    smooth_sigma: float = 0.0
    # Causal refinement with a delay of k frames (hanet.data.causal): frame t comes from the one
    # window that ends at frame t + k, so it depends on input frames <= t + k only (window_step
    # and merge_weights then do not apply). None = offline refinement of merged windows.
    lookahead: int | None = None
    # Windows per forward pass, packed across sequences and objects: on a CPU, and on a GPU
    # (where a pass must be large to fill the device; 4096 demo windows take about 0.2 GB).
    batch_windows: int = 256
    gpu_batch_windows: int = 4096
    # Objects per call of a batch-refinement actor: their windows fill batches together while
    # the reads and writes of the others run on ``io_threads`` threads. Between calls an actor
    # waits for Ray Data's hand-over (14 ms per call of 8 files of 4 clips, 7 ms per call of 16):
    # 16 instead of 8 such files took the demo model at window step 21 from 17,277 / 16,528 /
    # 16,696 to 17,623 / 19,179 / 18,799 frames/s end to end (alternated runs), at step 5 2-5 %
    # up, at step 1 the same. A call holds its objects in memory together: lower it for inputs
    # of hundreds of MB each.
    batch_objects: int = 16
    io_threads: int = 4
    concurrency: int = 1
    cpus_per_actor: float = 0.5
    output_format: Literal["parquet", "same"] = "parquet"
    # Arithmetic of the forward pass: "auto" is bf16 autocast on a GPU and float32 on a CPU
    # (where bf16 matmuls are slower on most cores).
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # torch.compile the model once per refiner: a start-up cost of seconds to minutes (9 s for
    # the demo model on two CPU cores) for 1.2x the eager forward pass at large window steps and
    # 0.7x at step 1 there (benchmarks/refine_throughput.py --compile); off by default.
    compile: bool = False
    # Objects whose refinement moved the observed joints by more than this many body sizes on
    # average are listed in the refine summary (a corpus unlike the training data). A body size
    # is the median joint distance from the pose centre; the demo model moves the sequences of
    # its own dataset by 0.22-0.29, about the input's own error: twice that is suspect.
    displacement_limit: float = 0.6

    def validate(self) -> None:
        require(self.stride_q >= 1, "refine.stride_q", "must be >= 1")
        require(self.window_step >= 0, "refine.window_step", "must be >= 0 (0 = use stride_q)")
        require(self.batch_windows >= 1, "refine.batch_windows", "must be >= 1")
        require(self.smooth_sigma >= 0, "refine.smooth_sigma", "must be >= 0")
        require(self.gpu_batch_windows >= 1, "refine.gpu_batch_windows", "must be >= 1")
        require(self.batch_objects >= 1, "refine.batch_objects", "must be >= 1")
        require(self.io_threads >= 1, "refine.io_threads", "must be >= 1")
        require(self.displacement_limit > 0, "refine.displacement_limit", "must be > 0")
        require(self.concurrency >= 1, "refine.concurrency", "must be >= 1")
        require(self.cpus_per_actor > 0, "refine.cpus_per_actor", "must be > 0")
        require(self.lookahead is None or self.lookahead >= 0, "refine.lookahead", "must be >= 0")


@dataclass(frozen=True)
class ServeConfig:
    """Live refinement over HTTP (``pipelines/serve.py``, :mod:`hanet.live`)."""

    # A stream that sends nothing for this long is dropped (its pending frames with it).
    idle_timeout_s: float = 60.0
    # Windows of all streams run as one forward pass of up to this many, waiting at most
    # batch_wait_s for a batch to fill.
    max_batch_size: int = 64
    batch_wait_s: float = 0.002
    # Requests larger than this are refused (413), as are more frames in one request.
    max_body_bytes: int = 1_000_000
    max_frames_per_request: int = 256
    # Streams one replica holds at most; a new one beyond it is refused (503).
    max_streams: int = 10_000
    cpus_per_replica: float = 0.5

    def validate(self) -> None:
        require(self.idle_timeout_s > 0, "serve.idle_timeout_s", "must be > 0")
        require(self.max_batch_size >= 1, "serve.max_batch_size", "must be >= 1")
        require(self.batch_wait_s >= 0, "serve.batch_wait_s", "must be >= 0")
        require(self.max_body_bytes >= 1024, "serve.max_body_bytes", "must be >= 1024")
        require(self.max_frames_per_request >= 1, "serve.max_frames_per_request", "must be >= 1")
        require(self.max_streams >= 1, "serve.max_streams", "must be >= 1")
        require(self.cpus_per_replica > 0, "serve.cpus_per_replica", "must be > 0")
