"""Training on Ray Train: the per-worker loop and ``build_trainer`` (shared with Tune).

The loop follows Ray's canonical order: unpack config -> dataset shard -> model ->
``prepare_model`` (DDP: gloo on CPU, NCCL on GPU) -> epochs of train / validate ->
``ray.train.report``. Rank 0 alone writes the self-describing checkpoint and the metrics log;
every rank reports. Model selection uses a validation split carved from train by clip, never
the test set.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import ray.data
import ray.train
import ray.train.torch
import torch
from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from hanet.checkpoint import load_checkpoint, save_checkpoint, unwrap_model
from hanet.config import Config, TrainConfig, from_dict
from hanet.data.arrow import WINDOW_BATCH_COLUMNS, window_batch
from hanet.data.augment import augment_batch, crop_batch, start_pad
from hanet.data.schema import Sequence
from hanet.data.windows import key_frame_mask
from hanet.dataset import DatasetError, check_shape, committed_manifest, load_split, window_files
from hanet.evaluation import evaluate_method, input_poses, primary_metric
from hanet.io.location import Location, parse_location
from hanet.io.storage import exists, read_text, write_text_atomic
from hanet.losses import LossOutput, causal_accel_l1, hanet_loss
from hanet.model import HANet
from hanet.refiner import Refiner
from hanet.runs import CHECKPOINT_FILE, METRICS_LOG

RUN_NAME = "train"
SELECTION_METRIC = "val_position_error"


# ----------------------------------------------------------------------------------------------
# Pure helpers


def lr_factor(step: int, train: TrainConfig, steps_per_epoch: int) -> float:
    """Learning-rate multiplier at optimiser step ``step`` (stepped every iteration).

    ``exponential``: ``lr_decay ** epoch`` (the review code's per-epoch decay).
    ``warmup_cosine``: linear warm-up from ``warmup_start_lr`` over ``warmup_epochs`` epochs,
    then cosine down to ``min_lr`` at the last epoch (the official code's schedule).
    """
    if train.schedule == "exponential":
        return train.lr_decay ** (step // max(1, steps_per_epoch))
    warmup = train.warmup_epochs * steps_per_epoch
    total = max(train.epochs * steps_per_epoch, warmup + 1)
    start, low = train.warmup_start_lr / train.lr, train.min_lr / train.lr
    if step < warmup:
        return start + (1.0 - start) * step / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * progress))


def batch_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: Config) -> LossOutput:
    """The configured loss of ``model`` on one batch of windows (:data:`WINDOW_BATCH_COLUMNS`).

    With ``train.lookahead_accel`` the windows run together with copies shifted one and two
    frames later (one forward pass of 3B), for :func:`~hanet.losses.causal_accel_l1`.
    """
    x, lookahead, consistency = batch["input"], cfg.train.lookahead, cfg.train.lookahead_accel
    position = None if lookahead is None else cfg.model.window_size - 1 - lookahead
    shifted = position is not None and consistency > 0
    if shifted:
        x = torch.cat([x, _shift_later(x, 1), _shift_later(x, 2)])
    output = model(x)
    final, refined = output.final.float(), output.refined.float()
    if shifted:
        finals = final.unflatten(0, (3, -1))
        final, refined = finals[0], refined[: len(finals[0])]
    loss = hanet_loss(
        final,
        refined,
        batch["target"],
        batch["key_mask"],
        batch["target_mask"],
        loss_lambda=cfg.train.loss_lambda,
        loss_w=cfg.train.loss_w,
        mutual=cfg.train.mutual,
        frame_valid=batch["frame_mask"],
        accel_weight=cfg.train.accel_weight,
        position=position,
        position_weight=cfg.train.loss_lambda * cfg.train.lookahead_weight,
    )
    if shifted:
        extra = consistency * causal_accel_l1(
            finals, batch["target"], batch["target_mask"], position
        )
        loss = loss._replace(total=loss.total + extra)
    return loss


def _shift_later(x: torch.Tensor, frames: int) -> torch.Tensor:
    """``x [B, T, C]`` moved ``frames`` later in its window, its first frame repeated in front
    (as a stream's first windows are padded): the window that ends ``frames`` earlier."""
    return torch.cat([x[:, :1].expand(-1, frames, -1), x[:, :-frames]], dim=1)


def validation_metrics(model: torch.nn.Module, cfg: Config, sequences: list[Sequence]) -> dict:
    """Input vs HANet metrics on whole validation sequences (every frame, merged windows)."""
    if not sequences:
        return {}
    net = unwrap_model(model)
    was_training = net.training
    refiner = Refiner(net, cfg, device=next(net.parameters()).device)
    refined = {s.sequence_id: r.pred for s, r in zip(sequences, refiner.refine_many(sequences))}
    net.train(was_training)
    ours, _ = evaluate_method(sequences, lambda s: refined[s.sequence_id])
    base, _ = evaluate_method(sequences, input_poses)
    metrics = {f"val_{k}": v for k, v in ours.items()}
    metrics.update({f"val_input_{k}": v for k, v in base.items()})
    metrics[SELECTION_METRIC] = ours[primary_metric(cfg.data.representation)]
    return metrics


def training_batch(
    batch: dict[str, np.ndarray], cfg: Config, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Stored training windows as the model trains on them: augmented (when configured), cut
    to the model's window, some start-padded for causal training (``train.lookahead_pad``),
    with the model's key-frame pattern."""
    size = cfg.model.window_size
    if cfg.augment.enabled:
        data = cfg.data
        batch = augment_batch(
            batch,
            size,
            data.joint_layout,
            data.representation,
            data.normalisation,
            cfg.augment,
            rng,
        )
    else:
        batch = crop_batch(batch, size)
    if cfg.train.lookahead is not None and cfg.train.lookahead_pad > 0:
        batch = start_pad(batch, cfg.train.lookahead_pad, cfg.train.lookahead, rng)
    keys = key_frame_mask(size, cfg.model.interval)
    return {**batch, "key_mask": np.broadcast_to(keys, batch["frame_mask"].shape)}


def train_batches(
    shard: Any, cfg: Config, epoch: int, rank: int, world: int, device: torch.device
) -> Iterator[dict[str, torch.Tensor]]:
    """This worker's training batches for one epoch, shuffled and augmented from the seed,
    the epoch and the rank (reruns draw the same augmentation), as tensors on ``device``."""
    rng = np.random.default_rng([cfg.train.seed, epoch, rank])
    for batch in shard.iter_batches(
        batch_size=cfg.train.batch_size,
        batch_format="numpy",
        local_shuffle_buffer_size=max(4 * cfg.train.batch_size, 256),
        local_shuffle_seed=cfg.train.seed + epoch * 997 + rank,
        drop_last=world > 1,
    ):
        ready = training_batch(batch, cfg, rng)
        yield {
            name: torch.from_numpy(np.ascontiguousarray(ready[name])).to(device)
            for name in ("input", "target", "target_mask", "frame_mask", "key_mask")
        }


# ----------------------------------------------------------------------------------------------
# The per-worker loop


def _append_metrics(log_location: Location, record: dict[str, Any]) -> None:
    """Rank 0 keeps a JSON-lines log in the run folder; a resumed run rewrites the epochs it
    repeats instead of duplicating them."""
    lines = []
    if exists(log_location):
        for line in read_text(log_location).splitlines():
            if line.strip() and json.loads(line).get("epoch", -1) < record["epoch"]:
                lines.append(line)
    lines.append(json.dumps(record))
    write_text_atomic(log_location, "\n".join(lines) + "\n")


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: epochs of DDP training; rank 0 validates, logs and checkpoints."""
    # [1] Unpack the config.
    cfg = from_dict(loop_config["config"])
    dataset: Location = loop_config["dataset"]
    output: Location = loop_config["output"]
    steps_per_epoch: int = loop_config["steps_per_epoch"]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.manual_seed(cfg.train.seed + rank)
    device = ray.train.torch.get_device()
    use_amp = cfg.train.amp and device.type == "cuda"

    # [2] Model, optimiser, schedule; resume from the latest checkpoint if there is one.
    model = HANet(cfg.model)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.train.lr,
        weight_decay=cfg.train.weight_decay,
        amsgrad=cfg.train.amsgrad,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, cfg.train, steps_per_epoch)
    )
    start_epoch = 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = load_checkpoint(Path(folder) / CHECKPOINT_FILE)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"]) + 1
    # The model's buffers are constant masks and position tables: nothing to broadcast.
    model = ray.train.torch.prepare_model(
        model, parallel_strategy_kwargs={"broadcast_buffers": False}
    )

    # [3] Data: this worker's shard of train; rank 0 validates on the whole val split.
    train_shard = ray.train.get_dataset_shard("train")
    val_data = ray.train.get_dataset_shard("val") if rank == 0 and loop_config["has_val"] else None
    val_sequences: list[Sequence] = load_split(dataset, "val") if rank == 0 else []

    for epoch in range(start_epoch, cfg.train.epochs):
        began = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for step, batch in enumerate(train_batches(train_shard, cfg, epoch, rank, world, device)):
            if step >= steps_per_epoch:
                break
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = batch_loss(model, batch, cfg).total
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
            count += 1
        metrics: dict[str, Any] = {
            "epoch": epoch,
            # Where this worker group began: > 0 after a restart or resume from a checkpoint.
            "start_epoch": start_epoch,
            "train_loss": total / max(count, 1),
            "train_steps": count,
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_seconds": time.perf_counter() - began,
        }
        if rank == 0:
            # Rank 0 validates alone, so it must use the bare module: a DDP forward is a
            # collective the other ranks would never join.
            net = unwrap_model(model).eval()
            if val_data is not None:
                with torch.inference_mode():
                    losses = [
                        float(batch_loss(net, b, cfg).total)
                        for b in val_data.iter_torch_batches(batch_size=256, device=device)
                    ]
                metrics["val_loss"] = float(np.mean(losses)) if losses else float("nan")
            metrics.update(validation_metrics(net, cfg, val_sequences))
            metrics.setdefault(SELECTION_METRIC, metrics.get("val_loss", metrics["train_loss"]))
            _append_metrics(output.join(METRICS_LOG), metrics)
            with tempfile.TemporaryDirectory() as folder:
                save_checkpoint(
                    parse_location(str(Path(folder) / CHECKPOINT_FILE)),
                    model,
                    cfg,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    epoch=epoch,
                    metrics=metrics,
                )
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
        else:
            metrics.setdefault(SELECTION_METRIC, float("nan"))
            ray.train.report(metrics)


# ----------------------------------------------------------------------------------------------
# The driver side


def read_window_dataset(dataset: Location, split: str):
    """A split of a committed window dataset as a Ray Dataset of fixed-shape arrays."""
    files = window_files(dataset, split)
    if not files:
        return None
    read = ray.data.read_parquet(
        [f.path for f in files], filesystem=dataset.filesystem()
    ).select_columns(["window_size", *WINDOW_BATCH_COLUMNS])
    return read.map_batches(window_batch, batch_format="pyarrow")


def steps_per_epoch(cfg: Config, train_windows: int) -> int:
    per_worker = train_windows // cfg.train.num_workers
    steps = max(1, per_worker // cfg.train.batch_size)
    if cfg.train.max_steps_per_epoch:
        steps = min(steps, cfg.train.max_steps_per_epoch)
    return steps


def build_trainer(
    cfg: Config,
    dataset: Location,
    output: Location,
    name: str = RUN_NAME,
    callbacks: list | None = None,
) -> TorchTrainer:
    """A ``TorchTrainer`` for ``cfg`` on a preprocessed dataset, checkpointing under
    ``output/name`` (local folder or S3). Rerunning with the same output and name resumes.

    Raises:
        DatasetError: no complete dataset, windows of another shape, or no train split.
    """
    manifest = committed_manifest(dataset)
    check_shape(dataset, manifest, cfg)
    train_info = manifest["splits"].get("train")
    if not train_info:
        raise DatasetError(f"{dataset.uri}: no train split")
    datasets = {"train": read_window_dataset(dataset, "train")}
    val = read_window_dataset(dataset, "val") if "val" in manifest["splits"] else None
    if val is not None:
        datasets["val"] = val
    if cfg.train.materialize:
        datasets = {key: ds.materialize() for key, ds in datasets.items()}
    resources = {"CPU": cfg.train.cpus_per_worker}
    if cfg.train.use_gpu:
        resources["GPU"] = 1
    loop_config = {
        "config": cfg.to_dict(),
        "dataset": dataset,
        "output": output,
        "steps_per_epoch": steps_per_epoch(cfg, train_info["windows"]),
        "has_val": val is not None,
    }
    run_config = RunConfig(
        name=name,
        storage_path=output.path,
        storage_filesystem=output.filesystem() if output.scheme == "s3" else None,
        checkpoint_config=CheckpointConfig(
            num_to_keep=cfg.train.keep_checkpoints,
            checkpoint_score_attribute=SELECTION_METRIC,
            checkpoint_score_order="min",
        ),
        failure_config=FailureConfig(max_failures=cfg.train.max_failures),
        callbacks=callbacks,
    )
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(
            num_workers=cfg.train.num_workers,
            use_gpu=cfg.train.use_gpu,
            resources_per_worker=resources,
        ),
        run_config=run_config,
        datasets=datasets,
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )


def best_checkpoint(result) -> Any:
    """The kept checkpoint with the lowest validation error (the last one if none scored)."""
    scored = [
        (metrics.get(SELECTION_METRIC, float("inf")), checkpoint)
        for checkpoint, metrics in (result.best_checkpoints or [])
    ]
    scored = [(v if v == v else float("inf"), c) for v, c in scored]  # NaN sorts last
    if scored:
        return min(scored, key=lambda vc: vc[0])[1]
    return result.checkpoint
