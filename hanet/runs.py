"""A finished training run's folder: the chosen checkpoint as ``model.pt`` beside its
``config.yaml`` and the per-epoch metrics (``metrics.jsonl`` written by rank 0, and
``metrics.csv``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from hanet.config import Config
from hanet.io.location import Location, parse_location
from hanet.io.storage import exists, read_bytes, read_text, write_bytes_atomic, write_text_atomic
from hanet.tables import csv_table

__all__ = [
    "CHECKPOINT_FILE",
    "METRICS_LOG",
    "EpochFollower",
    "epoch_line",
    "export_run",
    "read_metrics_log",
]

CHECKPOINT_FILE = "checkpoint.pt"
METRICS_LOG = "metrics.jsonl"


def read_metrics_log(run: Location) -> list[dict[str, Any]]:
    """The per-epoch records of a run, in order (none when there is no log yet)."""
    log = run.join(METRICS_LOG)
    if not exists(log):
        return []
    return [json.loads(line) for line in read_text(log).splitlines() if line.strip()]


def export_run(checkpoint: Any, cfg: Config, output: Location) -> Location:
    """Copy a Ray Train checkpoint's file to ``output/model.pt`` beside ``config.yaml`` and a CSV
    of the per-epoch metrics; returns the model location."""
    with checkpoint.as_directory() as folder:
        data = read_bytes(parse_location(str(Path(folder) / CHECKPOINT_FILE)))
    model = output.join("model.pt")
    write_bytes_atomic(model, data)
    write_text_atomic(output.join("config.yaml"), yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    records = read_metrics_log(output)
    if records:
        columns = sorted({k for r in records for k in r}, key=lambda k: (k != "epoch", k))
        write_text_atomic(output.join("metrics.csv"), csv_table(columns, records))
    return model


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
