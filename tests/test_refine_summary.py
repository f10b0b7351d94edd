"""hanet.refine_summary: the printed summary and the run files say what was left out, retried
and suspicious, besides what was written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from posedata import TINY_MODEL

from hanet.config import from_dict
from hanet.io.location import parse_location
from hanet.records import ERRORS_FILE, MANIFEST_FILE
from hanet.refine_summary import summarise, write_run_files


def _row(rel: str, status: str, **extra) -> dict:
    row = {"input": rel, "output": rel, "status": status, "sequences": 1, "frames": 10}
    row.update({"seconds": 0.1, "error": "", "replaced": "", "retries": 0, "warning": ""})
    row.setdefault("displacement", float("nan") if status == "error" else 0.02)
    row.update(extra)
    return row


def test_summary_lists_left_out_files_retries_warnings_and_errors(tmp_path: Path) -> None:
    root, output = parse_location(tmp_path / "in"), parse_location(tmp_path / "out")
    rows = [
        _row("a.parquet", "written", retries=2),
        _row("b.parquet", "skipped"),
        _row("c.parquet", "error", error="ReadError: /in/c.parquet: bad"),
        _row("d.parquet", "written", warning="/in/d.parquet: sequence 'd': body size 0.3 px"),
    ]
    not_inputs = {"notes.txt": "unsupported suffix .txt", ".x": "hidden (...)"}
    summary = summarise(rows, {}, root, output, 2.0, not_inputs=not_inputs)
    assert (summary.written, summary.skipped, len(summary.errors), summary.retries) == (2, 1, 1, 2)
    text = summary.format()
    assert "left out: 2 file(s): 1 hidden (...) (e.g. .x), 1 unsupported suffix .txt" in text
    assert "retried: 2 time(s) while the storage did not answer" in text
    assert (
        "warning: 1 object(s) have a body size that does not fit the declared units, e.g. "
        "/in/d.parquet: sequence 'd': body size 0.3 px" in text
    )
    assert "  error: ReadError: /in/c.parquet: bad" in text
    assert summary.to_dict()["not_inputs"] == 2 and summary.to_dict()["unit_warnings"] == 1

    write_run_files(
        summary, from_dict(TINY_MODEL), root.join("m.pt"), root, output, "parquet", "id"
    )
    manifest = json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())
    assert manifest["not_inputs"] == not_inputs and manifest["retries"] == 2
    errors = json.loads((tmp_path / "out" / ERRORS_FILE).read_text())
    assert errors == [
        {"object": root.join("c.parquet").uri, "reason": "ReadError: /in/c.parquet: bad"}
    ]


def test_summary_gives_the_displacement_distribution_and_lists_objects_beyond_the_limit(
    tmp_path: Path,
) -> None:
    root, output = parse_location(tmp_path / "in"), parse_location(tmp_path / "out")
    moved = [0.01, 0.02, 0.03, 0.04, 0.5, 0.9]
    rows = [_row(f"{i}.parquet", "written", displacement=v) for i, v in enumerate(moved)]
    rows += [_row("old.parquet", "skipped", displacement=0.2), _row("bad.parquet", "error")]
    summary = summarise(rows, {}, root, output, 1.0, displacement_limit=0.1)
    values = [*moved, 0.2]  # skipped objects count with their recorded displacement
    assert summary.displacement == {
        "min": 0.01,
        "median": 0.04,
        "p90": round(float(np.percentile(values, 90)), 6),
        "max": 0.9,
    }
    assert summary.far_moved == {"4.parquet": 0.5, "5.parquet": 0.9, "old.parquet": 0.2}
    text = summary.format()
    assert "moved:   0.040 body sizes per joint (median over objects; min 0.010" in text
    assert (
        "warning: 3 object(s) moved more than 0.1 body sizes (unlike the training data?): "
        "5.parquet (0.90), 4.parquet (0.50), old.parquet (0.20)" in text
    )
    write_run_files(
        summary, from_dict(TINY_MODEL), root.join("m.pt"), root, output, "parquet", "id"
    )
    manifest = json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())
    assert manifest["displacement"]["max"] == 0.9 and len(manifest["far_moved"]) == 3
    table = {row["input"]: row["displacement"] for row in manifest["objects_table"]}
    assert table["bad.parquet"] is None and table["5.parquet"] == 0.9
