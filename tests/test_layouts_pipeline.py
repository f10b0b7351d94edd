"""A joint layout declared in YAML, end to end: the bundled 2D sample reduced to its 12 body
joints goes through preprocess -> train -> refine -> evaluate with nothing but the layout file
and the checkpoint; a layout that does not match is refused, naming both sides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from posedata import TINY_PIPELINE, sample_arrays, write_pair

from hanet.batch_refine import run_refine
from hanet.checkpoint import load_model
from hanet.config import load_config
from hanet.dataset import DatasetError, load_split, sequence_files
from hanet.formats.parquet import read_sequence_parquet
from hanet.io.location import parse_location
from hanet.preprocessing import run_preprocess
from hanet.records import RefineJobError, effective_config
from hanet.report import evaluate_model
from hanet.runs import export_run
from hanet.training import best_checkpoint, build_trainer

# JHMDB's joints 3..14: its body without neck, belly and face.
BODY12 = [
    "r_shoulder",
    "l_shoulder",
    "r_hip",
    "l_hip",
    "r_elbow",
    "l_elbow",
    "r_knee",
    "l_knee",
    "r_wrist",
    "l_wrist",
    "r_ankle",
    "l_ankle",
]
LAYOUT = {
    "name": "jhmdb_body12",
    "joints": BODY12,
    "roots": ["l_hip", "r_hip"],
    "bones": [
        "r_shoulder-r_elbow",
        "r_elbow-r_wrist",
        "l_shoulder-l_elbow",
        "l_elbow-l_wrist",
        "r_hip-r_knee",
        "r_knee-r_ankle",
        "l_hip-l_knee",
        "l_knee-l_ankle",
    ],
    "left_right": [f"l_{j}-r_{j}" for j in ("shoulder", "hip", "elbow", "knee", "wrist", "ankle")],
}
TINY = [
    "data.dataset=body12",
    "data.estimator=simplebaseline",
    "data.normalisation=body",
    "data.val_fraction=0.3",
    "data.train_stride=3",
    "augment.mirror=0.5",
    *TINY_PIPELINE,
]


def _reduced_sample(sample_dir: Path, root: Path) -> Path:
    """The first sequences of each split with only the 12 body joints, no image size."""
    for split, count in (("train", 10), ("test", 3)):
        gt, det = sample_arrays(sample_dir, "mocap2d", "simplebaseline", split)
        body = slice(2 * 3, 2 * 15)  # joints 3..14, x and y interleaved
        write_pair(
            root,
            "body12",
            "simplebaseline",
            split,
            {
                "imgname": list(gt["imgname"][:count]),
                "bbox": list(gt["bbox"][:count]),
                "joints_2d": [p[:, body] for p in gt["joints_2d"][:count]],
            },
            {"joints_2d": [p[:, body] for p in det["joints_2d"][:count]]},
        )
    return root


@pytest.mark.ray
@pytest.mark.slow
def test_a_declared_layout_runs_end_to_end(ray_session, sample_dir: Path, tmp_path: Path) -> None:
    layout_file = tmp_path / "body12.yaml"
    layout_file.write_text(yaml.safe_dump(LAYOUT))
    cfg = load_config(
        "configs/demo_2D.yaml", [f"data.layout={layout_file}", *TINY, "model.num_joints=12"]
    )
    assert cfg.model.num_joints == 12 and cfg.data.joint_layout.name == "jhmdb_body12"
    source = parse_location(_reduced_sample(sample_dir, tmp_path / "in"))
    dataset = parse_location(tmp_path / "dataset")
    manifest = run_preprocess(cfg, source, dataset).manifest
    assert manifest["layout"]["joints"] == BODY12 and manifest["num_joints"] == 12

    layout_file.unlink()  # from here on nothing needs the file: datasets and checkpoints hold it
    run = parse_location(tmp_path / "run")
    model_location = export_run(best_checkpoint(build_trainer(cfg, dataset, run).fit()), cfg, run)
    net, stored = load_model(model_location)
    assert stored.data.joint_layout == cfg.data.joint_layout

    (part,) = sequence_files(dataset, "test")
    summary = run_refine(model_location, part, parse_location(tmp_path / "refined"))
    assert summary.written == 1 and not summary.errors
    refined = read_sequence_parquet(parse_location(tmp_path / "refined").join(part.name))
    assert all(s.layout.joints == tuple(BODY12) and s.pred.shape[1] == 12 for s in refined)
    report, _ = evaluate_model(
        net, stored, load_split(dataset, "test"), load_split(dataset, "val"), None
    )
    assert {"input", "HANet", "gaussian"} <= set(report.table)
    assert all(np.isfinite(v).all() for v in report.table["HANet"].values())

    # The layouts of data, config and checkpoint must agree; each refusal names both sides.
    with pytest.raises(RefineJobError, match="'jhmdb' has 15.*trained on layout 'jhmdb_body12'"):
        effective_config(stored, ["data.layout=jhmdb"])
    other = load_config("configs/demo_2D.yaml", [*TINY, "data.layout=coco_body12"])
    with pytest.raises(DatasetError, match="layout 'jhmdb_body12'.*data.layout is 'coco_body12'"):
        build_trainer(other, dataset, parse_location(tmp_path / "run2"))
    full = parse_location(tmp_path / "full")
    run_preprocess(
        load_config("configs/demo_2D.yaml", ["data.val_fraction=0"]),
        parse_location(sample_dir),
        full,
    )
    (test15,) = sequence_files(full, "test")
    fifteen = run_refine(model_location, test15, parse_location(tmp_path / "refined15"))
    assert fifteen.written == 0 and len(fifteen.errors) == 1
    reason = fifteen.errors[0]["reason"]
    assert "15 joints" in reason and "12" in reason and "jhmdb_body12" in reason
