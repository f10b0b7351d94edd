"""Typed configuration: frozen dataclasses loaded from YAML with strict checking.

One ``Config`` object is built once by :func:`load_config` and passed down; nothing reads a
global. Unknown keys and wrong types are rejected with a message that names the key, and the
values derived from others (window size ``T = N * Q + 1``, channels ``C = J * D``) are computed
in one place, here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hanet.skeletons import LAYOUTS, JointLayout, layout_from_mapping, load_layout
from hanet.strict import (
    ConfigError,
    build_section,
    check_type,
    read_yaml,
    require,
    split_override,
)

__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "LayoutConfig",
    "ModelConfig",
    "RefineConfig",
    "TrainConfig",
    "TuneConfig",
    "from_dict",
    "load_config",
    "read_yaml",
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
class DataConfig:
    """What the data is and how it is cut into windows."""

    # Published-layout names: groundtruth_poses/<dataset>/, detected_poses/<dataset>/<estimator>/.
    # None takes every pair found.
    dataset: str | None = "jhmdb"
    estimator: str | None = "simplebaseline"
    representation: Representation = "2D"
    # A built-in layout's name, or a declared one (a YAML file's path on input; stored in full).
    layout: str | LayoutConfig = "jhmdb"
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
    batch_windows: int = 256
    concurrency: int = 1
    cpus_per_actor: float = 0.5
    output_format: Literal["parquet", "same"] = "parquet"

    def validate(self) -> None:
        require(self.stride_q >= 1, "refine.stride_q", "must be >= 1")
        require(self.window_step >= 0, "refine.window_step", "must be >= 0 (0 = use stride_q)")
        require(self.batch_windows >= 1, "refine.batch_windows", "must be >= 1")
        require(self.concurrency >= 1, "refine.concurrency", "must be >= 1")
        require(self.cpus_per_actor > 0, "refine.cpus_per_actor", "must be > 0")


@dataclass(frozen=True)
class Config:
    name: str = "hanet"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)

    def validate(self) -> None:
        for section in (self.model, self.data, self.train, self.tune, self.refine):
            section.validate()
        step = self.test_window_step()
        require(
            step <= self.model.window_size,
            "refine.window_step" if self.refine.window_step else "refine.stride_q",
            f"windows every {step} frames would leave frames between "
            f"{self.model.window_size}-frame windows unrefined",
        )
        layout = self.data.joint_layout
        require(
            self.model.num_joints == layout.num_joints,
            "model.num_joints",
            f"is {self.model.num_joints}, but data.layout {layout.name!r} has "
            f"{layout.num_joints} joints",
        )
        expected_dim = {"2D": 2, "3D": 3, "smpl": 6}[self.data.representation]
        require(
            self.model.joint_dim == expected_dim,
            "model.joint_dim",
            f"is {self.model.joint_dim} but data.representation={self.data.representation!r} "
            f"needs {expected_dim}",
        )

    def test_window_step(self, stride_q: int | None = None) -> int:
        """Frames between test-time window starts (refine.window_step, else N * stride_q)."""
        if self.refine.window_step:
            return self.refine.window_step
        return self.model.interval * (stride_q or self.refine.stride_q)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, overrides: Sequence[str] | Mapping[str, Any]) -> Config:
        """A new config with ``section.key=value`` overrides applied and validated."""
        raw = self.to_dict()
        _apply_overrides(raw, overrides)
        return from_dict(raw)


_SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "tune": TuneConfig,
    "refine": RefineConfig,
}


def from_dict(raw: Mapping[str, Any], base: Path | None = None) -> Config:
    """Build and validate a :class:`Config` from a plain nested mapping.

    Args:
        raw: the mapping (parsed YAML, or :meth:`Config.to_dict`).
        base: folder that a relative ``data.layout`` file path is looked up in as well.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config: expected a mapping at the top level, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(_SECTIONS) - {"name"})
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (known: name, {', '.join(_SECTIONS)})")
    name = check_type("name", raw.get("name", "hanet"), str)
    raw = _with_layout(raw, base)
    sections = {key: build_section(cls, raw.get(key), key) for key, cls in _SECTIONS.items()}
    config = Config(name=name, **sections)
    config.validate()
    return config


def _with_layout(raw: Mapping[str, Any], base: Path | None) -> dict[str, Any]:
    """``raw`` with ``data.layout`` resolved (a layout file read into its declared form) and
    ``model.num_joints`` following from the layout.

    Raises:
        ConfigError: an unknown layout, an invalid layout file, or a stated
            ``model.num_joints`` that disagrees with the layout (naming both).
    """
    data = dict(raw.get("data") or {})
    model = dict(raw.get("model") or {})
    value = data.get("layout", DataConfig.layout)
    if isinstance(value, str) and value not in LAYOUTS:
        if not value.endswith((".yaml", ".yml")):
            raise ConfigError(
                f"data.layout: unknown joint layout {value!r} (built-in: {', '.join(LAYOUTS)}; "
                "or the path of a layout YAML file)"
            )
        path = Path(value)
        if not path.is_absolute() and not path.exists() and base is not None:
            path = base / path  # relative to the config file that names it
        value = load_layout(path).to_mapping()
    if isinstance(value, Mapping | LayoutConfig):
        mapping = dataclasses.asdict(value) if isinstance(value, LayoutConfig) else dict(value)
        layout = layout_from_mapping(mapping, "data.layout")
        value = layout.to_mapping()
    else:
        layout = LAYOUTS[value]
    data["layout"] = value
    stated = model.get("num_joints")
    if stated is None:
        model["num_joints"] = layout.num_joints
    elif stated != layout.num_joints:
        raise ConfigError(
            f"model.num_joints={stated}, but data.layout {layout.name!r} has "
            f"{layout.num_joints} joints"
        )
    return {**raw, "data": data, "model": model}


def _apply_overrides(raw: dict[str, Any], overrides: Sequence[str] | Mapping[str, Any]) -> None:
    items = overrides.items() if isinstance(overrides, Mapping) else map(split_override, overrides)
    for dotted, value in items:
        parts = dotted.split(".")
        if len(parts) == 1 and parts[0] == "name":
            raw["name"] = value
            continue
        if len(parts) != 2 or parts[0] not in _SECTIONS:
            raise ConfigError(f"{dotted}: overrides take the form section.key=value")
        raw.setdefault(parts[0], {})
        if raw[parts[0]] is None:
            raw[parts[0]] = {}
        raw[parts[0]][parts[1]] = value


def load_config(
    path: str | Path | None = None, overrides: Sequence[str] | Mapping[str, Any] = ()
) -> Config:
    """Read a YAML config (safe loader), apply ``section.key=value`` overrides and validate.

    Args:
        path: YAML file; None starts from the defaults (the published 2D configuration).
        overrides: ``["train.lr=1e-4", ...]`` or a mapping ``{"train.lr": 1e-4}``.

    Raises:
        ConfigError: unknown key, wrong type or invalid value; the message names the key.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        loaded = read_yaml(path, "config", ConfigError)
        if loaded is not None:
            if not isinstance(loaded, dict):
                raise ConfigError(f"{path}: expected a mapping at the top level")
            raw = loaded
    _apply_overrides(raw, overrides)
    try:
        return from_dict(raw, base=path.parent if path is not None else None)
    except ConfigError as err:
        if path is not None:
            raise ConfigError(f"{path}: {err}") from err
        raise
