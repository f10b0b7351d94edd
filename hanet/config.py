"""Typed configuration: frozen dataclasses (:mod:`hanet.sections`) loaded from YAML with strict
checking.

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
from typing import Any

from hanet.sections import (
    AugmentConfig,
    DataConfig,
    LayoutConfig,
    ModelConfig,
    RefineConfig,
    ServeConfig,
    SourceConfig,
    TrainConfig,
    TuneConfig,
)
from hanet.skeletons import LAYOUTS, layout_from_mapping, load_layout
from hanet.strict import (
    ConfigError,
    build_section,
    check_type,
    read_yaml,
    require,
    split_override,
)

__all__ = [
    "AugmentConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "LayoutConfig",
    "ModelConfig",
    "RefineConfig",
    "ServeConfig",
    "SourceConfig",
    "TrainConfig",
    "TuneConfig",
    "from_dict",
    "load_config",
    "read_yaml",
]


@dataclass(frozen=True)
class Config:
    name: str = "hanet"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)

    def validate(self) -> None:
        for key in _SECTIONS:
            getattr(self, key).validate()
        size = self.model.window_size
        for key, value in (
            ("refine.lookahead", self.refine.lookahead),
            ("train.lookahead", self.train.lookahead),
        ):
            require(
                value is None or value < size,
                key,
                f"is {value}, but a {size}-frame window has positions 0..{size - 1}",
            )
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
    "augment": AugmentConfig,
    "tune": TuneConfig,
    "refine": RefineConfig,
    "serve": ServeConfig,
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
