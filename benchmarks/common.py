"""What the benchmarks share: where the sample and the configurations are, a quiet local Ray,
the refinement corpus and the bare model's speed, and the one ``RESULT {json}`` line that ends
every benchmark's output."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

SEQUENCES_PER_FILE = 4  # a few tracks per video file

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "data" / "sample"
DEMO_CONFIG = REPO / "configs" / "demo_2D.yaml"
PAPER_CONFIG = REPO / "configs" / "jhmdb_simplebaseline_2D.yaml"


def start_ray(num_cpus: int = 4, object_store_bytes: int = 400_000_000, dashboard: bool = False):
    """A local Ray sized for this machine's benchmarks, with its own logs quiet.

    Train V2 queries the state API through the dashboard: training benchmarks need it.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    import ray.data

    ray.init(
        num_cpus=num_cpus,
        object_store_memory=object_store_bytes,
        include_dashboard=dashboard,
        log_to_driver=False,
        configure_logging=False,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    return ray


def print_result(figures: dict[str, Any]) -> None:
    """The benchmark's headline figures as its last line, ``RESULT {json}``."""
    print("RESULT " + json.dumps(figures, sort_keys=True, default=float), flush=True)


def write_parquet_corpus(sequences: list, folder: Path) -> int:
    """Sequences as sequence-Parquet files of ``SEQUENCES_PER_FILE`` each (a corpus for the
    refinement benchmarks); returns the file count."""
    from hanet.data.arrow import parquet_bytes, sequences_to_table

    folder.mkdir(parents=True)
    count = 0
    for begin in range(0, len(sequences), SEQUENCES_PER_FILE):
        chunk = sequences[begin : begin + SEQUENCES_PER_FILE]
        data = parquet_bytes(sequences_to_table(chunk))  # written as the pipeline writes them
        (folder / f"part-{count:04d}.parquet").write_bytes(data)
        count += 1
    return count


def copies_of(sequences: list, copies: int, max_frames: int | None = None) -> list:
    """``copies`` renamed copies of ``sequences``, stopped once ``max_frames`` are reached."""
    out, frames = [], 0
    for copy in range(copies):
        for seq in sequences:
            if max_frames is not None and frames >= max_frames:
                return out
            out.append(dataclasses.replace(seq, sequence_id=f"{seq.sequence_id}_c{copy}"))
            frames += seq.num_frames
    return out


def bare_frames_per_s(
    refiner, sequences: list, threads: int, seconds: float = 0.0, rounds: int = 1
) -> float:
    """Frames/s of the forward pass alone (:meth:`hanet.refiner.Refiner.run_windows`) over
    exactly the windows the refiner cuts from ``sequences``, in this process, after a one-batch
    warm-up (allocator, kernels).

    Each of ``rounds`` rounds runs the windows over and over for at least ``seconds`` (once
    when 0); the fastest round counts, so that a pause of this shared machine (the previous
    job's workers exiting, say) does not pass for the model's pace.
    """
    import torch

    torch.set_num_threads(threads)
    windows = refiner.cut_many(sequences).windows
    refiner.run_windows(windows[: refiner.batch_windows])
    best = float("inf")
    for _ in range(rounds):
        began, passes = time.perf_counter(), 0
        while not passes or time.perf_counter() - began < seconds:
            refiner.run_windows(windows)
            passes += 1
        best = min(best, (time.perf_counter() - began) / passes)
    return sum(seq.num_frames for seq in sequences) / best
