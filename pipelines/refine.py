"""Refine a corpus of pose-estimator outputs with a trained HANet on Ray Data.

    python pipelines/refine.py --checkpoint CKPT --input DIR_OR_S3 --output DIR_OR_S3 \
        [--workers N] [--gpu] [--set k=v ...] [--format parquet|same]
    ray job submit --working-dir . -- python pipelines/refine.py ...

Every sequence Parquet, published-layout detections npz and per-video keypoint JSON under
--input becomes one refined object under --output (same relative path; Parquet unless
--format same). A rerun skips the objects already done; objects that fail are listed in
OUTPUT/_errors.json while the rest go on. With --set refine.lookahead=k every frame is refined
causally, from the one window ending k frames later, exactly as pipelines/serve.py returns it.
With no arguments it refines the demo dataset's sequences (outputs/demo/dataset/sequences)
with the demo model (outputs/demo/run/model.pt).

Exit status: 0 when the run finished (failed objects are reported, not fatal), 1 when not a
single object could be refined, 2 for bad arguments.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from defaults import DEMO_OUTPUT

from hanet.batch_refine import run_refine
from hanet.cli import exit_on_user_error, init_ray, setup_logging
from hanet.formats.dispatch import OUTPUT_FORMATS
from hanet.io.location import parse_location
from hanet.records import RefineJobError, check_locations

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def refine(
    checkpoint: Annotated[str, typer.Option(help="HANet checkpoint (path or s3:// URI).")] = str(
        DEMO_OUTPUT / "run" / "model.pt"
    ),
    input: Annotated[
        str,
        typer.Option("--input", help="Folder or s3:// prefix of estimator outputs (or a file)."),
    ] = str(DEMO_OUTPUT / "dataset" / "sequences"),
    output: Annotated[
        str, typer.Option(help="Folder or s3:// prefix for the refined objects.")
    ] = str(DEMO_OUTPUT / "refined"),
    workers: Annotated[
        int | None, typer.Option(min=1, help="Refinement actors (default refine.concurrency).")
    ] = None,
    gpu: Annotated[bool, typer.Option("--gpu", help="One GPU per actor.")] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override, e.g. data.image_width=320 or refine.lookahead=2."),
    ] = None,
    format_: Annotated[
        str | None,
        typer.Option("--format", help="parquet | same (the input's own format)."),
    ] = None,
    verbose: Annotated[bool, typer.Option(help="Show Ray's own logs.")] = False,
) -> dict:
    """Refine every object under --input into --output; prints and returns the summary."""
    setup_logging(verbose)
    with exit_on_user_error():
        if format_ is not None and format_ not in OUTPUT_FORMATS:
            raise RefineJobError(f"--format must be one of {OUTPUT_FORMATS}, not {format_!r}")
        checkpoint_loc = parse_location(checkpoint)
        source, target = parse_location(input), parse_location(output)
        check_locations(source, target)  # before Ray starts: a wrong prefix fails at once
        init_ray(verbose=verbose)
        summary = run_refine(
            checkpoint_loc,
            source,
            target,
            workers=workers,
            gpu=gpu,
            overrides=list(set_ or []),
            output_format=format_,
        )
    typer.echo(summary.format())
    if summary.objects and len(summary.errors) == summary.objects:
        typer.echo("error: no object could be refined", err=True)
        raise typer.Exit(1)
    return summary.to_dict()


if __name__ == "__main__":
    sys.exit(app())
