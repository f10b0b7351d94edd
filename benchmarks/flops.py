"""Parameters and FLOPs per window of HANet for each config.

Usage: ``python benchmarks/flops.py [configs/x.yaml ...]`` (default: every ``configs/*.yaml``).
The last line is ``RESULT {json}``: parameters and GFLOPs per window for each config.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` for one forward pass of one
window (batch 1), 2 FLOPs per multiply-accumulate, as the published figures count them. The model
is built on the meta device: only shapes are needed, so even the 287 M-parameter config costs no
memory or time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from common import print_result
from torch.utils.flop_counter import FlopCounterMode

from hanet.config import ModelConfig, load_config
from hanet.model import HANet, count_parameters
from hanet.strict import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def measure(config: ModelConfig) -> tuple[int, int]:
    """Return ``(parameters, FLOPs per window)`` for one forward pass at batch 1."""
    with torch.device("meta"):
        # The fixed masks come from numpy (on the CPU whatever the default device): move them.
        model = HANet(config).eval().to("meta")
        x = torch.zeros(1, config.window_size, config.channels)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return count_parameters(model), counter.get_total_flops()


def main(paths: list[str]) -> None:
    files = [Path(p) for p in paths] or sorted((ROOT / "configs").glob("*.yaml"))
    try:
        models = [(path, load_config(path).model) for path in files]
    except ConfigError as err:
        sys.exit(f"error: {err}")
    print(f"{'config':<28} {'J×D':>6} {'T':>4} {'H':>4} {'params':>10} {'GFLOPs':>8} {'/frame':>9}")
    rows = []
    for path, model_config in models:
        params, flops = measure(model_config)
        rows.append({"config": path.stem, "params": params, "gflops_per_window": flops / 1e9})
        T = model_config.window_size
        print(
            f"{path.stem:<28} {model_config.num_joints:>3}×{model_config.joint_dim:<2} {T:>4} "
            f"{model_config.hidden_dim:>4} {params / 1e6:>9.2f}M {flops / 1e9:>8.3f} "
            f"{flops / T / 1e6:>8.1f}M"
        )
    print_result({"rows": rows})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", help="config YAML files (default: configs/*.yaml)")
    main(parser.parse_args().configs)
