"""hanet.refine_summary: the printed summary and the run files say what was left out, retried
and suspicious, besides what was written."""

from __future__ import annotations

import json
from pathlib import Path

from posedata import TINY_MODEL

from hanet.config import from_dict
from hanet.io.location import parse_location
from hanet.records import ERRORS_FILE, MANIFEST_FILE
from hanet.refine_summary import summarise, write_run_files


def _row(rel: str, status: str, **extra) -> dict:
    row = {"input": rel, "output": rel, "status": status, "sequences": 1, "frames": 10}
    row.update({"seconds": 0.1, "error": "", "replaced": "", "retries": 0, "warning": ""})
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
