"""Hyper-parameter sweeps on Ray Tune over the shared :func:`hanet.training.build_trainer`.

Ray Train V2 pattern: Tune runs :func:`train_driver` once per trial; the driver builds the
trial's own ``TorchTrainer`` (run ``train-<trial id>``) whose ``TuneReportCallback`` forwards
rank 0's per-epoch metrics and checkpoint path to Tune. ASHA stops weak trials on
``val_position_error``.

Resources
    A trial's Train run gets ``tune.workers_per_trial`` workers that share
    ``tune.cpus_per_trial`` CPUs (and one GPU each with ``train.use_gpu``); its driver holds
    :data:`DRIVER_CPUS`. Trials run concurrently as far as the cluster allows, keeping
    :data:`DATA_CPU_RESERVE` CPUs free for Ray Data's read tasks (a cluster whose CPUs are all
    held by workers hangs), and at most ``tune.max_concurrent`` when that is set.

Window shapes
    Each ``(N, Q)`` in the space needs its own dataset (:mod:`hanet.tuning.datasets`).

Output layout::

    OUTPUT/
      tune/                       Ray Tune's experiment (one folder per trial id)
      trials/<id>/                config.yaml, metrics.jsonl and the Train run train-<id>/
      datasets/N<n>_Q<q>/         datasets made for other window shapes
      results.csv, results.md     one row per trial
      best/                       model.pt + config.yaml (+ metrics.csv) of the best trial
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ray
import yaml
from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler

from hanet.config import Config
from hanet.io.location import Location
from hanet.io.storage import delete_tree, exists, write_text_atomic
from hanet.tables import csv_table, markdown_table
from hanet.training import SELECTION_METRIC, build_trainer
from hanet.tuning.datasets import SweepError, prepare_datasets
from hanet.tuning.results import (
    BEST_DIR,
    TRIALS_DIR,
    SweepResult,
    export_best,
    summarise_trial,
    trial_output,
)
from hanet.tuning.space import Dimension, SearchSpace, check_space

log = logging.getLogger(__name__)

__all__ = [
    "DATA_CPU_RESERVE",
    "DRIVER_CPUS",
    "TrialContext",
    "max_concurrent_trials",
    "param_space",
    "run_sweep",
    "train_driver",
    "trial_base_config",
]

DRIVER_CPUS = 0.1
DATA_CPU_RESERVE = 1.0
EXPERIMENT_NAME = "tune"


def tune_domain(dim: Dimension) -> Any:
    """The Ray Tune search domain of one dimension."""
    if dim.kind == "loguniform":
        return tune.loguniform(*dim.values)
    if dim.kind == "uniform":
        return tune.uniform(*dim.values)
    if dim.kind == "randint":
        low, high = dim.values
        return tune.randint(low, high + 1)  # Tune's upper bound is exclusive
    options = [list(v) if isinstance(v, tuple) else v for v in dim.values]
    if dim.kind == "choice":
        return tune.choice(options)
    return tune.grid_search(options)


def param_space(space: SearchSpace) -> dict[str, Any]:
    """Tune's ``param_space``: one flat entry per dimension."""
    return {d.name: tune_domain(d) for d in space.dimensions}


def trial_base_config(cfg: Config) -> Config:
    """``cfg`` with each trial's Train resources taken from the ``tune`` section."""
    workers = cfg.tune.workers_per_trial
    return cfg.replace(
        {
            "train.num_workers": workers,
            "train.cpus_per_worker": cfg.tune.cpus_per_trial / workers,
        }
    )


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


def train_driver(trial_config: dict[str, Any], context: TrialContext) -> None:
    """One Tune trial: build the trial's config, then build and fit its own TorchTrainer.

    Rank 0's per-epoch metrics reach Tune through ``TuneReportCallback``; ASHA may stop the
    trial between epochs.
    """
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
        param_space=param_space(space),
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
        row, checkpoint = summarise_trial(result, space, epochs)
        rows.append(row)
        checkpoints[row["trial"]] = checkpoint
    rows.sort(key=lambda r: (r[SELECTION_METRIC] != r[SELECTION_METRIC], r[SELECTION_METRIC]))
    columns = ["trial", *space.names, "epochs", "best_epoch", SELECTION_METRIC]
    columns += ["train_loss", "status"]
    table_csv, table_md = output.join("results.csv"), output.join("results.md")
    write_text_atomic(table_csv, csv_table(columns, rows))
    write_text_atomic(table_md, markdown_table(columns, rows) + "\n")

    best = next((r for r in rows if r[SELECTION_METRIC] == r[SELECTION_METRIC]), None)
    if best is None or not checkpoints.get(best["trial"]):
        errors = [f"{r['trial']}: {r['status']}" for r in rows]
        raise SweepError(
            f"no trial reported a finite {SELECTION_METRIC} with a checkpoint ({errors}); "
            f"see {output.join(EXPERIMENT_NAME).uri}"
        )
    best_cfg = base.replace(space.overrides_for({n: best[n] for n in space.names}))
    model = export_best(best["trial"], checkpoints[best["trial"]], best_cfg, output)
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
