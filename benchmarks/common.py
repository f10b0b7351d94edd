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


def write_parquet_corpus(sequences: list, folder: Path, per_file: int = SEQUENCES_PER_FILE) -> int:
    """Sequences as sequence-Parquet files of ``per_file`` each (a corpus for the refinement
    benchmarks); returns the file count."""
    from hanet.data.arrow import parquet_bytes, sequences_to_table

    folder.mkdir(parents=True)
    count = 0
    for begin in range(0, len(sequences), per_file):
        chunk = sequences[begin : begin + per_file]
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


def bare_model_frames_per_s(
    refiner, sequences: list, workers: int, threads: int, seconds: float, rounds: int
) -> tuple[float, dict[str, float]]:
    """The bare model's best pace on the resources a job's actors get, and how it was reached:
    one process with ``workers * threads`` torch threads (:func:`bare_frames_per_s`), or
    ``workers`` processes of ``threads`` threads running at once, as the actors do
    (:func:`bare_frames_per_s_in_processes`). Where threads scale badly (two threads were 1.3
    to 1.5 times one on a shared 2-core machine, two processes 2 times), the first alone would
    flatter every ratio to it."""
    paces = {
        "one process": bare_frames_per_s(refiner, sequences, workers * threads, seconds, rounds)
    }
    if workers > 1:
        paces[f"{workers} processes"] = bare_frames_per_s_in_processes(
            refiner, sequences, workers, threads, seconds, rounds
        )
    return max(paces.values()), paces


def bare_frames_per_s_in_processes(
    refiner, sequences: list, processes: int, threads: int, seconds: float, rounds: int
) -> float:
    """Frames/s of ``processes`` processes (``threads`` torch threads each) running the
    forward pass at once, summed: the bare model on the cores a job's actors share. Each runs
    rounds of :func:`_paces` on the same windows, the rounds started together; the fastest
    round counts (as in :func:`bare_frames_per_s`)."""
    import multiprocessing

    windows = refiner.cut_many(sequences).windows
    frames_per_window = sum(seq.num_frames for seq in sequences) / len(windows)
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    barrier, results = context.Barrier(processes), context.Queue()
    args = (refiner, windows[:_PACE_WINDOWS], threads, seconds, rounds, barrier, results)
    workers = [context.Process(target=_bare_worker, args=args) for _ in range(processes)]
    for worker in workers:
        worker.start()
    paces = [results.get() for _ in workers]  # windows/s of each process in each round
    for worker in workers:
        worker.join()
    return max(sum(round_paces) for round_paces in zip(*paces)) * frames_per_window


# The pace does not depend on the values: a few thousand windows are as good as all of them.
_PACE_WINDOWS = 4096


def _paces(refiner, windows, seconds: float, rounds: int, barrier=None) -> list[float]:
    """Windows/s of each of ``rounds`` rounds of ``seconds``, batch after batch of
    ``windows`` (round after round), after a one-batch warm-up (allocator, kernels)."""
    size = refiner.batch_windows
    refiner.run_windows(windows[:size])
    paces = []
    for _ in range(rounds):
        if barrier is not None:
            barrier.wait()
        began, done, begin = time.perf_counter(), 0, 0
        while not done or time.perf_counter() - began < seconds:
            batch = windows[begin : begin + size]
            refiner.run_windows(batch)
            done += len(batch)
            begin = begin + size if begin + size < len(windows) else 0
        paces.append(done / (time.perf_counter() - began))
    return paces


def _bare_worker(refiner, windows, threads, seconds, rounds, barrier, results) -> None:
    import torch

    torch.set_num_threads(threads)
    results.put(_paces(refiner, windows, seconds, rounds, barrier))


def bare_frames_per_s(
    refiner, sequences: list, threads: int, seconds: float = 0.0, rounds: int = 1
) -> float:
    """Frames/s of the forward pass alone (:meth:`hanet.refiner.Refiner.run_windows`) over
    the windows the refiner cuts from ``sequences``, in this process.

    With ``seconds`` 0, one pass over all of them after a one-batch warm-up. Otherwise each
    of ``rounds`` rounds runs batches of (the first few thousand of) them for ``seconds``
    (:func:`_paces`), and the fastest round counts, so that a pause of this shared machine
    (the previous job's workers exiting, say) does not pass for the model's pace.
    """
    import torch

    torch.set_num_threads(threads)
    windows = refiner.cut_many(sequences).windows
    frames_per_window = sum(seq.num_frames for seq in sequences) / len(windows)
    if seconds:
        return max(_paces(refiner, windows[:_PACE_WINDOWS], seconds, rounds)) * frames_per_window
    refiner.run_windows(windows[: refiner.batch_windows])
    began = time.perf_counter()
    refiner.run_windows(windows)
    return len(windows) * frames_per_window / (time.perf_counter() - began)
