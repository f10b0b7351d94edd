"""Evaluate a HANet checkpoint beside the classic filters and write the report.

    python pipelines/evaluate.py --checkpoint CKPT --data DIR_OR_S3 --output DIR_OR_S3 \
        [--sequence ID] [--set k=v ...]

--data is either a preprocessed dataset (manifest.json + sequences/{val,test}.parquet, from
pipelines/preprocess.py) or a raw published-layout root (groundtruth_poses/ + detected_poses/),
read with the checkpoint's data settings; validation sequences are then carved from train as
preprocessing does. The report (report.md, report.json, an error/acceleration plot and a
skeleton GIF of input vs refined vs ground truth for --sequence) holds input, HANet and each
classic filter with settings tuned on the validation sequences: PCK@0.05/0.1/0.2 for 2D,
MPJPE / PA-MPJPE / accel for 3D, and a per-sequence breakdown. --set refine.lookahead=k scores
HANet as it refines live, with a delay of k frames.

With no arguments it evaluates outputs/demo/run/model.pt on outputs/demo/dataset into
outputs/demo/report.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from defaults import DEMO_OUTPUT

from hanet.checkpoint import load_model
from hanet.cli import exit_on_user_error, setup_logging
from hanet.dataset import evaluation_sequences
from hanet.formats.common import ReadError
from hanet.io.location import parse_location
from hanet.records import effective_config
from hanet.report import evaluate_model, headline

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def evaluate(
    checkpoint: Annotated[str, typer.Option(help="HANet checkpoint (path or s3:// URI).")] = str(
        DEMO_OUTPUT / "run" / "model.pt"
    ),
    data: Annotated[
        str, typer.Option(help="Preprocessed dataset or published-layout root (path or s3://).")
    ] = str(DEMO_OUTPUT / "dataset"),
    output: Annotated[str, typer.Option(help="Report folder or s3:// prefix.")] = str(
        DEMO_OUTPUT / "report"
    ),
    sequence: Annotated[
        str | None, typer.Option(help="Test sequence id to plot (default: the first).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override data.* / refine.*, e.g. refine.stride_q=1."),
    ] = None,
    verbose: Annotated[bool, typer.Option(help="More detailed logs.")] = False,
) -> dict:
    """Score the checkpoint, the input and the classic filters; write and print the report."""
    setup_logging(verbose)
    with exit_on_user_error():
        net, stored = load_model(parse_location(checkpoint))
        cfg = effective_config(stored, list(set_ or []))
        test, val = evaluation_sequences(cfg, parse_location(data))
        if sequence is not None and sequence not in {seq.sequence_id for seq in test}:
            known = ", ".join(seq.sequence_id for seq in test[:5])
            raise ReadError(f"--sequence {sequence!r} is not a labelled test sequence ({known}, …)")
        report, written = evaluate_model(
            net, cfg, test, val, parse_location(output), plot_sequence=sequence
        )
    typer.echo(f"{len(test)} test sequences; classic filters tuned on {len(val)} validation ones")
    typer.echo(headline(report))
    for kind, uri in written.items():
        typer.echo(f"{kind}: {uri}")
    return {"table": report.table, "filter_params": report.filter_params, "written": written}


if __name__ == "__main__":
    sys.exit(app())
