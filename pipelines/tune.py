"""Hyper-parameter sweep on Ray Tune, each trial a Ray Train run, ASHA on validation error.

    python pipelines/tune.py --config configs/X.yaml --space configs/tune/Y.yaml \
        --data DIR_OR_S3 --output DIR_OR_S3 [--source RAW_DIR_OR_S3] [--set tune.num_samples=16]
    ray job submit --working-dir . -- python pipelines/tune.py ...

With no arguments it runs a tiny sweep (configs/tune/demo.yaml) of the demo configuration on the
preprocessed bundled sample (outputs/demo/dataset, made from data/sample when missing). The
output gets results.csv / results.md (one row per trial) and best/ (model.pt + config.yaml of
the best trial's best epoch). See hanet/tuning.py for the search-space format.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from defaults import DEMO_CONFIG, DEMO_OUTPUT, DEMO_SPACE, SAMPLE_DIR

from hanet.cli import exit_on_user_error, init_ray, setup_logging
from hanet.config import load_config
from hanet.io.location import parse_location
from hanet.training import SELECTION_METRIC
from hanet.tuning.space import load_space, sweep_config
from hanet.tuning.sweep import run_sweep

DEMO_DATA = DEMO_OUTPUT / "dataset"

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def tune(
    config: Annotated[Path, typer.Option(help="YAML config (the sweep's base).")] = DEMO_CONFIG,
    space: Annotated[Path, typer.Option(help="Search-space YAML.")] = DEMO_SPACE,
    data: Annotated[str, typer.Option(help="Preprocessed dataset folder or s3:// prefix.")] = str(
        DEMO_DATA
    ),
    output: Annotated[str, typer.Option(help="Sweep folder or s3:// prefix.")] = str(
        DEMO_OUTPUT / "tune"
    ),
    source: Annotated[
        str | None,
        typer.Option(help="Raw input, to preprocess a missing --data and other window shapes."),
    ] = None,
    gpu: Annotated[bool, typer.Option("--gpu", help="One GPU per Train worker.")] = False,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override, e.g. tune.num_samples=16.")
    ] = None,
    num_cpus: Annotated[
        int | None,
        typer.Option(
            help="Logical CPUs of a local Ray instance (default: the cores, at least 4, so "
            "fractional Train workers and Ray Data readers never starve each other)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a previous sweep in --output.")] = False,
    verbose: Annotated[bool, typer.Option(help="Show Ray's own logs.")] = False,
) -> dict:
    """Sweep, print the results table, export the best trial's config and checkpoint."""
    setup_logging(verbose)
    overrides = list(set_ or [])
    if gpu:
        overrides.append("train.use_gpu=true")
    with exit_on_user_error():
        search = load_space(space)
        cfg = sweep_config(load_config(config), search, overrides)
    if source is None and Path(data).resolve() == DEMO_DATA.resolve():
        source = str(SAMPLE_DIR)  # the demo makes its dataset on first use
    # Tune logs every metric name TensorBoard rejects (val_pck@0.05) at INFO: keep it quiet.
    logging.getLogger("tensorboardX").setLevel(logging.WARNING)
    with exit_on_user_error():
        init_ray(num_cpus or max(4, os.cpu_count() or 1), dashboard=True, verbose=verbose)
        result = run_sweep(
            cfg,
            search,
            parse_location(data),
            parse_location(output),
            source=parse_location(source) if source else None,
            overwrite=overwrite,
        )
    typer.echo(
        f"\n{len(result.rows)} trials, up to {result.concurrency} at once, "
        f"{result.seconds:.0f} s; best {SELECTION_METRIC} first:\n"
    )
    typer.echo(result.markdown)
    typer.echo(f"\nbest trial {result.best_trial}: {SELECTION_METRIC} {result.best_value:.4g}")
    typer.echo(f"best config: {result.best_config_file.uri}")
    typer.echo(f"best model:  {result.best_model.uri}")
    typer.echo(f"table:       {result.table_markdown.uri} and {result.table_csv.uri}")
    return {
        "best_trial": result.best_trial,
        "best_value": result.best_value,
        "model": result.best_model.uri,
        "config": result.best_config_file.uri,
        "table": result.table_csv.uri,
    }


if __name__ == "__main__":
    sys.exit(app())
