"""Preprocess raw estimator output + ground truth into a sharded Parquet window dataset.

    python pipelines/preprocess.py --config configs/X.yaml --input DIR_OR_S3 --output DIR_OR_S3
    ray job submit --working-dir . -- python pipelines/preprocess.py ...

With no arguments it preprocesses the bundled sample (data/sample) into outputs/demo/dataset.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from hanet.config import ConfigError, load_config
from hanet.preprocessing import PreprocessError, run_preprocess
from hanet.readers import ReadError
from hanet.runtime import DEMO_CONFIG, DEMO_OUTPUT, SAMPLE_DIR, init_ray, setup_logging
from hanet.storage import parse_location

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def preprocess(
    config: Annotated[Path, typer.Option(help="YAML config.")] = DEMO_CONFIG,
    input: Annotated[
        str, typer.Option("--input", help="Published layout root, or a folder/prefix of files.")
    ] = str(SAMPLE_DIR),
    output: Annotated[str, typer.Option(help="Dataset folder or s3:// prefix.")] = str(
        DEMO_OUTPUT / "dataset"
    ),
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override, e.g. data.dataset=jhmdb.")
    ] = None,
    on_error: Annotated[str, typer.Option(help="fail | skip (report bad sequences)")] = "fail",
    overwrite: Annotated[bool, typer.Option(help="Replace a dataset made differently.")] = False,
) -> dict:
    """Read, validate, window and write; prints the summary and returns the manifest."""
    setup_logging()
    try:
        cfg = load_config(config, set_ or [])
        init_ray()
        result = run_preprocess(
            cfg, parse_location(input), parse_location(output), on_error, overwrite
        )
    except (ConfigError, PreprocessError, ReadError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    manifest = result.manifest
    if result.skipped:
        typer.echo(f"{output}: up to date (same inputs and config); nothing written")
        return manifest
    frames = sum(s["frames"] for s in manifest["splits"].values())
    windows = sum(s["windows"] for s in manifest["splits"].values())
    for split, info in manifest["splits"].items():
        typer.echo(
            f"{split:>5}: {info['sequences']:6d} sequences {info['frames']:8d} frames "
            f"{info['windows']:8d} windows {len(info['files']):4d} shards"
        )
    if result.errors:
        typer.echo(f"skipped {len(result.errors)} bad sequence(s): see {output}/errors.json")
    typer.echo(
        f"wrote {output}: {frames} frames, {windows} windows in {result.seconds:.1f} s "
        f"({frames / max(result.seconds, 1e-9):.0f} frames/s)"
    )
    return manifest


if __name__ == "__main__":
    sys.exit(app())
