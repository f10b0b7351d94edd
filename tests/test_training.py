"""Ray Train: DDP on 2 CPU workers, checkpoints, fault tolerance, resume, S3 storage."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from posedata import DEMO, pipeline
from rayprocs import live_actors

from hanet.checkpoint import load_checkpoint, load_model
from hanet.config import TrainConfig, load_config
from hanet.dataset import DatasetError, load_manifest, load_split
from hanet.io.location import parse_location
from hanet.io.storage import copy_file, exists, list_files, read_bytes, read_text
from hanet.preprocessing import run_preprocess
from hanet.runs import CHECKPOINT_FILE, RAY_SNAPSHOT, export_run
from hanet.training import RUN_NAME, best_checkpoint, build_trainer, lr_factor, validation_metrics

TINY = [
    "model.interval=2",
    "model.num_intervals=2",
    "model.hidden_dim=16",
    "model.num_stages=2",
    "model.dropout=0.0",
    "data.train_stride=3",
    "data.val_fraction=0.2",
    "train.batch_size=16",
    "train.lr=0.003",
    "train.schedule=exponential",
    "train.lr_decay=0.9",
    "train.num_workers=2",
    "train.cpus_per_worker=0.5",
    "train.max_steps_per_epoch=6",
]


def test_exponential_schedule_decays_once_per_epoch():
    train = TrainConfig(schedule="exponential", lr_decay=0.5)
    assert [lr_factor(s, train, steps_per_epoch=3) for s in range(7)] == [
        1,
        1,
        1,
        0.5,
        0.5,
        0.5,
        0.25,
    ]


def test_warmup_cosine_schedule():
    train = TrainConfig(
        schedule="warmup_cosine",
        lr=1e-3,
        warmup_epochs=2,
        warmup_start_lr=1e-6,
        min_lr=1e-5,
        epochs=10,
    )
    steps = 5
    assert lr_factor(0, train, steps) == pytest.approx(1e-3)  # 1e-6 / 1e-3
    assert lr_factor(2 * steps, train, steps) == pytest.approx(1.0)
    assert lr_factor(10 * steps, train, steps) == pytest.approx(1e-2)  # min_lr / lr
    values = [lr_factor(s, train, steps) for s in range(2 * steps, 10 * steps)]
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.fixture(scope="module")
def tiny_dataset(ray_session, sample_dir, tmp_path_factory):
    cfg = load_config("configs/demo_2D.yaml", TINY)
    out = parse_location(str(tmp_path_factory.mktemp("train") / "dataset"))
    run_preprocess(cfg, parse_location(str(sample_dir)), out)
    return cfg, out


class WorkerKiller(threading.Thread):
    """Kills one live Ray Train worker process with SIGKILL once Ray has registered the
    checkpoint of ``after_epoch`` (workers found through Ray's state API, as an operator would).
    A checkpoint folder alone is not enough: Ray restarts from what it registered."""

    def __init__(self, output, after_epoch: int) -> None:
        super().__init__(daemon=True)
        self.output, self.after_epoch = output, after_epoch
        self.killed: int | None = None
        self.stop = threading.Event()

    def _ready(self) -> bool:
        snapshot = Path(self.output.path) / RUN_NAME / RAY_SNAPSHOT
        try:
            latest = json.loads(snapshot.read_text()).get("latest_checkpoint_result") or {}
        except (OSError, ValueError):  # not yet written, or being replaced
            return False
        return latest.get("metrics", {}).get("epoch", -1) >= self.after_epoch

    def run(self) -> None:
        # The workers' processes first (the state API can be slow on a loaded machine), then
        # the kill the moment the epoch is checkpointed.
        pids: list[int] = []
        while len(pids) < 2 and not self.stop.wait(0.2):
            pids = sorted(
                int(w["pid"])
                for w in live_actors("RayTrainWorker")
                if w["class_name"] == "RayTrainWorker"
            )
        while not self.stop.wait(0.05):
            if self._ready():
                os.kill(pids[-1], signal.SIGKILL)  # any worker: the group restarts
                self.killed = pids[-1]
                return

    def __enter__(self) -> WorkerKiller:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()


def _metrics(output) -> list[dict]:
    text = read_text(output.join("metrics.jsonl"))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.chaos
def test_two_workers_learn_survive_a_lost_worker_and_checkpoint_round_trips(tiny_dataset, tmp_path):
    cfg, dataset = tiny_dataset
    cfg = cfg.replace(["train.epochs=3", "train.max_failures=1"])
    output = parse_location(str(tmp_path / "run"))
    # A real worker process is killed (SIGKILL) once epoch 0 is checkpointed: Ray must restart
    # the worker group from that checkpoint and finish.
    trainer = build_trainer(cfg, dataset, output)
    with WorkerKiller(output, after_epoch=0) as killer:
        result = trainer.fit()
    assert killer.killed, "no training worker was killed"
    records = _metrics(output)
    assert [r["epoch"] for r in records] == [0, 1, 2]  # each epoch once, despite the restart
    # The restarted group began from the last checkpoint, not from scratch.
    assert records[0]["start_epoch"] == 0 and records[-1]["start_epoch"] >= 1
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert all(r["train_steps"] == 6 for r in records)

    # The checkpoint restores the exact model that produced its validation metrics.
    checkpoint = best_checkpoint(result)
    model_location = export_run(checkpoint, cfg, output)
    state = load_checkpoint(io.BytesIO(read_bytes(model_location)))
    model, loaded_cfg = load_model(io.BytesIO(read_bytes(model_location)))
    assert loaded_cfg == cfg
    again = validation_metrics(model, loaded_cfg, load_split(dataset, "val"))
    assert again["val_position_error"] == pytest.approx(
        state["metrics"]["val_position_error"], rel=1e-5
    )
    # Checkpoints are kept by validation score, so the best epoch's is always among them.
    assert state["metrics"]["val_position_error"] == min(r["val_position_error"] for r in records)
    assert exists(output.join("metrics.csv"))


@pytest.mark.ray
@pytest.mark.s3
@pytest.mark.slow
def test_checkpoints_on_s3_and_a_resume_continues_and_cleans_up(tiny_dataset, s3_env, capsys):
    cfg, dataset = tiny_dataset
    bucket = s3_env.make_bucket("hanet-train")
    output = parse_location(f"s3://{bucket}/runs/{uuid.uuid4().hex[:8]}")
    build_trainer(cfg.replace(["train.epochs=1", "train.num_workers=1"]), dataset, output).fit()
    assert [r["epoch"] for r in _metrics(output)] == [0]
    registered = [loc for loc in list_files(output.join(RUN_NAME)) if loc.name == CHECKPOINT_FILE]
    assert len(registered) == 1
    # What a run killed while saving its next checkpoint leaves: a folder Ray never registered.
    orphan = output.join(RUN_NAME, "checkpoint_2099-01-01_00-00-00.000000")
    copy_file(registered[0], orphan.join(CHECKPOINT_FILE))

    # The pipeline, as `train.py --resume RUN` runs it, with one more epoch.
    summary = pipeline("train").train(
        config=Path(DEMO),
        data=dataset.uri,
        set_=[*TINY, "train.epochs=2", "train.num_workers=1"],
        resume=output.uri,
    )
    printed = capsys.readouterr().out
    assert f"resuming {output.uri} after epoch 1/2" in printed
    records = _metrics(output)
    assert [(r["epoch"], r["start_epoch"]) for r in records] == [(0, 0), (1, 1)]
    assert not exists(orphan)
    state = load_checkpoint(parse_location(summary["model"]))
    assert "optimizer" not in state and "scheduler" not in state  # weights and config only
    model, _ = load_model(parse_location(summary["model"]))
    windows = np.zeros((1, cfg.model.window_size, cfg.model.channels), np.float32)
    assert torch.isfinite(model(torch.from_numpy(windows)).final).all()


@pytest.mark.ray
@pytest.mark.slow
def test_augmented_training_reads_longer_windows(ray_session, sample_dir, tmp_path):
    """Time augmentation needs longer stored training windows: preprocessing makes them, the
    loop augments and cuts them every epoch, and a dataset without them is refused."""
    augment = ["augment.speed_min=0.8", "augment.speed_max=1.5", "augment.mirror=0.5"]
    cfg = load_config(
        "configs/demo_2D.yaml",
        [*TINY, "train.num_workers=1", "train.epochs=2", "data.normalisation=body", *augment],
    )
    dataset = parse_location(tmp_path / "dataset")
    run_preprocess(cfg, parse_location(str(sample_dir)), dataset)
    manifest = load_manifest(dataset)
    assert manifest["window_size"] == 5 and manifest["train_window_size"] == 7
    output = parse_location(tmp_path / "run")
    build_trainer(cfg, dataset, output).fit()
    records = _metrics(output)
    assert [r["epoch"] for r in records] == [0, 1]
    assert all(
        np.isfinite(r["train_loss"]) and np.isfinite(r["val_position_error"]) for r in records
    )
    faster = cfg.replace(["augment.speed_max=2.0"])
    with pytest.raises(DatasetError, match=r"augment.speed_max=2.0 needs 9"):
        build_trainer(faster, dataset, parse_location(tmp_path / "run2"))


def test_resume_of_something_that_is_not_a_run_is_an_error(tmp_path, capsys) -> None:
    (tmp_path / "dataset").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        pipeline("train").train(config=Path(DEMO), resume=str(tmp_path / "dataset"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == f"error: --resume {tmp_path / 'dataset'}: no run there to continue\n"


def test_causal_training_terms() -> None:
    import torch

    from hanet.losses import causal_accel_l1
    from hanet.model import HANet
    from hanet.training import batch_loss

    cfg = load_config("configs/demo_2D.yaml", TINY)
    torch.manual_seed(0)
    model = HANet(cfg.model).eval()
    size, channels = cfg.model.window_size, cfg.model.channels
    x = torch.rand(4, size, channels)
    batch = {
        "input": x,
        "target": x + 0.01 * torch.randn_like(x),
        "target_mask": torch.ones_like(x, dtype=torch.bool),
        "frame_mask": torch.ones(4, size, dtype=torch.bool),
        "key_mask": torch.ones(4, size, dtype=torch.bool),
    }
    base = batch_loss(model, batch, cfg)
    causal = batch_loss(model, batch, cfg.replace({"train.lookahead": 1}))
    assert base.position_l1 == 0 and causal.position_l1 > 0 and causal.total > base.total
    smooth = batch_loss(
        model, batch, cfg.replace({"train.lookahead": 1, "train.lookahead_accel": 2.0})
    )
    # The same loss plus the causal acceleration of the window and its copies one and two
    # frames later (their outputs at position T-2 are frames T-2, T-3, T-4).
    later = [torch.cat([x[:, :1].expand(-1, s, -1), x[:, :-s]], dim=1) for s in (1, 2)]
    assert torch.equal(later[0][:, size - 2], x[:, size - 3])
    finals = torch.stack([model(w).final for w in (x, *later)])
    extra = 2.0 * causal_accel_l1(finals, batch["target"], batch["target_mask"], size - 2)
    assert extra > 0
    assert smooth.total.item() == pytest.approx((causal.total + extra).item(), rel=1e-5)
