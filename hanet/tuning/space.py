"""The search-space grammar of a sweep: parsed from YAML, validated against the config before
any trial starts. Pure: no Ray (:mod:`hanet.tuning.sweep` turns it into Tune domains).

Search-space YAML
    Keys are dotted config keys (``train.lr``, ``model.hidden_dim``, ...); each value names one
    distribution::

        train.lr: {loguniform: [1.0e-4, 3.0e-3]}     # low, high (floats)
        train.loss_lambda: {uniform: [1.0, 10.0]}
        model.num_stages: {randint: [2, 5]}           # both bounds inclusive
        model.hidden_dim: {choice: [64, 128, 256]}
        train.weight_decay: {grid: [0.0, 0.01]}       # every value, times tune.num_samples

    Several keys joined by commas are sampled together, one list per choice; this is how the
    window is tuned (``T = N * Q + 1``)::

        model.interval,model.num_intervals: {choice: [[10, 1], [5, 2]]}

    The file may instead hold two sections: ``space:`` (the mapping above) and ``overrides:``
    (fixed ``section.key: value`` settings for the sweep, e.g. ``train.epochs: 2`` or
    ``tune.num_samples: 8``), applied by :func:`sweep_config` between the config file and the
    command line's ``--set``.

    Only ``model.*`` and ``train.*`` keys can be tuned, except the ones that fix the dataset
    (``model.num_joints``, ``model.joint_dim``) or the resources (``train.num_workers``,
    ``train.cpus_per_worker``, ``train.use_gpu``). Every combination of the choices (and the
    bounds of the continuous ranges) is validated through :mod:`hanet.config` before any trial
    starts, so a bad combination fails early with the key named.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hanet.config import Config, ConfigError, ModelConfig, TrainConfig, read_yaml

__all__ = [
    "DISTRIBUTIONS",
    "WINDOW_KEYS",
    "Dimension",
    "SearchSpace",
    "SpaceError",
    "check_space",
    "load_space",
    "parse_space",
    "sweep_config",
    "window_shapes",
]

DISTRIBUTIONS = ("loguniform", "uniform", "randint", "choice", "grid")
WINDOW_KEYS = ("model.interval", "model.num_intervals")
# Keys a sweep must not vary: they fix the dataset's layout or the resources of every trial.
FIXED_KEYS = {
    "model.num_joints": "it fixes the dataset's layout",
    "model.joint_dim": "it fixes the dataset's layout",
    "train.num_workers": "set tune.workers_per_trial instead",
    "train.cpus_per_worker": "set tune.cpus_per_trial instead",
    "train.use_gpu": "it fixes every trial's resources",
}
TUNABLE_SECTIONS = {"model": ModelConfig, "train": TrainConfig}
# Early validation tries every combination up to this many, then a seeded random subset.
MAX_CHECKED_COMBINATIONS = 2048
# A randint range up to this wide is enumerated for validation; wider ones use a few values.
MAX_ENUMERATED_RANGE = 64
MAX_WINDOW_SHAPES = 16


class SpaceError(ConfigError):
    """The search space is invalid; the message names the key."""


# ----------------------------------------------------------------------------------------------
# The search space


@dataclass(frozen=True)
class Dimension:
    """One sampled quantity: a distribution over one config key or a group of keys.

    Attributes:
        keys: the dotted config keys it sets (several for a grouped choice/grid).
        kind: one of :data:`DISTRIBUTIONS`.
        values: ``(low, high)`` for the ranges; the options for ``choice`` / ``grid`` (tuples
            aligned with ``keys`` when grouped).
    """

    keys: tuple[str, ...]
    kind: str
    values: tuple[Any, ...]

    @property
    def name(self) -> str:
        """The parameter name Tune sees (the keys joined by commas)."""
        return ",".join(self.keys)

    @property
    def finite(self) -> bool:
        return self.kind in ("choice", "grid", "randint")

    def all_values(self) -> list[Any]:
        """Every value a finite dimension can take."""
        if self.kind == "randint":
            return list(range(self.values[0], self.values[1] + 1))
        if self.kind in ("choice", "grid"):
            return list(self.values)
        raise SpaceError(f"{self.name}: a {self.kind} range has no finite set of values")

    def representatives(self) -> list[Any]:
        """Values to validate before the sweep: every option, or a range's bounds."""
        if self.kind in ("choice", "grid"):
            return list(self.values)
        low, high = self.values
        if self.kind == "randint":
            if high - low <= MAX_ENUMERATED_RANGE:
                return list(range(low, high + 1))
            return sorted({low, (low + high) // 2, high})
        return [float(low), float(high)]

    def assign(self, value: Any) -> dict[str, Any]:
        """The ``{dotted key: value}`` overrides for one sampled value."""
        if len(self.keys) == 1:
            return {self.keys[0]: value}
        return dict(zip(self.keys, value))


@dataclass(frozen=True)
class SearchSpace:
    """A parsed search space plus the fixed overrides that came with it."""

    dimensions: tuple[Dimension, ...]
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

        """Tune's ``param_space``: one flat entry per dimension."""

    def overrides_for(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Dotted-key overrides for one trial's sampled parameters."""
        out: dict[str, Any] = {}
        for dim in self.dimensions:
            if dim.name not in params:
                raise SpaceError(f"{dim.name}: missing from the trial's parameters")
            value = params[dim.name]
            if len(dim.keys) > 1 and (
                not isinstance(value, (list, tuple)) or len(value) != len(dim.keys)
            ):
                raise SpaceError(f"{dim.name}: expected {len(dim.keys)} values, got {value!r}")
            out.update(dim.assign(value))
        return out


def _check_key(key: str, where: str) -> None:
    parts = key.split(".")
    if len(parts) != 2 or not all(parts):
        raise SpaceError(f"{where}{key}: search-space keys take the form section.key")
    section, name = parts
    if section not in TUNABLE_SECTIONS:
        raise SpaceError(
            f"{where}{key}: only model.* and train.* keys can be tuned"
            + (" (data settings change the dataset: preprocess again)" if section == "data" else "")
        )
    known = [f.name for f in fields(TUNABLE_SECTIONS[section])]
    if name not in known:
        raise SpaceError(f"{where}{key}: unknown config key (known {section} keys: {known})")
    if key in FIXED_KEYS:
        raise SpaceError(f"{where}{key}: cannot be tuned ({FIXED_KEYS[key]})")


def _number(value: Any, key: str, kind: str) -> float | int:
    if isinstance(value, bool):
        raise SpaceError(f"{key}: {kind} bounds must be numbers, got {value!r}")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        # YAML 1.1 reads `1e-4` (no dot) as a string; accept it rather than surprise.
        try:
            return float(value)
        except ValueError:
            pass
    raise SpaceError(f"{key}: {kind} bounds must be numbers, got {value!r}")


def _parse_dimension(name: str, spec: Any, where: str) -> Dimension:
    keys = tuple(part.strip() for part in name.split(","))
    if len(set(keys)) != len(keys):
        raise SpaceError(f"{where}{name}: a key appears twice in the group")
    for key in keys:
        _check_key(key, where)
    label = f"{where}{name}"
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise SpaceError(
            f"{label}: expected one distribution such as {{choice: [...]}}, got {spec!r} "
            f"(distributions: {', '.join(DISTRIBUTIONS)})"
        )
    ((kind, args),) = spec.items()
    if kind not in DISTRIBUTIONS:
        raise SpaceError(
            f"{label}: unknown distribution {kind!r} (known: {', '.join(DISTRIBUTIONS)})"
        )
    if not isinstance(args, list) or not args:
        raise SpaceError(f"{label}: {kind} needs a non-empty list, got {args!r}")
    if kind in ("choice", "grid"):
        if len(keys) == 1:
            return Dimension(keys, kind, tuple(args))
        groups = []
        for option in args:
            if not isinstance(option, list) or len(option) != len(keys):
                raise SpaceError(
                    f"{label}: each {kind} option must list {len(keys)} values, got {option!r}"
                )
            groups.append(tuple(option))
        return Dimension(keys, kind, tuple(groups))
    if len(keys) > 1:
        raise SpaceError(f"{label}: grouped keys take a choice or grid, not {kind}")
    if len(args) != 2:
        raise SpaceError(f"{label}: {kind} takes [low, high], got {args!r}")
    low, high = (_number(v, label, kind) for v in args)
    if kind == "randint":
        if not all(isinstance(v, int) or float(v).is_integer() for v in (low, high)):
            raise SpaceError(f"{label}: randint bounds must be integers, got {args!r}")
        low, high = int(low), int(high)
        if low > high:
            raise SpaceError(f"{label}: randint needs low <= high, got {args!r}")
        return Dimension(keys, kind, (low, high))
    if not low < high:
        raise SpaceError(f"{label}: {kind} needs low < high, got {args!r}")
    if kind == "loguniform" and low <= 0:
        raise SpaceError(f"{label}: loguniform needs low > 0, got {args!r}")
    return Dimension(keys, kind, (float(low), float(high)))


def parse_space(raw: Any, source: str = "search space") -> SearchSpace:
    """Parse a search space from its YAML mapping (either form in the module docstring).

    Raises:
        SpaceError: unknown key or distribution, malformed bounds or options; the message names
            the source and the key.
    """
    where = f"{source}: "
    if not isinstance(raw, Mapping) or not raw:
        raise SpaceError(f"{where}expected a non-empty mapping of config keys to distributions")
    overrides: dict[str, Any] = {}
    entries: Any = raw
    if "space" in raw or "overrides" in raw:
        unknown = sorted(set(raw) - {"space", "overrides"})
        if unknown:
            raise SpaceError(f"{where}{unknown[0]}: unknown section (known: space, overrides)")
        entries = raw.get("space")
        given = raw.get("overrides") or {}
        if not isinstance(given, Mapping):
            raise SpaceError(f"{where}overrides: expected a mapping of section.key: value")
        overrides = {str(k): v for k, v in given.items()}
        if not isinstance(entries, Mapping) or not entries:
            raise SpaceError(f"{where}space: expected a non-empty mapping of keys to distributions")
    dimensions = [_parse_dimension(str(name), spec, where) for name, spec in entries.items()]
    seen: dict[str, str] = {}
    for dim in dimensions:
        for key in dim.keys:
            if key in seen:
                raise SpaceError(f"{where}{key}: sampled twice (in {seen[key]} and {dim.name})")
            seen[key] = dim.name
    return SearchSpace(tuple(dimensions), overrides)


def load_space(path: str | Path) -> SearchSpace:
    """Read and parse a search-space YAML file (safe loader)."""
    path = Path(path)
    return parse_space(read_yaml(path, "search space", SpaceError), source=str(path))


def sweep_config(
    base: Config, space: SearchSpace, overrides: Iterable[str] | Mapping[str, Any] = ()
) -> Config:
    """The sweep's base config: ``base``, then the space file's overrides, then ``overrides``
    (the command line's ``--set``); validated."""
    cfg = base.replace(space.overrides) if space.overrides else base
    extra = overrides if isinstance(overrides, Mapping) else list(overrides)
    return cfg.replace(extra) if extra else cfg


def _describe(assignment: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in assignment.items())


def check_space(cfg: Config, space: SearchSpace, seed: int = 0) -> int:
    """Validate sampled configs before the sweep: every combination of the dimensions'
    representative values (all options; a range's bounds), or a seeded random subset of
    :data:`MAX_CHECKED_COMBINATIONS` plus each value alone when there are more.

    Returns:
        The number of combinations checked.

    Raises:
        SpaceError: a value or combination the config rejects; the message names both.
    """
    options = [[dim.assign(v) for v in dim.representatives()] for dim in space.dimensions]
    total = math.prod(len(o) for o in options)
    if total <= MAX_CHECKED_COMBINATIONS:
        combos: Iterable[tuple[dict[str, Any], ...]] = itertools.product(*options)
    else:
        rng = random.Random(seed)
        singles = [(a,) for group in options for a in group]
        drawn = [tuple(rng.choice(o) for o in options) for _ in range(MAX_CHECKED_COMBINATIONS)]
        combos = [*singles, *drawn]
    checked = 0
    for combo in combos:
        assignment: dict[str, Any] = {}
        for part in combo:
            assignment.update(part)
        try:
            cfg.replace(assignment)
        except ConfigError as err:
            raise SpaceError(
                f"search space: the combination {_describe(assignment)} is invalid: {err}"
            ) from None
        checked += 1
    return checked


def window_shapes(cfg: Config, space: SearchSpace) -> list[tuple[int, int]]:
    """Every ``(interval, num_intervals)`` a trial of this sweep can have, sorted.

    Raises:
        SpaceError: N or Q drawn from a continuous range, or more than
            :data:`MAX_WINDOW_SHAPES` shapes (each needs a dataset).
    """
    options: list[list[dict[str, Any]]] = []
    for dim in space.dimensions:
        if not set(dim.keys) & set(WINDOW_KEYS):
            continue
        if not dim.finite:
            raise SpaceError(f"{dim.name}: N and Q need a choice, grid or randint")
        options.append(
            [
                {k: v for k, v in dim.assign(value).items() if k in WINDOW_KEYS}
                for value in dim.all_values()
            ]
        )
    shapes = set()
    for combo in itertools.product(*options):
        chosen = {
            "model.interval": cfg.model.interval,
            "model.num_intervals": cfg.model.num_intervals,
        }
        for part in combo:
            chosen.update(part)
        shapes.add((int(chosen["model.interval"]), int(chosen["model.num_intervals"])))
        if len(shapes) > MAX_WINDOW_SHAPES:
            raise SpaceError(
                f"search space: more than {MAX_WINDOW_SHAPES} window shapes (N, Q); each needs "
                "its own dataset: narrow model.interval / model.num_intervals"
            )
    return sorted(shapes)
