"""What a sweep produced: one results row per Tune trial, the tables, and the best trial's
checkpoint exported as a run (``best/model.pt`` + ``config.yaml``)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace
from typing import Any

from ray.train import Checkpoint

from hanet.config import Config
from hanet.io.location import Location
from hanet.io.storage import copy_file, exists
from hanet.runs import export_run
from hanet.tables import markdown_table
from hanet.training import SELECTION_METRIC
from hanet.tuning.space import SearchSpace

__all__ = ["BEST_DIR", "TRIALS_DIR", "SweepResult", "export_best", "summarise_trial"]

TRIALS_DIR = "trials"
BEST_DIR = "best"


def trial_output(output: Location, trial_id: str) -> Location:
    """Where one trial's config, metrics log and Train run live."""
    return output.join(TRIALS_DIR, trial_id)


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


def _number_or_nan(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return number


def summarise_trial(
    result: Any, space: SearchSpace, epochs: int
) -> tuple[dict[str, Any], str | None]:
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


def export_best(trial_id: str, checkpoint_path: str, cfg: Config, output: Location) -> Location:
    """Copy the best trial's best checkpoint to ``output/best/model.pt`` beside its
    ``config.yaml`` and per-epoch ``metrics.csv``."""
    best = output.join(BEST_DIR)
    log_file = trial_output(output, trial_id).join("metrics.jsonl")
    if exists(log_file):
        copy_file(log_file, best.join("metrics.jsonl"))
    # The callback reports the path on the run's storage filesystem: same one as output's.
    location = replace(output, path=checkpoint_path)
    checkpoint = Checkpoint(path=location.path, filesystem=location.filesystem())
    return export_run(checkpoint, cfg, best)
