"""The window model as a file other runtimes load: ONNX or TorchScript, plus what it expects.

The exported graph is HANet's forward pass on normalised windows with a dynamic batch axis:
input ``windows (B, T, J*D)`` in model units, output ``poses (B, T, J*D)`` (the final poses)
in the same units. Everything around it (gap filling, the per-window map to model units and
back, which frame to read) is described in a JSON file written next to it, ``<file>.json``,
so a C++ or browser client can do what :class:`hanet.streaming.StreamRefiner` does.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from hanet.config import Config
from hanet.model import HANet
from hanet.streaming import live_lookahead

__all__ = ["FORMATS", "FinalPoses", "export_model", "export_spec"]

FORMATS = ("onnx", "torchscript")
INPUT, OUTPUT = "windows", "poses"


class FinalPoses(nn.Module):
    """HANet returning its final poses only (a plain tensor, as exporters want).

    Shape:
        Input: ``(B, T, C)``; output ``(B, T, C)``.
    """

    def __init__(self, model: HANet) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.model(windows).final


def export_spec(config: Config) -> dict[str, Any]:
    """What the exported model expects and returns, as plain JSON."""
    model, data = config.model, config.data
    layout = data.joint_layout
    size, lookahead = model.window_size, live_lookahead(config)
    if data.representation == "smpl":
        units = "6D rotations as they are (no map); outputs re-orthonormalised"
    elif data.normalisation == "body":
        units = (
            "per window: offset = mean over the window's real frames of the mean of the root "
            "joints; scale = median over its real frames of max over axes of (max - min) over "
            "joints; units = (x - offset) / scale"
        )
    elif data.representation == "2D":
        units = "x / image width, y / image height (no offset)"
    else:
        units = "per frame: minus the mean of the root joints of that frame (metres)"
    return {
        "format": "hanet-window-model",
        "input": {"name": INPUT, "shape": ["batch", size, model.channels], "dtype": "float32"},
        "output": {"name": OUTPUT, "shape": ["batch", size, model.channels], "dtype": "float32"},
        "window_size": size,
        "key_frame_interval": model.interval,
        "num_joints": model.num_joints,
        "joint_dim": model.joint_dim,
        "channel_order": "joint-major: [j0 axis0, j0 axis1, ..., j1 axis0, ...]",
        "representation": data.representation,
        "joints": list(layout.joints),
        "root_joints": list(layout.roots) or list(layout.joints),
        "normalisation": data.normalisation,
        "image_size": list(data.image_size) if data.image_size else None,
        "units": units,
        "padding": "frames before a stream's first are copies of its first frame (not real)",
        "missing_joints": (
            "filled within the window: linear in time, held at its ends; a joint absent from "
            "the whole window takes the mean of the frame's other joints"
        ),
        "lookahead": lookahead,
        "output_position": size - 1 - lookahead,
        "causal_use": (
            f"for frame t, run the window of frames t+{lookahead}-{size - 1} .. t+{lookahead} "
            f"and read position {size - 1 - lookahead}"
        ),
    }


def export_model(
    model: HANet,
    config: Config,
    output: Path,
    fmt: Literal["onnx", "torchscript"] = "onnx",
) -> tuple[Path, Path]:
    """Write the window model to ``output`` and its spec to ``output`` + ``.json``.

    Returns:
        The model file and the spec file.

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    net = FinalPoses(model.cpu().float()).eval()
    example = torch.zeros(2, config.model.window_size, config.model.channels)
    output.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode(False), torch.no_grad():
        if fmt == "onnx":
            torch.onnx.export(
                net,
                (example,),
                str(output),
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                dynamo=True,
                external_data=False,
            )
        else:
            with warnings.catch_warnings():
                # The input-shape check is traced as a constant: the window size is fixed anyway.
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                torch.jit.trace(net, example).save(str(output))
    spec = output.with_name(output.name + ".json")
    spec.write_text(json.dumps(export_spec(config), indent=2) + "\n")
    return output, spec
