"""Preprocess raw estimator output + ground truth into a sharded Parquet window dataset.

    python pipelines/preprocess.py --config configs/X.yaml --input DIR_OR_S3 --output DIR_OR_S3
    ray job submit --working-dir . -- python pipelines/preprocess.py ...

With no arguments it preprocesses the bundled sample (data/sample) into outputs/demo/dataset.
Exit status: 0 done (or already up to date), 2 bad usage, bad input or a refused output.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from defaults import DEMO_CONFIG, DEMO_OUTPUT, SAMPLE_DIR

from hanet.cli import exit_on_user_error, init_ray, setup_logging
from hanet.config import ConfigError, load_config
from hanet.io.location import parse_location
from hanet.preprocessing import run_preprocess
from hanet.sources import sources_for

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def preprocess(
    config: Annotated[Path, typer.Option(help="YAML config.")] = DEMO_CONFIG,
    input: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            help="Folder holding groundtruth_poses/ and detected_poses/ (or its parent holding "
            "data/), or a folder/prefix of .npz/.json/.parquet files; local or s3://. Repeat "
            "to mix several inputs into one dataset (default: data.sources of the config, "
            "else the bundled sample).",
        ),
    ] = None,
    output: Annotated[str, typer.Option(help="Dataset folder or s3:// prefix.")] = str(
        DEMO_OUTPUT / "dataset"
    ),
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override, e.g. data.dataset=jhmdb.")
    ] = None,
    on_error: Annotated[
        str, typer.Option(help="fail: any bad input fails the run | skip: report bad ones.")
    ] = "fail",
    overwrite: Annotated[bool, typer.Option(help="Replace a dataset made differently.")] = False,
    cpus_per_task: Annotated[float, typer.Option(help="Ray CPUs per read/shard task.")] = 1.0,
    verbose: Annotated[bool, typer.Option(help="Show Ray's own logs.")] = False,
) -> dict:
    """Read, validate, window and write; prints the summary and returns the manifest."""
    setup_logging(verbose)
    with exit_on_user_error():
        if on_error not in ("fail", "skip"):
            raise ConfigError(f"--on-error must be 'fail' or 'skip', not {on_error!r}")
        cfg = load_config(config, set_ or [])
        inputs = [parse_location(i) for i in input or ([] if cfg.data.sources else [SAMPLE_DIR])]
        sources, target = sources_for(cfg, inputs), parse_location(output)
        init_ray(verbose=verbose)
        result = run_preprocess(cfg, sources, target, on_error, overwrite, cpus_per_task)
    manifest = result.manifest
    if result.skipped:
        typer.echo(f"{target.uri}: up to date (same inputs and config); nothing written")
        return manifest
    if len(manifest.get("sources", [])) > 1:
        for info in manifest["sources"]:
            counts = ", ".join(f"{k} {v['sequences']}" for k, v in info["splits"].items())
            typer.echo(f"input {info['input']}: {counts} sequences")
    for split, info in manifest["splits"].items():
        typer.echo(
            f"{split:>5}: {info['sequences']:6d} sequences {info['frames']:8d} frames "
            f"{info['windows']:8d} windows {len(info['files']):4d} shards"
        )
    if result.errors:
        typer.echo(
            f"skipped {len(result.errors)} bad input(s): see {target.join('errors.json').uri}",
            err=True,
        )
    if manifest.get("leaked_clip_count"):
        typer.echo(
            f"warning: {manifest['leaked_clip_count']} clip(s) in both train and test (leakage), "
            f"e.g. {manifest['leaked_clips'][0]}",
            err=True,
        )
    seconds = max(result.seconds, 1e-9)
    typer.echo(
        f"wrote {target.uri}: {result.frames} frames, {result.windows} windows in "
        f"{result.seconds:.1f} s ({result.frames / seconds:.0f} frames/s, "
        f"{result.windows / seconds:.0f} windows/s)"
    )
    return manifest


if __name__ == "__main__":
    sys.exit(app())
