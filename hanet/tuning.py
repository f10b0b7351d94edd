"""Hyper-parameter sweeps on Ray Tune over the shared :func:`hanet.training.build_trainer`.

Ray Train V2 pattern: Tune runs :func:`train_driver` once per trial; the driver builds the
trial's own ``TorchTrainer`` (run ``train-<trial id>``) whose ``TuneReportCallback`` forwards
rank 0's per-epoch metrics and checkpoint path to Tune. ASHA stops weak trials on
``val_position_error``.

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

Resources
    A trial's Train run gets ``tune.workers_per_trial`` workers that share
    ``tune.cpus_per_trial`` CPUs (and one GPU each with ``train.use_gpu``); its driver holds
    :data:`DRIVER_CPUS`. Trials run concurrently as far as the cluster allows, keeping
    :data:`DATA_CPU_RESERVE` CPUs free for Ray Data's read tasks (a cluster whose CPUs are all
    held by workers hangs), and at most ``tune.max_concurrent`` when that is set.

Window shapes
    The windows depend on N and Q, so each distinct ``(model.interval, model.num_intervals)`` in
    the space needs its own dataset. ``data`` serves the shape it was made with; the others are
    preprocessed from the raw ``source`` into ``OUTPUT/datasets/N<n>_Q<q>`` before the sweep
    starts (skipped when already up to date). Without a ``source``, every shape in the space
    must match ``data``.

Output layout::

    OUTPUT/
      tune/                       Ray Tune's experiment (one folder per trial id)
      trials/<id>/                config.yaml, metrics.jsonl and the Train run train-<id>/
      datasets/N<n>_Q<q>/         datasets made for other window shapes
      results.csv, results.md     one row per trial
      best/                       model.pt + config.yaml (+ metrics.csv) of the best trial
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import math
import posixpath
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from hanet.config import Config, ConfigError, ModelConfig, TrainConfig, read_yaml
from hanet.storage import (
    Location,
    copy_file,
    delete_tree,
    exists,
    write_text_atomic,
)
from hanet.training import SELECTION_METRIC

log = logging.getLogger(__name__)

__all__ = [
    "DATA_CPU_RESERVE",
    "DISTRIBUTIONS",
    "DRIVER_CPUS",
    "Dimension",
    "SearchSpace",
    "SpaceError",
    "SweepError",
    "SweepResult",
    "TrialContext",
    "check_space",
    "load_space",
    "max_concurrent_trials",
    "parse_space",
    "prepare_datasets",
    "run_sweep",
    "sweep_config",
    "train_driver",
    "trial_base_config",
    "window_shapes",
]

DISTRIBUTIONS = ("loguniform", "uniform", "randint", "choice", "grid")
DRIVER_CPUS = 0.1
DATA_CPU_RESERVE = 1.0
EXPERIMENT_NAME = "tune"
TRIALS_DIR = "trials"
DATASETS_DIR = "datasets"
BEST_DIR = "best"
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


class SweepError(RuntimeError):
    """A sweep cannot run or produced nothing usable."""


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

    def domain(self) -> Any:
        """The Ray Tune search domain."""
        from ray import tune

        if self.kind == "loguniform":
            return tune.loguniform(*self.values)
        if self.kind == "uniform":
            return tune.uniform(*self.values)
        if self.kind == "randint":
            low, high = self.values
            return tune.randint(low, high + 1)  # Tune's upper bound is exclusive
        options = [list(v) if isinstance(v, tuple) else v for v in self.values]
        if self.kind == "choice":
            return tune.choice(options)
        return tune.grid_search(options)

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

    def param_space(self) -> dict[str, Any]:
        """Tune's ``param_space``: one flat entry per dimension."""
        return {d.name: d.domain() for d in self.dimensions}

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


def trial_base_config(cfg: Config) -> Config:
    """``cfg`` with each trial's Train resources taken from the ``tune`` section."""
    workers = cfg.tune.workers_per_trial
    return cfg.replace(
        {
            "train.num_workers": workers,
            "train.cpus_per_worker": cfg.tune.cpus_per_trial / workers,
        }
    )


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


# ----------------------------------------------------------------------------------------------
# Datasets and resources


def _dataset_shape(manifest: Mapping[str, Any]) -> tuple[int, int] | None:
    model = manifest.get("identity", {}).get("config", {}).get("model", {})
    if "interval" in model and "num_intervals" in model:
        return int(model["interval"]), int(model["num_intervals"])
    return None


