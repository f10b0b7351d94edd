"""Batch-refinement throughput through Ray Data, as a ratio to the bare model's forward pass.

    python benchmarks/refine_throughput.py [--steps 1 5 10] [--seconds 30] [--paper-frames 9000]
        [--workers 2] [--threads 1] [--sequences-per-file 4] [--compile]

For the demo configuration (configs/demo_2D.yaml) at every ``refine.window_step`` in
``--steps``, and the paper 2D configuration (configs/jhmdb_simplebaseline_2D.yaml, about
287 M parameters) at its own step, with random weights:

1. bare model: the forward pass (:meth:`hanet.refiner.Refiner.run_windows`) over exactly
   the windows the refiner cuts from the sequences, after a one-batch warm-up, at its best on
   the actors' cores: one process with ``workers * threads`` torch threads, or ``workers``
   processes of ``threads`` threads at once (as the actors run), whichever is faster; both
   are printed;
2. the corpus: the bundled sample's sequences (both splits: 135 clips of 24-160 frames, 70 on
   average) as sequence Parquet, ``--sequences-per-file`` to a file, copied as often as it
   takes for about ``--seconds`` of bare-model work (so actor start-up and checkpoint loading
   are amortised as on a real corpus; the frame count is printed), or cut to
   ``--paper-frames`` frames for the paper model;
3. end to end: ``run_refine`` (Parquet in, Parquet out, ``--workers`` actors with ``--threads``
   torch threads each), timed from the call to its return, actor start-up and checkpoint
   loading included (a warm-up run on one file first starts Ray itself).

The table gives frames/s for both and their ratio (1.0 would mean the pipeline adds nothing to
the model's own cost), plus a steady-state figure: frames over the actors' busy time per
object (read, refine, write, done-record), i.e. without actor start-up and checkpoint loading.
Much of the pipeline's cost is paid per file (opening, decoding and encoding a Parquet file
and writing its done-record cost about the same for one clip as for a few):
``--sequences-per-file`` shows how the ratio depends on the corpus's file sizes. With
``--compile`` the demo configuration's bare model is timed a second time under
``torch.compile`` (``refine.compile=true``), with its compiling first batch reported apart.
Everything is measured side by side in one run on the same machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from common import (
    PAPER_CONFIG,
    REPO,
    SAMPLE_DIR,
    SEQUENCES_PER_FILE,
    bare_frames_per_s,
    bare_model_frames_per_s,
    copies_of,
    print_result,
    start_ray,
    write_parquet_corpus,
)

from hanet.batch_refine import run_refine
from hanet.checkpoint import save_checkpoint
from hanet.config import Config, load_config
from hanet.data.schema import Sequence
from hanet.formats.published import find_published_pairs, read_published_pair
from hanet.io.location import parse_location
from hanet.model import HANet
from hanet.refiner import Refiner

CONFIGS = {
    "paper 2D": PAPER_CONFIG,
    "demo 2D": REPO / "configs" / "demo_2D.yaml",
}


def sample_sequences(cfg: Config) -> list[Sequence]:
    """Every sequence of the bundled sample (2D, both splits)."""
    pairs = find_published_pairs(parse_location(SAMPLE_DIR), "mocap2d", "simplebaseline")
    found = []
    for pair in pairs:
        found += read_published_pair(pair, cfg.data.joint_layout, "2D", cfg.data.fps)
    return found


def measure(
    name: str,
    config: Path,
    work: Path,
    args: argparse.Namespace,
    window_step: int | None = None,
    max_frames: int | None = None,
    compile_too: bool = False,
    bare_seconds: float = 2.0,
) -> dict:
    """Time the bare model, write a corpus worth ``args.seconds`` of it (or ``max_frames``
    frames), then run the job over it."""
    overrides = [f"refine.cpus_per_actor={args.cpus_per_actor}"]
    if window_step is not None:
        overrides.append(f"refine.window_step={window_step}")
    cfg = load_config(config, overrides)
    torch.manual_seed(0)
    model = HANet(cfg.model).eval()
    checkpoint = save_checkpoint(work / "model.pt", model, cfg)
    refiner = Refiner(model, cfg, device="cpu")
    sample = sample_sequences(cfg)
    if max_frames is None:
        per_copy = sum(seq.num_frames for seq in sample)
        probe = bare_frames_per_s(refiner, sample, args.workers * args.threads)
        copies = max(1, round(args.seconds * probe / per_copy))
        sequences = copies_of(sample, copies, None)
    else:
        per_copy = sum(seq.num_frames for seq in sample)
        sequences = copies_of(sample, -(-max_frames // per_copy), max_frames)
    bare, paces = bare_model_frames_per_s(
        refiner, sequences, args.workers, args.threads, bare_seconds, rounds=3
    )
    compiled, compile_s = None, None
    if compile_too:
        # refine.compile: torch.compile(dynamic=True) once per refiner. The first batch in a
        # process compiles (the warm-up's: the start-up it adds to every actor); later models
        # of the same shapes reuse the compiled code.
        fast = Refiner(model, cfg.replace(["refine.compile=true"]), device="cpu")
        began = time.perf_counter()
        fast.run_windows(refiner.cut_many(sequences[:4]).windows)
        compile_s = time.perf_counter() - began
        compiled = bare_frames_per_s(fast, sequences, args.workers * args.threads, bare_seconds, 3)
    files = write_parquet_corpus(sequences, work / "input", args.sequences_per_file)
    frames = sum(seq.num_frames for seq in sequences)

    summary = run_refine(
        parse_location(checkpoint),
        parse_location(work / "input"),
        parse_location(work / "output"),
        workers=args.workers,
        threads_per_actor=args.threads,
        output_format="parquet",
    )
    assert summary.written == files and not summary.errors, summary.errors
    assert summary.frames == frames
    # Steady state: the actors' busy time per object (read, refine, write, record), spread
    # over the pool; what a long job approaches once start-up is amortised.
    busy = sum(row["seconds"] for row in summary.rows) / args.workers
    return {
        "name": name,
        "window_step": cfg.test_window_step(),
        "params": sum(p.numel() for p in model.parameters()),
        "files": files,
        "frames": frames,
        "seconds": summary.seconds,
        "e2e": summary.frames / summary.seconds,
        "steady": summary.frames / busy,
        "bare": bare,
        "paces": paces,
        "compiled": compiled,
        "compile_s": compile_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 5, 10], help="Demo steps.")
    parser.add_argument("--seconds", type=float, default=30.0, help="Bare-model work per run.")
    parser.add_argument("--paper-frames", type=int, default=9000, help="Frames for paper model.")
    parser.add_argument(
        "--configs", nargs="+", default=["demo", "paper"], choices=["demo", "paper"]
    )
    parser.add_argument("--workers", type=int, default=2, help="Refinement actors.")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per actor.")
    parser.add_argument("--cpus-per-actor", type=float, default=0.5)
    parser.add_argument(
        "--sequences-per-file",
        type=int,
        default=SEQUENCES_PER_FILE,
        help="Clips per input file of the corpus.",
    )
    parser.add_argument(
        "--compile", action="store_true", help="Also time the bare model under torch.compile."
    )
    args = parser.parse_args()
    # The paper checkpoint (about 1.15 GB) goes through the object store once.
    ray = start_ray(object_store_bytes=3_000_000_000)
    results = []
    with tempfile.TemporaryDirectory(prefix="hanet-refine-bench-") as tmp:
        root = Path(tmp)
        # Warm-up: Ray's own start-up and first Ray Data execution are not the pipeline's cost.
        warm_dir = _mkdir(root / "warm")
        warm = measure(
            "warm-up", CONFIGS["demo 2D"], warm_dir, args, max_frames=200, compile_too=args.compile
        )
        for step in args.steps if "demo" in args.configs else []:
            work = _mkdir(root / f"demo_{step}")
            results.append(
                measure("demo 2D", CONFIGS["demo 2D"], work, args, step, compile_too=args.compile)
            )
        if "paper" in args.configs:
            work = _mkdir(root / "paper")
            results.append(
                # The paper model's batches take seconds each: longer rounds.
                measure(
                    "paper 2D",
                    CONFIGS["paper 2D"],
                    work,
                    args,
                    max_frames=args.paper_frames,
                    bare_seconds=8.0,
                )
            )
    ray.shutdown()
    threads = args.workers * args.threads
    print(
        f"\nRefinement throughput: Ray Data end to end (Parquet in -> Parquet out, files of "
        f"{args.sequences_per_file} clip(s), "
        f"{args.workers} actor(s) x {args.threads} thread(s), actor start-up included) vs the "
        f"bare forward pass on the same windows, the faster of one process of {threads} "
        f"thread(s) and {args.workers} process(es) of {args.threads} at once; "
        f"CPU, {torch.get_num_threads()} torch threads available, {os.cpu_count()} cores\n"
    )
    header = (
        f"| {'config':<9} | {'step':>4} | {'params':>7} | {'files':>5} | {'frames':>7} | "
        f"{'e2e s':>6} | "
        f"{'e2e frames/s':>12} | {'steady frames/s':>15} | {'bare frames/s':>13} | "
        f"{'e2e/bare':>8} | {'steady/bare':>11} |"
    )
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for r in results:
        print(
            f"| {r['name']:<9} | {r['window_step']:>4} | {r['params'] / 1e6:6.1f}M | "
            f"{r['files']:>5} | {r['frames']:>7} | "
            f"{r['seconds']:>6.1f} | {r['e2e']:>12.0f} | {r['steady']:>15.0f} | "
            f"{r['bare']:>13.0f} | {r['e2e'] / r['bare']:>8.2f} | "
            f"{r['steady'] / r['bare']:>11.2f} |"
        )
    print(
        "\nbare model, frames/s: "
        + "; ".join(
            f"{r['name']} step {r['window_step']}: "
            + ", ".join(f"{how} {pace:.0f}" for how, pace in r["paces"].items())
            for r in results
        )
    )
    if args.compile:
        print(
            "\nbare model, eager vs torch.compile (refine.compile=true), same windows; "
            f"compiling (the first batch in a process): {warm['compile_s']:.1f} s"
        )
        for r in (r for r in results if r["compiled"]):
            eager = r["paces"]["one process"]  # compiled is timed the same way
            print(
                f"  {r['name']} step {r['window_step']}: eager {eager:.0f} frames/s, "
                f"compiled {r['compiled']:.0f} frames/s ({r['compiled'] / eager:.2f}x)"
            )
    print_result(
        {
            "rows": [
                {
                    "config": r["name"],
                    "window_step": r["window_step"],
                    "e2e_frames_per_s": round(r["e2e"], 1),
                    "bare_frames_per_s": round(r["bare"], 1),
                    "e2e_over_bare": round(r["e2e"] / r["bare"], 3),
                    "frames": r["frames"],
                    "sequences_per_file": args.sequences_per_file,
                    **(
                        {"compiled_bare_frames_per_s": round(r["compiled"], 1)}
                        if r["compiled"]
                        else {}
                    ),
                }
                for r in results
            ]
        }
    )


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


if __name__ == "__main__":
    main()
