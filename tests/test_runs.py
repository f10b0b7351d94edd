"""hanet.runs: a run folder's metrics log, the console line per epoch and its follower."""

from __future__ import annotations

import json
import time
from pathlib import Path

from hanet.io.location import parse_location
from hanet.io.storage import write_text_atomic
from hanet.runs import METRICS_LOG, EpochFollower, epoch_line, read_metrics_log


def _log(run, records) -> None:
    write_text_atomic(run.join(METRICS_LOG), "".join(json.dumps(r) + "\n" for r in records))


def test_epoch_line_is_compact_and_names_the_metric() -> None:
    record = {
        "epoch": 2,
        "train_loss": 0.01234,
        "val_pixel_error": 8.7912,
        "val_input_pixel_error": 9.5612,
        "epoch_seconds": 4.21,
    }
    line = epoch_line(record, 12, "pixel_error")
    assert line == "epoch   3/12  train loss 0.0123  val pixel_error 8.791 (input 9.56)  4.2 s"
    assert "val" not in epoch_line({"epoch": 0, "train_loss": 1.0}, 1, "mpjpe")


def test_follower_shows_each_new_epoch_once_in_order(tmp_path: Path) -> None:
    run = parse_location(tmp_path / "run")
    _log(run, [{"epoch": 0, "train_loss": 1.0}])  # from before a resume: not shown again
    shown: list[int] = []
    with EpochFollower(run, lambda r: shown.append(r["epoch"]), every=0.05):
        _log(run, [{"epoch": 0}, {"epoch": 1}])
        time.sleep(0.3)
        _log(run, [{"epoch": 0}, {"epoch": 1}, {"epoch": 2}])
    assert shown == [1, 2]
    assert [r["epoch"] for r in read_metrics_log(run)] == [0, 1, 2]
    assert read_metrics_log(parse_location(tmp_path / "none")) == []