def prepare_datasets(
    cfg: Config,
    space: SearchSpace,
    data: Location,
    output: Location,
    source: Location | None = None,
) -> dict[tuple[int, int], Location]:
    """One committed dataset per window shape of the sweep, keyed by ``(N, Q)``.

    ``data`` serves the shape it was made with (with a ``source``, it is first preprocessed
    when missing or written by an older version); other shapes are preprocessed from ``source``
    into ``output/datasets/N<n>_Q<q>``, reusing an up-to-date one.

    Raises:
        SweepError: a dataset is missing or stale and there is no ``source`` to make it from.
        PreprocessError: ``data`` holds a dataset made from other inputs or settings.
    """
    from hanet.preprocessing import load_manifest, run_preprocess
    from hanet.schema import SCHEMA_VERSION

    shapes = window_shapes(cfg, space)
    manifest = load_manifest(data)
    current = manifest is not None and manifest.get("schema_version") == SCHEMA_VERSION
    if not current:
        if source is None:
            state = "no manifest.json" if manifest is None else "made by an older version"
            raise SweepError(
                f"{data.uri}: {state}; run pipelines/preprocess.py, or give the raw input "
                "(--source) to preprocess it"
            )
        # Idempotent: refuses to replace a dataset made from other inputs or settings.
        log.info("preprocessing %s into %s", source.uri, data.uri)
        manifest = run_preprocess(cfg, source, data).manifest
    if manifest.get("num_joints", cfg.model.num_joints) != cfg.model.num_joints:
        raise SweepError(
            f"{data.uri}: {manifest['num_joints']} joints, but the config has "
            f"{cfg.model.num_joints}"
        )
    served = _dataset_shape(manifest)
    datasets: dict[tuple[int, int], Location] = {}
    for shape in shapes:
        n, q = shape
        if shape == served or (served is None and manifest.get("window_size") == n * q + 1):
            datasets[shape] = data
            continue
        if source is None:
            raise SweepError(
                f"the search space has windows N={n}, Q={q}, but {data.uri} was made with "
                f"N={served[0] if served else '?'}, Q={served[1] if served else '?'}: give the "
                "raw input (--source) so the sweep can preprocess one dataset per window shape"
            )
        target = output.join(DATASETS_DIR, f"N{n}_Q{q}")
        shaped = cfg.replace({"model.interval": n, "model.num_intervals": q})
        # The cache belongs to the sweep: replace it when it was made differently.
        result = run_preprocess(shaped, source, target, overwrite=True)
        log.info("dataset for N=%d Q=%d: %s%s", n, q, target.uri, " (up to date)" * result.skipped)
        datasets[shape] = target
    return datasets


def max_concurrent_trials(cfg: Config, resources: Mapping[str, float]) -> int:
    """How many trials fit at once: CPUs (minus :data:`DATA_CPU_RESERVE`) over each trial's
    workers plus driver, GPUs over each trial's workers with ``train.use_gpu``, and at most
    ``tune.max_concurrent`` when set; at least 1.

    Raises:
        SweepError: ``train.use_gpu`` on a cluster without enough GPUs for one trial.
    """
    per_trial = cfg.tune.cpus_per_trial + DRIVER_CPUS
    usable = float(resources.get("CPU", 0.0)) - DATA_CPU_RESERVE
    limit = max(1, math.floor(usable / per_trial + 1e-9))
    if cfg.train.use_gpu:
        gpus = float(resources.get("GPU", 0.0))
        workers = cfg.tune.workers_per_trial
        if gpus < workers:
            raise SweepError(
                f"train.use_gpu: a trial needs {workers} GPU(s), the cluster has {gpus:g}"
            )
        limit = min(limit, math.floor(gpus / workers))
    if cfg.tune.max_concurrent:
        limit = min(limit, cfg.tune.max_concurrent)
    return limit


# ----------------------------------------------------------------------------------------------
# The trial driver


@dataclass(frozen=True)
class TrialContext:
    """What every trial driver shares; handed over through Ray's object store
    (``tune.with_parameters``), so S3 credentials inside the locations never reach disk."""

    base: Config
    space: SearchSpace
    datasets: dict[tuple[int, int], Location]
    output: Location


def trial_output(output: Location, trial_id: str) -> Location:
    return output.join(TRIALS_DIR, trial_id)


