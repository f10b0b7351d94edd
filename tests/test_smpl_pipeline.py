"""SMPL end to end on the bundled rotation track: preprocess -> train -> refine -> evaluate,
with geodesic errors for every method and joint positions through forward kinematics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from posedata import TINY_PIPELINE

from hanet.batch_refine import run_refine
from hanet.body_fk import orthonormal_6d
from hanet.checkpoint import load_model
from hanet.config import load_config
from hanet.dataset import load_split, sequence_files
from hanet.formats.parquet import read_sequence_parquet
from hanet.io.location import parse_location
from hanet.preprocessing import run_preprocess
from hanet.report import evaluate_model
from hanet.runs import export_run
from hanet.training import best_checkpoint, build_trainer

TINY_SMPL = [
    "data.dataset=mocapsmpl",
    "data.estimator=pare",
    "data.train_stride=4",
    "data.val_fraction=0.25",
    *TINY_PIPELINE,
]


@pytest.mark.ray
@pytest.mark.slow
def test_smpl_runs_end_to_end_with_geodesic_and_fk_errors(
    ray_session, sample_dir: Path, tmp_path: Path
) -> None:
    cfg = load_config("configs/3dpw_pare_smpl.yaml", TINY_SMPL)
    assert cfg.data.representation == "smpl" and cfg.model.channels == 24 * 6
    dataset = parse_location(tmp_path / "dataset")
    run_preprocess(cfg, parse_location(sample_dir), dataset)
    run = parse_location(tmp_path / "run")
    result = build_trainer(cfg, dataset, run).fit()
    model_location = export_run(best_checkpoint(result), cfg, run)

    # Bulk refinement of the test sequences: valid rotations out, the skeleton kept.
    refined_root = parse_location(tmp_path / "refined")
    (part,) = sequence_files(dataset, "test")
    summary = run_refine(model_location, part, refined_root)
    assert summary.written == 1 and not summary.errors
    refined = read_sequence_parquet(refined_root.join(part.name))
    test = load_split(dataset, "test")
    assert len(refined) == len(test) == 6 and all(s.skeleton is not None for s in refined)
    for seq in refined:
        np.testing.assert_allclose(orthonormal_6d(seq.pred), seq.pred, atol=1e-5)

    net, stored = load_model(model_location)
    report, written = evaluate_model(
        net, stored, test, load_split(dataset, "val"), parse_location(tmp_path / "report")
    )
    table = report.table
    assert set(table) >= {"input", "HANet", "savgol", "gaussian", "one_euro"}
    for method, values in table.items():
        assert {"angle_deg", "accel_6d", "mpjpe", "accel"} <= set(values), method
        assert all(np.isfinite(v) for v in values.values()), method
    # The simulated PARE input: about 12 degrees per joint and 80 mm through the skeleton.
    assert 8.0 < table["input"]["angle_deg"] < 16.0
    assert 60.0 < table["input"]["mpjpe"] < 100.0
    # Smoothing rotations (rotation-safe) removes most of the jitter.
    assert table["gaussian"]["accel"] < table["input"]["accel"]
    assert (
        "| angle_deg |" in (tmp_path / "report" / "report.md").read_text().replace("  ", " ")
        or "angle_deg" in (tmp_path / "report" / "report.md").read_text()
    )
    assert written["markdown"].endswith("report.md")
