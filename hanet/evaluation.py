"""Scoring refined sequences against ground truth, beside the classic filters.

Metrics follow the published definitions (PCK sequence-weighted over the S x J matrix;
MPJPE / PA-MPJPE / acceleration error averaged over all frames), computed on every frame that
has ground truth: no tail frame is dropped and no padding is scored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hanet import metrics
from hanet.body_fk import forward_kinematics, layout_parents, orthonormal_6d
from hanet.data.normalise import filled_input, target_mask
from hanet.data.schema import Sequence
from hanet.filters import FILTER_GRIDS, apply_filter
from hanet.skeletons import get_layout

PCK_ALPHAS = (0.05, 0.1, 0.2)
CLASSIC_FILTERS = ("savgol", "gaussian", "one_euro", "keyframe_interpolation")


def primary_metric(representation: str) -> str:
    """The lower-is-better position error used for model and filter selection."""
    return {"2D": "pixel_error", "3D": "mpjpe", "smpl": "angle_deg"}[representation]


def metric_columns(representation: str) -> list[str]:
    if representation == "2D":
        return [f"pck@{a}" for a in PCK_ALPHAS] + ["pixel_error", "accel_px"]
    if representation == "3D":
        return ["mpjpe", "pa_mpjpe", "accel"]
    # Joint positions by forward kinematics, where the sequences know their skeleton.
    return ["angle_deg", "accel_6d", "mpjpe", "accel"]


@dataclass
class SequenceScores:
    """Per-sequence pieces that aggregate into dataset metrics exactly."""

    sequence_id: str
    frames: int
    values: dict[str, float] = field(default_factory=dict)
    pck: dict[float, np.ndarray] = field(default_factory=dict)  # alpha -> [J]
    sums: dict[str, tuple[float, int]] = field(default_factory=dict)  # frame-weighted


def _frame_weighted(per_frame: np.ndarray, scale: float = 1.0) -> tuple[float, int]:
    """(sum, count) over the frames that have a value (NaN frames have none)."""
    keep = ~np.isnan(per_frame)
    return float(per_frame[keep].sum() * scale), int(keep.sum())


def score_sequence(poses: np.ndarray, seq: Sequence) -> SequenceScores:
    """Score ``poses [T, J, D]`` against ``seq``'s ground truth where it exists."""
    if seq.gt is None:
        raise ValueError(f"{seq.where()}: no ground truth to score against")
    valid = target_mask(seq)
    scores = SequenceScores(seq.sequence_id, seq.num_frames)
    gt = seq.gt
    if seq.representation == "2D":
        if seq.bbox is not None:
            for alpha in PCK_ALPHAS:
                scores.pck[alpha] = metrics.pck(poses, gt, seq.bbox, alpha, valid)
        dist = metrics.position_errors(poses, gt)
        scores.sums["pixel_error"] = (float(dist[valid].sum()), int(valid.sum()))
        scores.sums["accel_px"] = _frame_weighted(metrics.accel_error_per_frame(poses, gt, valid))
    elif seq.representation == "3D":
        roots = get_layout(seq.layout).roots
        scores.sums["mpjpe"] = _frame_weighted(metrics.mpjpe_per_frame(poses, gt, roots, valid))
        scores.sums["pa_mpjpe"] = _frame_weighted(metrics.pa_mpjpe_per_frame(poses, gt, valid))
        # Root-relative, as the published 3D accelerations are (and as MPJPE is here).
        accel = metrics.accel_error_per_frame(poses, gt, valid, roots)
        scores.sums["accel"] = _frame_weighted(accel, scale=1000.0)  # mm/frame^2
    else:
        angle = metrics.geodesic_angle_deg(poses, gt, valid)
        scores.sums["angle_deg"] = (angle * int(valid.sum()), int(valid.sum()))
        scores.sums["accel_6d"] = _frame_weighted(metrics.accel_error_per_frame(poses, gt, valid))
        if seq.skeleton is not None:
            layout = get_layout(seq.layout)
            parents = layout_parents(layout)
            joints = forward_kinematics(poses, seq.skeleton, parents)
            truth = forward_kinematics(gt, seq.skeleton, parents)
            per_frame = metrics.mpjpe_per_frame(joints, truth, layout.roots, valid)
            scores.sums["mpjpe"] = _frame_weighted(per_frame)
            accel = metrics.accel_error_per_frame(joints, truth, valid, layout.roots)
            scores.sums["accel"] = _frame_weighted(accel, scale=1000.0)  # mm/frame^2
    return scores


def aggregate(scores: list[SequenceScores], representation: str) -> dict[str, float]:
    """Dataset metrics from per-sequence pieces (PCK in %, errors in their units)."""
    out: dict[str, float] = {}
    if representation == "2D" and scores and scores[0].pck:
        for alpha in PCK_ALPHAS:
            out[f"pck@{alpha}"] = 100.0 * metrics.pck_mean([s.pck[alpha] for s in scores])
    keys = {k for s in scores for k in s.sums}
    for key in sorted(keys):
        total = sum(s.sums[key][0] for s in scores if key in s.sums)
        count = sum(s.sums[key][1] for s in scores if key in s.sums)
        out[key] = total / count if count else float("nan")
    return out


def input_poses(seq: Sequence) -> np.ndarray:
    """The estimator's poses exactly as the model receives them: missing joints filled from
    neighbours in time, a joint never detected in the sequence at the body's centre (scoring a
    missing joint as 0 would be meaningless)."""
    return filled_input(seq)


def filter_poses(seq: Sequence, name: str, params: dict[str, Any]) -> np.ndarray:
    """A classic filter over ``seq``'s poses; SMPL rotations are filtered in 6D and made valid
    rotations again afterwards (rotation-safe: an average of rotations is no rotation)."""
    out = apply_filter(name, seq.pred, fps=seq.fps or 30.0, valid=seq.observed(), **params)
    return orthonormal_6d(out) if seq.representation == "smpl" else out


def evaluate_method(
    sequences: list[Sequence], predict: Callable[[Sequence], np.ndarray]
) -> tuple[dict[str, float], list[SequenceScores]]:
    scores = [score_sequence(predict(seq), seq) for seq in sequences]
    return aggregate(scores, sequences[0].representation), scores


def tune_filters(
    sequences: list[Sequence], interval: int | None = None
) -> dict[str, dict[str, Any]]:
    """Each classic filter's parameters, chosen on ``sequences`` (validation data) by the
    primary position error. Key-frame interpolation uses the model's interval N when given."""
    representation = sequences[0].representation
    key = primary_metric(representation)
    chosen = {}
    for name in CLASSIC_FILTERS:
        grid = FILTER_GRIDS[name]
        if name == "keyframe_interpolation" and interval is not None:
            grid = [{"interval": interval}]
        best, best_error = grid[0], float("inf")
        for params in grid:
            result, _ = evaluate_method(
                sequences, lambda s, n=name, p=params: filter_poses(s, n, p)
            )
            if result[key] < best_error:
                best, best_error = params, result[key]
        chosen[name] = best
    return chosen