def train_driver(trial_config: dict[str, Any], context: TrialContext) -> None:
    """One Tune trial: build the trial's config, then build and fit its own TorchTrainer.

    Rank 0's per-epoch metrics reach Tune through ``TuneReportCallback``; ASHA may stop the
    trial between epochs.
    """
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from hanet.training import build_trainer

    trial_id = tune.get_context().get_trial_id()
    cfg = context.base.replace(context.space.overrides_for(trial_config))
    dataset = context.datasets[(cfg.model.interval, cfg.model.num_intervals)]
    out = trial_output(context.output, trial_id)
    write_text_atomic(out.join("config.yaml"), yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    trainer = build_trainer(
        cfg, dataset, out, name=f"train-{trial_id}", callbacks=[TuneReportCallback()]
    )
    trainer.fit()


# ----------------------------------------------------------------------------------------------
# The sweep


@dataclass
class SweepResult:
    """What a sweep produced.

    Attributes:
        columns: the results table's columns.
        rows: one row per trial, best first.
        best_trial: the winning trial id.
        best_value: its lowest ``val_position_error``.
        best_config: its full config (also written to ``best_config_file``).
        best_model: ``output/best/model.pt``.
        best_config_file: ``output/best/config.yaml``.
        table_csv: ``output/results.csv``.
        table_markdown: ``output/results.md``.
        concurrency: the bound on concurrent trials.
        seconds: wall time of the whole sweep.
    """

    columns: list[str]
    rows: list[dict[str, Any]]
    best_trial: str
    best_value: float
    best_config: Config
    best_model: Location
    best_config_file: Location
    table_csv: Location
    table_markdown: Location
    concurrency: int
    seconds: float

    @property
    def markdown(self) -> str:
        return markdown_table(self.columns, self.rows)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "/".join(_fmt(v) for v in value)
    return str(value)


def markdown_table(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """A Markdown table; numbers shortened to 4 significant digits."""
    cells = [[_fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join(lines)


def _csv_table(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                c: "/".join(map(str, v)) if isinstance(v, (list, tuple)) else v
                for c, v in row.items()
            }
        )
    return buffer.getvalue()


def _number_or_nan(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return number


def _summarise(result: Any, space: SearchSpace, epochs: int) -> tuple[dict[str, Any], str | None]:
    """One results-table row for a Tune result, and its best checkpoint's path."""
    trial_id = posixpath.basename(str(result.path).rstrip("/"))
    row: dict[str, Any] = {"trial": trial_id}
    for name in space.names:
        row[name] = result.config.get(name)
    frame = result.metrics_dataframe
    reports = [] if frame is None else frame.to_dict("records")
    # The best epoch among those with a checkpoint (rank 0 attaches one to every report), so
    # the exported model is the one the reported value belongs to.
    saved = [r for r in reports if isinstance(r.get("checkpoint_path"), str)] or reports
    scored = [(_number_or_nan(r.get(SELECTION_METRIC)), r) for r in saved]
    scored = [(v, r) for v, r in scored if v == v]
    best_value, best = min(scored, key=lambda vr: vr[0]) if scored else (float("nan"), {})
    checkpoint = (
        best.get("checkpoint_path") if isinstance(best.get("checkpoint_path"), str) else None
    )
    # A restarted worker group repeats epochs: count distinct ones.
    row["epochs"] = len({int(e) for r in reports if (e := _number_or_nan(r.get("epoch"))) == e})
    row["best_epoch"] = int(best["epoch"]) if "epoch" in best else None
    row[SELECTION_METRIC] = best_value
    row["train_loss"] = _number_or_nan(reports[-1].get("train_loss")) if reports else float("nan")
    if result.error is not None:
        row["status"] = f"error: {type(result.error).__name__}"
    elif row["epochs"] < epochs:
        row["status"] = "stopped (ASHA)"
    else:
        row["status"] = "completed"
    return row, checkpoint


def _clear_previous(output: Location) -> None:
    for name in (EXPERIMENT_NAME, TRIALS_DIR, BEST_DIR, "results.csv", "results.md"):
        delete_tree(output.join(name))


def run_sweep(
    cfg: Config,
    space: SearchSpace,
    data: Location,
    output: Location,
    source: Location | None = None,
    overwrite: bool = False,
) -> SweepResult:
    """Run the sweep on the connected Ray cluster and export the best trial.

    Args:
        cfg: the sweep's base config (see :func:`sweep_config`); ``cfg.tune`` sets the number
            of samples, ASHA's grace period and reduction factor, and each trial's resources.
        space: the search space.
        data: the preprocessed dataset for the base config's window shape.
        output: folder or ``s3://`` prefix for the experiment, trials, tables and best model.
        source: raw input, to preprocess ``data`` when missing and other window shapes.
        overwrite: replace a previous sweep in ``output`` (the datasets cache is kept).

    Returns:
        The results table and the best trial's exported config and checkpoint.

    Raises:
        SpaceError: the space, or a combination in it, is invalid.
        SweepError: ``output`` already holds a sweep, a dataset is missing, or no trial
            reported a finite validation error.
    """
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    began = time.perf_counter()
    check_space(cfg, space)
    base = trial_base_config(cfg)
    if exists(output.join(EXPERIMENT_NAME)):
        if not overwrite:
            raise SweepError(
                f"{output.uri} already holds a sweep; choose another output or overwrite it "
                "(--overwrite)"
            )
        _clear_previous(output)
    datasets = prepare_datasets(base, space, data, output, source)
    concurrency = max_concurrent_trials(base, ray.cluster_resources())
    epochs = base.train.epochs
    log.info(
        "sweep: %d sample(s) x %s, up to %d at once, ASHA on %s over %d epoch(s)",
        base.tune.num_samples,
        ", ".join(space.names),
        concurrency,
        SELECTION_METRIC,
        epochs,
    )
    context = TrialContext(base=base, space=space, datasets=datasets, output=output)
    trainable = tune.with_resources(
        tune.with_parameters(train_driver, context=context), {"CPU": DRIVER_CPUS}
    )
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        max_t=epochs,
        grace_period=min(base.tune.grace_period, epochs),
        reduction_factor=base.tune.reduction_factor,
    )
    tuner = tune.Tuner(
        trainable,
        param_space=space.param_space(),
        tune_config=tune.TuneConfig(
            metric=SELECTION_METRIC,
            mode="min",
            scheduler=scheduler,
            num_samples=base.tune.num_samples,
            max_concurrent_trials=concurrency,
            trial_dirname_creator=lambda trial: trial.trial_id,
        ),
        run_config=tune.RunConfig(
            name=EXPERIMENT_NAME,
            storage_path=output.path,
            storage_filesystem=output.filesystem() if output.scheme == "s3" else None,
            verbose=1,
        ),
    )
    grid = tuner.fit()

    rows, checkpoints = [], {}
    for result in grid:
        row, checkpoint = _summarise(result, space, epochs)
        rows.append(row)
        checkpoints[row["trial"]] = checkpoint
    rows.sort(key=lambda r: (r[SELECTION_METRIC] != r[SELECTION_METRIC], r[SELECTION_METRIC]))
    columns = ["trial", *space.names, "epochs", "best_epoch", SELECTION_METRIC]
    columns += ["train_loss", "status"]
    table_csv, table_md = output.join("results.csv"), output.join("results.md")
    write_text_atomic(table_csv, _csv_table(columns, rows))
    write_text_atomic(table_md, markdown_table(columns, rows) + "\n")

    best = next((r for r in rows if r[SELECTION_METRIC] == r[SELECTION_METRIC]), None)
    if best is None or not checkpoints.get(best["trial"]):
        errors = [f"{r['trial']}: {r['status']}" for r in rows]
        raise SweepError(
            f"no trial reported a finite {SELECTION_METRIC} with a checkpoint ({errors}); "
            f"see {output.join(EXPERIMENT_NAME).uri}"
        )
    best_cfg = base.replace(space.overrides_for({n: best[n] for n in space.names}))
    model = _export_best(best["trial"], checkpoints[best["trial"]], best_cfg, output)
    return SweepResult(
        columns=columns,
        rows=rows,
        best_trial=best["trial"],
        best_value=best[SELECTION_METRIC],
        best_config=best_cfg,
        best_model=model,
        best_config_file=output.join(BEST_DIR, "config.yaml"),
        table_csv=table_csv,
        table_markdown=table_md,
        concurrency=concurrency,
        seconds=time.perf_counter() - began,
    )


def _export_best(trial_id: str, checkpoint_path: str, cfg: Config, output: Location) -> Location:
    """Copy the best trial's best checkpoint to ``output/best/model.pt`` beside its
    ``config.yaml`` and per-epoch ``metrics.csv``."""
    from ray.train import Checkpoint

    from hanet.workflow import export_run

    best = output.join(BEST_DIR)
    log_file = trial_output(output, trial_id).join("metrics.jsonl")
    if exists(log_file):
        copy_file(log_file, best.join("metrics.jsonl"))
    # The callback reports the path on the run's storage filesystem: same one as output's.
    location = replace(output, path=checkpoint_path)
    checkpoint = Checkpoint(path=location.path, filesystem=location.filesystem())
    return export_run(checkpoint, cfg, best)
