"""hanet.runs: a run folder's metrics log, the console line per epoch and its follower, the
exported model file and Ray's unregistered checkpoint folders."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from posedata import TINY_MODEL
from ray.train import Checkpoint

from hanet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from hanet.config import ConfigError, from_dict
from hanet.io.location import parse_location
from hanet.io.storage import write_text_atomic
from hanet.model import HANet
from hanet.runs import (
    CHECKPOINT_FILE,
    METRICS_LOG,
    RAY_SNAPSHOT,
    EpochFollower,
    epoch_line,
    export_run,
    read_metrics_log,
    remove_orphan_checkpoints,
    resume_line,
)


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


def test_exported_model_holds_weights_and_config_but_no_optimizer(tmp_path: Path) -> None:
    cfg = from_dict(TINY_MODEL)
    model = HANet(cfg.model)
    optimizer = torch.optim.AdamW(model.parameters(), amsgrad=True)
    model(torch.randn(2, cfg.model.window_size, cfg.model.channels)).final.sum().backward()
    optimizer.step()
    folder = tmp_path / "ray_checkpoint"
    save_checkpoint(folder / CHECKPOINT_FILE, model, cfg, optimizer, epoch=2, metrics={"v": 1.0})
    run = parse_location(tmp_path / "run")
    _log(run, [{"epoch": 0, "v": 2.0}, {"epoch": 1, "v": 1.0}])

    exported = export_run(Checkpoint.from_directory(str(folder)), cfg, run)
    state = load_checkpoint(exported)
    assert "optimizer" not in state and (state["epoch"], state["metrics"]) == (2, {"v": 1.0})
    assert Path(exported.path).stat().st_size < 0.4 * (folder / CHECKPOINT_FILE).stat().st_size
    assert "optimizer" in load_checkpoint(folder / CHECKPOINT_FILE)  # training keeps it
    assert {p.name for p in Path(run.path).iterdir()} == {
        "model.pt",
        "config.yaml",
        METRICS_LOG,
        "metrics.csv",
    }


def _ray_folder(root: Path, registered: list[str], others: list[str]) -> Path:
    """A Ray Train run folder as a killed run leaves it: the checkpoints Ray registered in its
    snapshot, and ``others`` it never did (one complete, one an upload cut short)."""
    for name in registered + others:
        (root / name).mkdir(parents=True)
    for name in registered + others[:1]:
        (root / name / CHECKPOINT_FILE).write_bytes(b"weights")
    snapshot = {
        "checkpoint_results": [{"checkpoint_dir_name": name} for name in registered],
        "latest_checkpoint_result": {"checkpoint_dir_name": registered[-1]},
    }
    (root / RAY_SNAPSHOT).write_text(json.dumps(snapshot))
    (root / ".validate_storage_marker").write_text("")
    return root


def test_only_checkpoints_ray_registered_survive(tmp_path: Path) -> None:
    kept = ["checkpoint_2026-01-01_10-00-00.000001", "checkpoint_2026-01-01_10-00-09.000002"]
    orphans = ["checkpoint_2026-01-01_10-00-18.000003", "checkpoint_2026-01-01_10-00-27.000004"]
    folder = _ray_folder(tmp_path / "train", kept, orphans)
    assert remove_orphan_checkpoints(parse_location(folder)) == orphans
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*kept, RAY_SNAPSHOT, ".validate_storage_marker"]
    )
    assert remove_orphan_checkpoints(parse_location(folder)) == []


def test_nothing_is_removed_without_rays_snapshot(tmp_path: Path) -> None:
    folder = _ray_folder(tmp_path / "train", ["checkpoint_a"], ["checkpoint_b"])
    (folder / RAY_SNAPSHOT).unlink()
    assert remove_orphan_checkpoints(parse_location(folder)) == []
    assert (folder / "checkpoint_b" / CHECKPOINT_FILE).exists()
    assert remove_orphan_checkpoints(parse_location(tmp_path / "absent")) == []


def test_resume_names_the_epoch_of_rays_latest_checkpoint_and_checks_the_model(
    tmp_path: Path,
) -> None:
    cfg = from_dict(TINY_MODEL).replace(["train.epochs=5"])
    train = tmp_path / "run" / "train"
    folder = parse_location(train)
    assert resume_line(folder, cfg).endswith(
        "it stopped before its first checkpoint; starting at epoch 1"
    )
    name = "checkpoint_2026-01-01_10-00-00.000001"
    _ray_folder(train, [name], [])
    save_checkpoint(train / name / CHECKPOINT_FILE, HANet(cfg.model), cfg, epoch=2)
    # The metrics log may be ahead (a kill after the log line, before the checkpoint).
    _log(parse_location(tmp_path / "run"), [{"epoch": e} for e in range(4)])
    assert resume_line(folder, cfg) == f"resuming {tmp_path / 'run'} after epoch 3/5"

    with pytest.raises(ConfigError) as err:
        resume_line(folder, cfg.replace(["model.hidden_dim=32"]))
    assert str(err.value).startswith(
        f"--resume {tmp_path / 'run'}: the run trains model.hidden_dim=16, the config says 32"
    )
    data = (train / name / CHECKPOINT_FILE).read_bytes()
    weights = load_checkpoint(train / name / CHECKPOINT_FILE)["model"]
    raw = max(weights.values(), key=lambda t: t.numel()).numpy().tobytes()
    at = data.find(raw) + len(raw) // 2
    (train / name / CHECKPOINT_FILE).write_bytes(data[:at] + bytes(8) + data[at + 8 :])
    with pytest.raises(CheckpointError, match=f"{name}/checkpoint.pt: the weights do not match"):
        resume_line(folder, cfg)
