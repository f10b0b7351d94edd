"""Training throughput on Ray Train (1 and 2 workers) and the paper model's step cost on CPU.

    python benchmarks/train_throughput.py [--epochs 3] [--paper-batch 4] [--paper-steps 3]

1. The bundled sample is preprocessed with the demo configuration (configs/demo_2D.yaml) into a
   temporary folder; then the same training job runs with 1 and with 2 Ray Train workers
   (DDP, gloo on CPU, ``train.cpus_per_worker`` logical CPUs each), ``--epochs`` epochs each.
   Throughput is training windows per second of the per-epoch training loop summed over
   workers, read from the run's metrics (first epoch left out: it pays for worker start-up,
   the first read of the window dataset and allocator warm-up). Validation time is not counted.
2. The paper 2D configuration (configs/jhmdb_simplebaseline_2D.yaml, about 287 M parameters):
   forward + backward + AdamW step time per window, in this process, on CPU, with all torch
   threads, after one warm-up step.

Everything is measured side by side in one run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from common import DEMO_CONFIG, PAPER_CONFIG, SAMPLE_DIR, print_result, start_ray

from hanet.config import load_config
from hanet.io.location import parse_location
from hanet.model import HANet
from hanet.preprocessing import run_preprocess
from hanet.training import batch_loss, build_trainer


def ray_train_throughput(dataset, root: Path, workers: int, epochs: int) -> dict:
    """Windows/s of the training loop with ``workers`` workers (epochs after the first)."""
    cfg = load_config(DEMO_CONFIG, [f"train.num_workers={workers}", f"train.epochs={epochs}"])
    output = parse_location(root / f"run-{workers}")
    began = time.perf_counter()
    build_trainer(cfg, dataset, output).fit()
    wall = time.perf_counter() - began
    records = [json.loads(line) for line in (root / f"run-{workers}" / "metrics.jsonl").open()]
    steady = records[1:] or records
    windows = sum(r["train_steps"] for r in steady) * cfg.train.batch_size * workers
    seconds = sum(r["epoch_seconds"] for r in steady)
    return {
        "workers": workers,
        "windows_per_s": windows / seconds,
        "epoch_s": seconds / len(steady),
        "wall_s": wall,
    }


def paper_step_seconds(batch: int, steps: int) -> tuple[float, int]:
    """Seconds per window of forward + backward + optimiser step for the paper 2D config."""
    cfg = load_config(PAPER_CONFIG)
    torch.manual_seed(0)
    model = HANet(cfg.model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, amsgrad=True)
    T, C = cfg.model.window_size, cfg.model.channels
    data = {
        "input": torch.rand(batch, T, C),
        "target": torch.rand(batch, T, C),
        "target_mask": torch.ones(batch, T, C, dtype=torch.bool),
        "frame_mask": torch.ones(batch, T, dtype=torch.bool),
        "key_mask": model.key_mask.expand(batch, T),
    }

    def step() -> None:
        loss = batch_loss(model, data, cfg).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: optimiser state allocation, kernels
    began = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - began) / (steps * batch), sum(
        p.numel() for p in model.parameters()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="Epochs per Ray Train run.")
    parser.add_argument("--paper-batch", type=int, default=4, help="Windows per paper step.")
    parser.add_argument("--paper-steps", type=int, default=3, help="Timed paper steps.")
    args = parser.parse_args()
    ray = start_ray(dashboard=True)  # Train V2 queries the state API through it
    rows = []
    with tempfile.TemporaryDirectory(prefix="hanet-train-bench-") as tmp:
        root = Path(tmp)
        dataset = parse_location(root / "dataset")
        run_preprocess(load_config(DEMO_CONFIG), parse_location(SAMPLE_DIR), dataset)
        for workers in (1, 2):
            rows.append(ray_train_throughput(dataset, root, workers, args.epochs))
    ray.shutdown()
    per_window, params = paper_step_seconds(args.paper_batch, args.paper_steps)

    print(
        f"\nRay Train throughput, demo config on the bundled sample, CPU (gloo), "
        f"{os.cpu_count()} cores, epochs 2..{args.epochs} of each run\n"
    )
    print("| workers | windows/s | epoch s | job wall s | vs 1 worker |")
    print("|--------:|----------:|--------:|-----------:|------------:|")
    for r in rows:
        print(
            f"| {r['workers']:>7} | {r['windows_per_s']:>9.0f} | {r['epoch_s']:>7.2f} | "
            f"{r['wall_s']:>10.1f} | {r['windows_per_s'] / rows[0]['windows_per_s']:>11.2f} |"
        )
    print(
        f"\nPaper 2D config ({params / 1e6:.1f} M parameters), forward + backward + AdamW step, "
        f"batch {args.paper_batch}, {torch.get_num_threads()} torch threads: "
        f"{per_window * 1000:.0f} ms per window ({1 / per_window:.2f} windows/s)"
    )
    print_result(
        {
            "windows_per_s": {str(r["workers"]): round(r["windows_per_s"], 1) for r in rows},
            "paper_window_s": round(per_window, 4),
        }
    )


if __name__ == "__main__":
    main()
