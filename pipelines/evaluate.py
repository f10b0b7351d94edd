"""Evaluate a HANet checkpoint beside the classic filters and write the report.

    python pipelines/evaluate.py --checkpoint CKPT --data DIR_OR_S3 --output DIR_OR_S3 \
        [--sequence ID] [--set k=v ...]

--data is either a preprocessed dataset (manifest.json + sequences/{val,test}.parquet, from
pipelines/preprocess.py) or a raw published-layout root (groundtruth_poses/ + detected_poses/),
read with the checkpoint's data settings; validation sequences are then carved from train as
preprocessing does. The report (report.md, report.json, an error/acceleration plot and a
skeleton GIF of input vs refined vs ground truth for --sequence) holds input, HANet and each
classic filter with settings tuned on the validation sequences: PCK@0.05/0.1/0.2 for 2D,
MPJPE / PA-MPJPE / accel for 3D, and a per-sequence breakdown.

With no arguments it evaluates outputs/demo/run/model.pt on outputs/demo/dataset into
outputs/demo/report.
"""

from __future__ import annotations

import io
import logging
import sys
from typing import Annotated

import typer

from hanet.batch_refine import RefineJobError, effective_config
from hanet.checkpoint import CheckpointError, load_model
from hanet.config import Config
from hanet.dataset import assign_split
from hanet.readers import (
    ReadError,
    find_published_pairs,
    read_published_pair,
    read_sequence_parquet,
)
from hanet.runtime import DEMO_OUTPUT, setup_logging
from hanet.schema import Sequence
from hanet.storage import Location, exists, is_file, parse_location, read_bytes
from hanet.workflow import evaluate_model, headline, load_split

log = logging.getLogger("evaluate")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def load_evaluation_data(cfg: Config, data: Location) -> tuple[list[Sequence], list[Sequence]]:
    """``(test, validation)`` sequences from a preprocessed dataset, a published-layout root or
    one sequence-Parquet file (then everything is test data and there is no validation split).

    Raises:
        ReadError: Nothing readable, or no labelled test sequence.
    """
    if is_file(data):
        test, val = read_sequence_parquet(data), []
    elif exists(data.join("manifest.json")) or exists(data.join("sequences")):
        test, val = load_split(data, "test"), load_split(data, "val")
    else:
        test, val = _read_published(cfg, data)
    test = [seq for seq in test if seq.gt is not None]
    val = [seq for seq in val if seq.gt is not None]
    if not test:
        raise ReadError(f"{data.uri}: no test sequence with ground truth")
    if not val:
        log.warning(
            "%s: no validation sequences; the classic filters are tuned on the test sequences",
            data.uri,
        )
    return test, val


def _read_published(cfg: Config, root: Location) -> tuple[list[Sequence], list[Sequence]]:
    data = cfg.data
    test: list[Sequence] = []
    val: list[Sequence] = []
    errors: list[str] = []
    for pair in find_published_pairs(root, data.dataset, data.estimator):
        sequences = read_published_pair(
            pair, data.layout, data.representation, data.fps, errors=errors
        )
        for seq in sequences:
            split = seq.split = assign_split(seq, data.val_fraction, data.seed)
            if split == "test":
                test.append(seq)
            elif split == "val":
                val.append(seq)
    for message in errors:
        log.warning("skipped: %s", message)
    return test, val


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
) -> dict:
    """Score the checkpoint, the input and the classic filters; write and print the report."""
    setup_logging()
    try:
        net, stored = load_model(io.BytesIO(read_bytes(parse_location(checkpoint))))
        cfg = effective_config(stored, list(set_ or []))
        test, val = load_evaluation_data(cfg, parse_location(data))
        if sequence is not None and sequence not in {seq.sequence_id for seq in test}:
            known = ", ".join(seq.sequence_id for seq in test[:5])
            raise ReadError(f"--sequence {sequence!r} is not a labelled test sequence ({known}, …)")
        report, written = evaluate_model(
            net, cfg, test, val, parse_location(output), plot_sequence=sequence
        )
    except (CheckpointError, RefineJobError, ReadError, FileNotFoundError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{len(test)} test sequences; classic filters tuned on {len(val)} validation ones")
    typer.echo(headline(report))
    for kind, uri in written.items():
        typer.echo(f"{kind}: {uri}")
    return {"table": report.table, "filter_params": report.filter_params, "written": written}


if __name__ == "__main__":
    sys.exit(app())
