"""A finished training run's folder: the chosen checkpoint as ``model.pt`` beside its
``config.yaml`` and the per-epoch metrics (``metrics.jsonl`` written by rank 0, and
``metrics.csv``); Ray Train's checkpoints in ``<run>/train/``, where only the ones Ray
registered may stay."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from hanet.checkpoint import load_checkpoint, model_file_bytes
from hanet.config import Config, ConfigError
from hanet.io.location import Location, parse_location
from hanet.io.storage import (
    delete_tree,
    exists,
    read_bytes,
    read_text,
    subfolders,
    write_bytes_atomic,
    write_text_atomic,
)
from hanet.tables import csv_table

log = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_FILE",
    "METRICS_LOG",
    "EpochFollower",
    "epoch_line",
    "export_run",
    "read_metrics_log",
    "remove_orphan_checkpoints",
    "resume_line",
]

CHECKPOINT_FILE = "checkpoint.pt"
METRICS_LOG = "metrics.jsonl"
# Where Ray Train (2.60) records the checkpoints it knows of, and how it names their folders.
RAY_SNAPSHOT = "checkpoint_manager_snapshot.json"
RAY_CHECKPOINT_PREFIX = "checkpoint_"


def read_metrics_log(run: Location) -> list[dict[str, Any]]:
    """The per-epoch records of a run, in order (none when there is no log yet)."""
    log = run.join(METRICS_LOG)
    if not exists(log):
        return []
    return [json.loads(line) for line in read_text(log).splitlines() if line.strip()]


def export_run(checkpoint: Any, cfg: Config, output: Location) -> Location:
    """Write a Ray Train checkpoint's model to ``output/model.pt`` (weights, config, epoch and
    metrics: the optimiser state stays in the training checkpoint) beside ``config.yaml`` and a
    CSV of the per-epoch metrics; returns the model location."""
    with checkpoint.as_directory() as folder:
        source = parse_location(str(Path(folder) / CHECKPOINT_FILE))
        data = model_file_bytes(read_bytes(source), name=source.uri)
    model = output.join("model.pt")
    write_bytes_atomic(model, data)
    write_text_atomic(output.join("config.yaml"), yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    records = read_metrics_log(output)
    if records:
        columns = sorted({k for r in records for k in r}, key=lambda k: (k != "epoch", k))
        write_text_atomic(output.join("metrics.csv"), csv_table(columns, records))
    return model


def _registered(value: Any) -> set[str]:
    """Every ``checkpoint_dir_name`` in Ray's snapshot, wherever it appears."""
    if isinstance(value, dict):
        found = {value["checkpoint_dir_name"]} if "checkpoint_dir_name" in value else set()
        return found.union(*(_registered(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_registered(v) for v in value))
    return set()


def remove_orphan_checkpoints(train_folder: Location) -> list[str]:
    """Delete the checkpoint folders in ``train_folder`` that Ray Train never registered.

    A run killed while rank 0 uploads a checkpoint, or before Ray records it, leaves a folder
    (complete or partial) that Ray neither resumes from nor deletes when it prunes old ones:
    it would stay forever. Nothing is deleted without Ray's snapshot to vouch for the rest.

    Returns:
        The names of the folders removed.
    """
    snapshot = train_folder.join(RAY_SNAPSHOT)
    if not exists(snapshot):
        return []
    keep = _registered(json.loads(read_text(snapshot)))
    removed = []
    for name in subfolders(train_folder):
        if name.startswith(RAY_CHECKPOINT_PREFIX) and name not in keep:
            delete_tree(train_folder.join(name))
            removed.append(name)
            log.info("%s: removed a checkpoint Ray never registered", train_folder.join(name).uri)
    return removed


def resume_line(train_folder: Location, cfg: Config) -> str:
    """What a resume of the Ray Train run in ``train_folder`` continues from, as a console line,
    after checking that ``cfg`` can continue it.

    The epoch is that of the latest checkpoint Ray registered (where it restarts), not the last
    line of the metrics log, which a run killed before its checkpoint was saved is ahead of.

    Raises:
        CheckpointError: that checkpoint is unreadable or damaged.
        ConfigError: ``cfg.model`` is not the model the run trains.
    """
    snapshot = train_folder.join(RAY_SNAPSHOT)
    latest = (
        json.loads(read_text(snapshot)).get("latest_checkpoint_result")
        if exists(snapshot)
        else None
    )
    if not latest:
        return (
            f"resuming {train_folder.parent.uri}: it stopped before its first checkpoint; "
            "starting at epoch 1"
        )
    state = load_checkpoint(train_folder.join(latest["checkpoint_dir_name"], CHECKPOINT_FILE))
    stored = state["config"]["model"]
    wanted = cfg.to_dict()["model"]
    changed = [key for key in wanted if stored.get(key) != wanted[key]]
    if changed:
        key = changed[0]
        raise ConfigError(
            f"--resume {train_folder.parent.uri}: the run trains model.{key}={stored.get(key)!r}, "
            f"the config says {wanted[key]!r}; resume with the --config and --set the run was "
            "started with"
        )
    epoch = int(state["epoch"]) + 1
    return f"resuming {train_folder.parent.uri} after epoch {epoch}/{cfg.train.epochs}"


def epoch_line(record: dict[str, Any], epochs: int, metric: str) -> str:
    """One compact console line for an epoch record of the metrics log."""
    parts = [f"epoch {int(record['epoch']) + 1:>3}/{epochs}"]
    parts.append(f"train loss {record.get('train_loss', float('nan')):.4f}")
    value = record.get(f"val_{metric}")
    if value is not None:
        base = record.get(f"val_input_{metric}")
        vs = f" (input {base:.3g})" if base is not None else ""
        parts.append(f"val {metric} {value:.4g}{vs}")
    parts.append(f"{record.get('epoch_seconds', 0.0):.1f} s")
    return "  ".join(parts)


class EpochFollower(threading.Thread):
    """Follows a run's metrics log while training runs elsewhere (Ray Train's workers write
    it), calling ``show`` once for every new epoch, in order.

    Use as a context manager around ``trainer.fit()``; leaving it reads the log one last time.
    """

    def __init__(self, run: Location, show: Callable[[dict[str, Any]], None], every: float = 1.0):
        super().__init__(daemon=True)
        self.run_location, self.show, self.every = run, show, every
        self._shown = -1
        self._finished = threading.Event()

    def _poll(self) -> None:
        try:
            records = read_metrics_log(self.run_location)
        except (OSError, ValueError):  # a log being replaced, or storage briefly unreachable
            return
        for record in records:
            if int(record.get("epoch", -1)) > self._shown:
                self._shown = int(record["epoch"])
                self.show(record)

    def run(self) -> None:
        while not self._finished.wait(self.every):
            self._poll()

    def __enter__(self) -> EpochFollower:
        self._shown = max(
            (int(r["epoch"]) for r in read_metrics_log(self.run_location)), default=-1
        )
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finished.set()
        self.join()
        self._poll()
