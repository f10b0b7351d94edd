"""Export a trained HANet's window model to ONNX or TorchScript.

    python pipelines/export.py --checkpoint CKPT --output model.onnx [--format onnx|torchscript] \
        [--set refine.lookahead=k]

The file holds the model on normalised windows with a dynamic batch axis: input ``windows``
(B, T, J*D) in model units, output ``poses`` (B, T, J*D), the final poses in the same units.
``<output>.json`` beside it says how to get there and back (the normalisation, gap filling,
padding, and for live use the window position to read for a look-ahead of k frames). With no
arguments it exports the demo model to outputs/demo/export/model.onnx.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from defaults import DEMO_OUTPUT

from hanet.checkpoint import load_model
from hanet.cli import exit_on_user_error, setup_logging
from hanet.export import FORMATS, export_model
from hanet.io.location import parse_location
from hanet.records import RefineJobError, effective_config

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def export(
    checkpoint: Annotated[str, typer.Option(help="HANet checkpoint (path or s3:// URI).")] = str(
        DEMO_OUTPUT / "run" / "model.pt"
    ),
    output: Annotated[Path, typer.Option(help="The model file to write (local).")] = (
        DEMO_OUTPUT / "export" / "model.onnx"
    ),
    format_: Annotated[str, typer.Option("--format", help="onnx | torchscript.")] = "onnx",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override data.* / refine.*, e.g. refine.lookahead=2."),
    ] = None,
    verbose: Annotated[bool, typer.Option(help="More detailed logs.")] = False,
) -> dict:
    """Write the model file and its JSON spec; prints and returns both paths."""
    setup_logging(verbose)
    with exit_on_user_error():
        if format_ not in FORMATS:
            raise RefineJobError(f"--format must be one of {FORMATS}, not {format_!r}")
        model, stored = load_model(parse_location(checkpoint))
        config = effective_config(stored, list(set_ or []))
        written, spec = export_model(model, config, output, format_)
    typer.echo(f"{format_}: {written}\nspec: {spec}")
    return {"model": str(written), "spec": str(spec)}


if __name__ == "__main__":
    sys.exit(app())
