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

from hanet.config import ConfigError, load_config
from hanet.runtime import DEMO_CONFIG, DEMO_OUTPUT, init_ray, setup_logging
from hanet.storage import exists, parse_location
from hanet.training import RUN_NAME, best_checkpoint, build_trainer
from hanet.workflow import evaluate_checkpoint, export_run, headline, load_split

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
) -> dict:
    """Train, pick the best checkpoint on validation data, export it, then test once."""
    setup_logging()
    overrides = list(set_ or [])
    if workers is not None:
        overrides.append(f"train.num_workers={workers}")
    if gpu:
        overrides.append("train.use_gpu=true")
    try:
        cfg = load_config(config, overrides)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    out = parse_location(resume or output)
    dataset = parse_location(data)
    if exists(out.join(RUN_NAME)) and not resume:
        typer.echo(
            f"error: {out.uri} already holds a run; pass --resume {out.uri} to continue it or "
            "choose another --output",
            err=True,
        )
        raise typer.Exit(2)
    init_ray()
    try:
        trainer = build_trainer(cfg, dataset, out)
    except (FileNotFoundError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    result = trainer.fit()
    checkpoint = best_checkpoint(result)
    if checkpoint is None:
        typer.echo("error: training finished without a checkpoint", err=True)
        raise typer.Exit(1)
    model = export_run(checkpoint, cfg, out)
    typer.echo(f"best checkpoint (validation) exported to {model.uri}")
    summary = {"model": model.uri, "run": out.uri}
    test = load_split(dataset, "test")
    if test:
        report, written = evaluate_checkpoint(model, test, load_split(dataset, "val"), out)
        typer.echo(f"test set ({len(test)} sequences), filters tuned on validation data:")
        typer.echo(headline(report))
        typer.echo(f"report: {written['markdown']}")
        summary["test"] = report.table
    return summary


if __name__ == "__main__":
    sys.exit(app())
