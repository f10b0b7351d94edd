"""The evaluation report: its tables, plots and GIF, the data it reads (preprocessed, published
layout, causal mode) and the line it ends with when there is nothing to evaluate."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from posedata import TINY_MODEL, parquet_bytes, pipeline

from hanet.config import from_dict
from hanet.data.schema import Sequence
from hanet.dataset import evaluation_sequences
from hanet.formats.common import ReadError
from hanet.formats.safe_npz import load_npz
from hanet.io.location import parse_location


def _write_dataset(root: Path, test: list[Sequence], val: list[Sequence]) -> None:
    """A dataset folder as preprocessing writes it, sequences only (no windows)."""
    splits = {}
    for split, seqs in (("test", test), ("val", val)):
        (root / "sequences" / split).mkdir(parents=True)
        (root / "sequences" / split / "part-0.parquet").write_bytes(parquet_bytes(seqs))
        splits[split] = {"sequence_files": [f"sequences/{split}/part-0.parquet"]}
    (root / "manifest.json").write_text(json.dumps({"format": "hanet-windows", "splits": splits}))


def _crop(seq: Sequence, frames: int, split: str) -> Sequence:
    """The first ``frames`` frames of every per-frame field (keeps the report's skeleton GIF,
    one figure per frame, cheap)."""
    total = seq.num_frames
    changes = {}
    for item in dataclasses.fields(seq):
        value = getattr(seq, item.name)
        if isinstance(value, np.ndarray | list) and len(value) == total:
            changes[item.name] = value[:frames]
    return dataclasses.replace(seq, **changes, split=split)


def test_evaluate_writes_report(tmp_path: Path, checkpoint: Path, sample_sequences) -> None:
    evaluate = pipeline("evaluate").evaluate

    test = [_crop(s, 16, "test") for s in sample_sequences[:2]]
    val = [_crop(s, 24, "val") for s in sample_sequences[2:4]]
    _write_dataset(tmp_path / "dataset", test, val)
    chosen = test[1].sequence_id
    result = evaluate(
        checkpoint=str(checkpoint),
        data=str(tmp_path / "dataset"),
        output=str(tmp_path / "report"),
        sequence=chosen,
        set_=None,
    )
    markdown = (tmp_path / "report" / "report.md").read_text()
    rows = [line.split("|")[1].strip() for line in markdown.splitlines() if line.startswith("| ")]
    for method in ("input", "HANet", "savgol", "gaussian", "one_euro", "keyframe_interpolation"):
        assert method in rows
    assert "pck@0.05" in markdown and "pck@0.2" in markdown
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [row["sequence_id"] for row in report["per_sequence"]] == [s.sequence_id for s in test]
    assert set(result["table"]) >= {"input", "HANet", "savgol"}
    assert (tmp_path / "report" / f"error_over_time_{chosen}.png").stat().st_size > 0
    gif = (tmp_path / "report" / f"skeleton_{chosen}.gif").read_bytes()
    assert gif[:6] in (b"GIF87a", b"GIF89a")


def test_evaluate_reads_a_published_layout(tmp_path: Path, sample_dir: Path) -> None:
    # A small copy of the sample in the published layout: 3 test and 12 train sequences.
    for sub, keep in (("test", 3), ("train", 12)):
        for rel in (
            f"groundtruth_poses/mocap2d/mocap2d_gt_{sub}.npz",
            f"detected_poses/mocap2d/simplebaseline/mocap2d_simplebaseline_{sub}.npz",
        ):
            arrays = {k: v[:keep] for k, v in load_npz(parse_location(sample_dir / rel)).items()}
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            np.savez(tmp_path / rel, **arrays)
    cfg = from_dict({**TINY_MODEL, "data": {**TINY_MODEL["data"], "val_fraction": 0.5}})
    test, val = evaluation_sequences(cfg, parse_location(tmp_path))
    assert len(test) == 3 and all(s.split == "test" and s.gt is not None for s in test)
    assert val and all(s.split == "val" for s in val)  # carved from train, by clip
    assert len(val) < 12


def test_evaluate_scores_causal_refinement(tmp_path: Path, checkpoint: Path, sample_sequences):
    from hanet.evaluation import evaluate_method
    from hanet.refiner import Refiner

    test = [_crop(s, 16, "test") for s in sample_sequences[:2]]
    _write_dataset(tmp_path / "dataset", test, test)
    result = pipeline("evaluate").evaluate(
        checkpoint=str(checkpoint),
        data=str(tmp_path / "dataset"),
        output=str(tmp_path / "report"),
        sequence=None,
        set_=["refine.lookahead=1"],
    )
    refiner = Refiner.from_checkpoint(checkpoint)
    causal = Refiner(refiner.model, refiner.config.replace({"refine.lookahead": 1}))
    sequences = evaluation_sequences(causal.config, parse_location(tmp_path / "dataset"))[0]
    refined = {s.sequence_id: r.pred for s, r in zip(sequences, causal.refine_many(sequences))}
    expected, _ = evaluate_method(sequences, lambda s: refined[s.sequence_id])
    assert result["table"]["HANet"] == expected
    offline, _ = evaluate_method(sequences, lambda s: refiner.refine(s).pred)
    assert result["table"]["HANet"] != offline


def test_evaluate_says_why_no_test_sequence_was_read(tmp_path: Path, sample_dir: Path) -> None:
    # Another skeleton than the config's (17 joints, stored flat as T x 34): every sequence is
    # skipped, and the one line that ends the run must say why, not only that none was found.
    for rel in (
        "groundtruth_poses/mocap2d/mocap2d_gt_test.npz",
        "detected_poses/mocap2d/simplebaseline/mocap2d_simplebaseline_test.npz",
    ):
        arrays = {k: v[:2] for k, v in load_npz(parse_location(sample_dir / rel)).items()}
        widened = np.empty(len(arrays["joints_2d"]), dtype=object)
        widened[:] = [np.concatenate([j, j[:, :4]], axis=1) for j in arrays["joints_2d"]]
        arrays["joints_2d"] = widened
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp_path / rel, **arrays)
    with pytest.raises(ReadError) as raised:
        evaluation_sequences(from_dict(TINY_MODEL), parse_location(tmp_path))
    message = str(raised.value)
    assert "\n" not in message and message.startswith(str(tmp_path))
    assert "no test sequence with ground truth (2 skipped; the first:" in message
    assert "17 joints" in message and "15" in message
