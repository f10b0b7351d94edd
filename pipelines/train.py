"""Train HANet on Ray Train (DDP across workers; CPU gloo or GPU NCCL).

    python pipelines/train.py --config configs/X.yaml --data DIR_OR_S3 --output DIR_OR_S3
    ray job submit --working-dir . -- python pipelines/train.py ...

With no arguments it trains the demo configuration on the preprocessed bundled sample
(outputs/demo/dataset) with 2 CPU workers. The run folder gets model.pt + config.yaml (the
checkpoint chosen on validation data), metrics.csv, and the test report.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from defaults import DEMO_CONFIG, DEMO_OUTPUT

from hanet.checkpoint import load_model
from hanet.cli import exit_on_user_error, init_ray, setup_logging
from hanet.config import ConfigError, load_config
from hanet.dataset import load_split
from hanet.evaluation import primary_metric
from hanet.io.location import parse_location
from hanet.io.storage import exists
from hanet.report import evaluate_model, headline
from hanet.runs import EpochFollower, epoch_line, export_run, remove_orphan_checkpoints, resume_line
from hanet.training import RUN_NAME, best_checkpoint, build_trainer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="YAML config.")] = DEMO_CONFIG,
    data: Annotated[str, typer.Option(help="Preprocessed dataset folder or s3:// prefix.")] = str(
        DEMO_OUTPUT / "dataset"
    ),
    output: Annotated[str, typer.Option(help="Run folder or s3:// prefix.")] = str(
        DEMO_OUTPUT / "run"
    ),
    workers: Annotated[int | None, typer.Option(help="Ray Train workers.")] = None,
    gpu: Annotated[bool, typer.Option("--gpu", help="One GPU per worker, bf16 autocast.")] = False,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override, e.g. train.epochs=10.")
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="Continue the stopped run in this folder.")
    ] = None,
    verbose: Annotated[bool, typer.Option(help="Show Ray's own logs.")] = False,
) -> dict:
    """Train, pick the best checkpoint on validation data, export it, then test once."""
    setup_logging(verbose)
    overrides = list(set_ or [])
    if workers is not None:
        overrides.append(f"train.num_workers={workers}")
    if gpu:
        overrides.append("train.use_gpu=true")
    with exit_on_user_error():
        cfg = load_config(config, overrides)
        out = parse_location(resume or output)
        dataset = parse_location(data)
        started = exists(out.join(RUN_NAME))
        if started and not resume:
            raise ConfigError(
                f"{out.uri} already holds a run; pass --resume {out.uri} to continue it or "
                "choose another --output"
            )
        if resume and not started:
            raise ConfigError(f"--resume {out.uri}: no run there to continue")
        if resume:
            typer.echo(resume_line(out.join(RUN_NAME), cfg))
        init_ray(verbose=verbose)
        trainer = build_trainer(cfg, dataset, out)
        metric = primary_metric(cfg.data.representation)
        typer.echo(
            f"training {cfg.name} on {dataset.uri}: {cfg.train.epochs} epochs, "
            f"{cfg.train.num_workers} worker(s){' on GPU' if cfg.train.use_gpu else ''}"
        )
        with EpochFollower(out, lambda r: typer.echo(epoch_line(r, cfg.train.epochs, metric))):
            result = trainer.fit()
        remove_orphan_checkpoints(out.join(RUN_NAME))
        checkpoint = best_checkpoint(result)
        if checkpoint is None:
            typer.echo("error: training finished without a checkpoint", err=True)
            raise typer.Exit(1)
        model = export_run(checkpoint, cfg, out)
        typer.echo(f"best checkpoint (validation) exported to {model.uri}")
        summary = {"model": model.uri, "run": out.uri}
        test = load_split(dataset, "test")
        if test:
            net, stored = load_model(model)
            report, written = evaluate_model(net, stored, test, load_split(dataset, "val"), out)
            typer.echo(f"test set ({len(test)} sequences), filters tuned on validation data:")
            typer.echo(headline(report))
            typer.echo(f"report: {written['markdown']}")
            summary["test"] = report.table
    return summary


if __name__ == "__main__":
    sys.exit(app())
