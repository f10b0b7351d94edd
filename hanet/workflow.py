"""Driver-side steps shared by the pipelines: export a trained run, evaluate a checkpoint."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import yaml

from hanet.checkpoint import load_model
from hanet.config import Config
from hanet.readers import read_sequence_parquet
from hanet.refiner import Refiner
from hanet.report import Report, best_filter, build_report, write_report
from hanet.storage import (
    Location,
    exists,
    read_bytes,
    read_text,
    write_bytes_atomic,
    write_text_atomic,
)
from hanet.training import CHECKPOINT_FILE


def export_run(checkpoint, cfg: Config, output: Location) -> Location:
    """Copy the selected checkpoint to ``output/model.pt`` beside ``config.yaml`` and a CSV of
    the per-epoch metrics; returns the model location."""
    with checkpoint.as_directory() as folder:
        data = (Path(folder) / CHECKPOINT_FILE).read_bytes()
    model = output.join("model.pt")
    write_bytes_atomic(model, data)
    write_text_atomic(output.join("config.yaml"), yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    log = output.join("metrics.jsonl")
    if exists(log):
        records = [json.loads(line) for line in read_text(log).splitlines() if line.strip()]
        columns = sorted({k for r in records for k in r}, key=lambda k: (k != "epoch", k))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)
        write_text_atomic(output.join("metrics.csv"), buffer.getvalue())
    return model


def load_split(dataset: Location, split: str) -> list:
    target = dataset.join("sequences", f"{split}.parquet")
    return read_sequence_parquet(target) if exists(target) else []


def evaluate_model(
    net: Any,
    cfg: Any,
    test_sequences: list,
    val_sequences: list,
    output: Location | None,
    plot_sequence: str | None = None,
) -> tuple[Report, dict[str, str]]:
    """Score a loaded model on test sequences beside the classic filters; write the report."""
    refiner = Refiner(net, cfg)
    keep = (plot_sequence,) if plot_sequence else ()
    report = build_report(refiner, test_sequences, val_sequences, keep_ids=keep)
    written = {}
    if output is not None:
        written = write_report(report, test_sequences, output, plot_sequence)
    return report, written


def evaluate_checkpoint(
    model: Location,
    test_sequences: list,
    val_sequences: list,
    output: Location | None,
    plot_sequence: str | None = None,
) -> tuple[Report, dict[str, str]]:
    """:func:`evaluate_model` on a checkpoint with its stored config."""
    net, cfg = load_model(io.BytesIO(read_bytes(model)))
    return evaluate_model(net, cfg, test_sequences, val_sequences, output, plot_sequence)


def headline(report: Report) -> str:
    """Input vs HANet vs the best classic filter, one table."""
    from hanet.evaluation import format_table

    best = best_filter(report)
    rows = {
        "input": report.table["input"],
        "HANet": report.table["HANet"],
        f"best filter ({best})": report.table[best],
    }
    return format_table(rows, report.representation)
