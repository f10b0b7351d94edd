"""Evaluation report: the metrics table (input, HANet, classic filters tuned on validation
data), a per-sequence breakdown, and pictures (error/acceleration over time, skeleton GIF)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hanet.config import Config
from hanet.data.schema import Sequence, safe_name
from hanet.evaluation import (
    CLASSIC_FILTERS,
    aggregate,
    filter_poses,
    input_poses,
    metric_columns,
    primary_metric,
    score_sequence,
    tune_filters,
)
from hanet.io.location import Location
from hanet.io.storage import write_bytes_atomic, write_text_atomic
from hanet.model import HANet
from hanet.plots import error_over_time_png, skeleton_gif
from hanet.refiner import Refiner
from hanet.tables import markdown_table

__all__ = [
    "Report",
    "best_filter",
    "build_report",
    "evaluate_model",
    "headline",
    "metrics_table",
    "write_report",
]


def metrics_table(rows: dict[str, dict[str, float]], representation: str) -> str:
    """A Markdown table: one row per method, the representation's metric columns."""
    columns = [c for c in metric_columns(representation) if any(c in r for r in rows.values())]
    table = [{"method": method, **values} for method, values in rows.items()]
    return markdown_table(["method", *columns], table, digits=2)


@dataclass
class Report:
    representation: str
    table: dict[str, dict[str, float]]
    filter_params: dict[str, dict[str, Any]]
    per_sequence: list[dict[str, Any]]
    predictions: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def markdown(self, title: str = "HANet evaluation") -> str:
        lines = [f"# {title}", "", metrics_table(self.table, self.representation), ""]
        lines.append("Classic filters' settings, chosen on the validation split:")
        lines.append("")
        for name, params in self.filter_params.items():
            lines.append(f"- {name}: " + ", ".join(f"{k}={v}" for k, v in params.items()))
        lines += ["", "## Per sequence", ""]
        key = primary_metric(self.representation)
        lines.append(f"| sequence | frames | input {key} | HANet {key} |")
        lines.append("|---|---:|---:|---:|")
        for row in self.per_sequence:
            lines.append(
                f"| {row['sequence_id']} | {row['frames']} | {row['input'][key]:.2f} | "
                f"{row['HANet'][key]:.2f} |"
            )
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "representation": self.representation,
            "table": self.table,
            "filter_params": self.filter_params,
            "per_sequence": self.per_sequence,
        }


def best_filter(report: Report) -> str:
    key = primary_metric(report.representation)
    return min(CLASSIC_FILTERS, key=lambda name: report.table[name][key])


def build_report(
    refiner: Refiner,
    test: list[Sequence],
    val: list[Sequence] | None = None,
    keep_predictions: int = 3,
    keep_ids: tuple[str, ...] = (),
) -> Report:
    """Score input, HANet and each classic filter on ``test``; filters are tuned on ``val``
    (or on ``test`` itself when no validation data exists, which the table then says)."""
    labelled = [s for s in test if s.gt is not None]
    if not labelled:
        raise ValueError("no test sequence carries ground truth")
    representation = labelled[0].representation
    tuning = [s for s in (val or []) if s.gt is not None] or labelled
    params = tune_filters(tuning, interval=refiner.config.model.interval)
    refined = refiner.refine_many(labelled)
    methods: dict[str, list[np.ndarray]] = {
        "input": [input_poses(s) for s in labelled],
        "HANet": [r.pred for r in refined],
    }
    for name in CLASSIC_FILTERS:
        methods[name] = [filter_poses(s, name, params[name]) for s in labelled]
    table, per_method_scores = {}, {}
    for method, poses in methods.items():
        scores = [score_sequence(p, s) for p, s in zip(poses, labelled)]
        per_method_scores[method] = scores
        table[method] = aggregate(scores, representation)
    per_sequence = []
    for i, seq in enumerate(labelled):
        per_sequence.append(
            {
                "sequence_id": seq.sequence_id,
                "frames": seq.num_frames,
                **{
                    m: aggregate([per_method_scores[m][i]], representation)
                    for m in ("input", "HANet")
                },
            }
        )
    predictions = {
        seq.sequence_id: {m: methods[m][i] for m in ("input", "HANet")}
        for i, seq in enumerate(labelled)
        if i < keep_predictions or seq.sequence_id in keep_ids
    }
    return Report(representation, table, params, per_sequence, predictions)


def write_report(
    report: Report, sequences: list[Sequence], output: Location, plot_sequence: str | None = None
) -> dict[str, str]:
    """Write report.md, report.json and the pictures under ``output``; returns their URIs."""
    written = {}
    target = output.join("report.md")
    write_text_atomic(target, report.markdown())
    written["markdown"] = target.uri
    target = output.join("report.json")
    write_text_atomic(target, json.dumps(report.to_json(), indent=2))
    written["json"] = target.uri
    by_id = {s.sequence_id: s for s in sequences}
    chosen = plot_sequence or next(iter(report.predictions), None)
    if chosen is not None and chosen in by_id:
        seq = by_id[chosen]
        curves = report.predictions.get(chosen)
        if curves is None:
            raise ValueError(f"no stored predictions for sequence {chosen!r}")
        target = output.join(f"error_over_time_{safe_name(chosen)}.png")
        write_bytes_atomic(target, error_over_time_png(seq, curves))
        written["plot"] = target.uri
        target = output.join(f"skeleton_{safe_name(chosen)}.gif")
        write_bytes_atomic(target, skeleton_gif(seq, curves))
        written["gif"] = target.uri
    return written


def evaluate_model(
    net: HANet,
    cfg: Config,
    test_sequences: list[Sequence],
    val_sequences: list[Sequence],
    output: Location | None,
    plot_sequence: str | None = None,
) -> tuple[Report, dict[str, str]]:
    """Score a loaded model on test sequences beside the classic filters; write the report
    under ``output`` unless it is None."""
    refiner = Refiner(net, cfg)
    keep = (plot_sequence,) if plot_sequence else ()
    report = build_report(refiner, test_sequences, val_sequences, keep_ids=keep)
    written = {}
    if output is not None:
        written = write_report(report, test_sequences, output, plot_sequence)
    return report, written


def headline(report: Report) -> str:
    """Input vs HANet vs the best classic filter, one table."""
    best = best_filter(report)
    rows = {
        "input": report.table["input"],
        "HANet": report.table["HANet"],
        f"best filter ({best})": report.table[best],
    }
    return metrics_table(rows, report.representation)
