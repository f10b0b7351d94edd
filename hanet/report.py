"""Evaluation report: the metrics table (input, HANet, classic filters tuned on validation
data), a per-sequence breakdown, and pictures (error/acceleration over time, skeleton GIF)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hanet.evaluation import (
    CLASSIC_FILTERS,
    aggregate,
    filter_poses,
    format_table,
    input_poses,
    metric_columns,
    primary_metric,
    score_sequence,
    tune_filters,
)
from hanet.refiner import Refiner
from hanet.schema import Sequence
from hanet.skeletons import get_layout
from hanet.storage import Location, write_bytes_atomic, write_text_atomic


@dataclass
class Report:
    representation: str
    table: dict[str, dict[str, float]]
    filter_params: dict[str, dict[str, Any]]
    per_sequence: list[dict[str, Any]]
    predictions: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def markdown(self, title: str = "HANet evaluation") -> str:
        lines = [f"# {title}", "", format_table(self.table, self.representation), ""]
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


def error_over_time_png(seq: Sequence, curves: dict[str, np.ndarray]) -> bytes:
    """Per-frame position error and acceleration magnitude of each method, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = "px" if seq.representation == "2D" else ("mm" if seq.representation == "3D" else "")
    scale = 1000.0 if seq.representation == "3D" else 1.0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for name, poses in curves.items():
        error = np.linalg.norm(poses - seq.gt, axis=-1).mean(axis=1) * scale
        top.plot(error, label=name, linewidth=1.2)
        acc = np.linalg.norm(poses[:-2] - 2 * poses[1:-1] + poses[2:], axis=-1).mean(axis=1)
        bottom.plot(np.arange(1, len(poses) - 1), acc * scale, label=name, linewidth=1.2)
    gt_acc = np.linalg.norm(seq.gt[:-2] - 2 * seq.gt[1:-1] + seq.gt[2:], axis=-1).mean(axis=1)
    bottom.plot(
        np.arange(1, len(seq.gt) - 1),
        gt_acc * scale,
        label="ground truth",
        color="k",
        linewidth=0.8,
        linestyle="--",
    )
    top.set_ylabel(f"position error ({unit})")
    bottom.set_ylabel(f"acceleration ({unit}/frame²)")
    bottom.set_xlabel("frame")
    top.set_title(seq.sequence_id)
    top.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def skeleton_gif(seq: Sequence, curves: dict[str, np.ndarray], max_frames: int = 60) -> bytes:
    """Side-by-side skeleton animation (input | refined | ground truth) as GIF bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    layout = get_layout(seq.layout)
    panels = {**curves, "ground truth": seq.gt}
    frames = min(seq.num_frames, max_frames)
    everything = np.concatenate([p[:frames, :, :2] for p in panels.values()])
    low, high = everything.reshape(-1, 2).min(0), everything.reshape(-1, 2).max(0)
    pad = 0.05 * (high - low).max()
    # One figure whose artists move from frame to frame: building a figure per frame costs
    # most of the report's time.
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3), dpi=60, squeeze=False)
    artists = []
    for ax, name in zip(axes[0], panels):
        bones = [ax.plot([], [], color="tab:blue", linewidth=2)[0] for _ in layout.bones]
        joints = ax.scatter(
            np.zeros(layout.num_joints), np.zeros(layout.num_joints), s=8, color="tab:red"
        )
        ax.set_xlim(low[0] - pad, high[0] + pad)
        # Image coordinates grow downwards in 2D; 3D y is up.
        if seq.representation == "2D":
            ax.set_ylim(high[1] + pad, low[1] - pad)
        else:
            ax.set_ylim(low[1] - pad, high[1] + pad)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        artists.append((ax, name, bones, joints))
    fig.tight_layout()
    images = []
    for t in range(frames):
        for ax, name, bones, joints in artists:
            xy = panels[name][t, :, :2]
            for line, (a, b) in zip(bones, layout.bones):
                line.set_data(xy[[a, b], 0], xy[[a, b], 1])
            joints.set_offsets(xy)
            ax.set_title(f"{name} ({t})", fontsize=9)
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        images.append(Image.fromarray(rgba[..., :3]).convert("P", palette=Image.ADAPTIVE))
    plt.close(fig)
    out = io.BytesIO()
    duration = int(1000 / (seq.fps or 30.0))
    images[0].save(
        out, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0
    )
    return out.getvalue()


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
        target = output.join(f"error_over_time_{_file_safe(chosen)}.png")
        write_bytes_atomic(target, error_over_time_png(seq, curves))
        written["plot"] = target.uri
        target = output.join(f"skeleton_{_file_safe(chosen)}.gif")
        write_bytes_atomic(target, skeleton_gif(seq, curves))
        written["gif"] = target.uri
    return written


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


__all__ = ["Report", "best_filter", "build_report", "metric_columns", "write_report"]
