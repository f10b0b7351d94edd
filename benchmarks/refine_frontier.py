"""The speed/quality frontier of refinement: what each setting costs and what it buys.

    python benchmarks/refine_frontier.py --checkpoint CKPT --data DATASET [--checkpoint CKPT2]
        [--steps 1 2 5 N W 10:1] [--copies 20] [--workers 2] [--threads 1]

For every checkpoint (a second, smaller one shows what a smaller configuration trades) and
every setting in ``--steps``, a ``refine.window_step`` (``N`` is the checkpoint's key-frame
interval, ``W`` its window length), optionally with a ``refine.smooth_sigma`` after a colon
(``10:1`` = step 10, Gaussian sigma 1 frame over the merged poses):

- quality: the metrics ``pipelines/evaluate.py`` reports, on the test split of ``--data`` (a
  preprocessed dataset, a published-layout root or a sequence-Parquet file), beside the input
  and every classic filter tuned on the validation split (tuned once, they do not depend on
  the step);
- end-to-end speed: ``run_refine`` over the same test sequences, ``--copies`` times, written as
  sequence Parquet (Parquet in, Parquet out, ``--workers`` actors of ``--threads`` torch
  threads), timed from the call to its return; ``steady`` leaves out actor start-up and
  checkpoint loading (frames over the actors' busy time), which a large corpus amortises;
- bare: the forward pass alone over exactly the windows the refiner cuts, at its best on the
  actors' cores: one process with ``workers x threads`` torch threads or ``workers``
  processes of ``threads`` threads at once, whichever is faster
  (:func:`common.bare_model_frames_per_s`), the fastest of 3 rounds of 2 s each, measured
  before the job.

Everything runs side by side in one process on one machine. The table marks the rows that
beat every tuned classic filter on every metric; the last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from common import (
    bare_model_frames_per_s,
    copies_of,
    print_result,
    start_ray,
    write_parquet_corpus,
)

from hanet.batch_refine import run_refine
from hanet.checkpoint import load_model
from hanet.config import Config
from hanet.dataset import evaluation_sequences
from hanet.evaluation import (
    CLASSIC_FILTERS,
    aggregate,
    filter_poses,
    input_poses,
    metric_columns,
    score_sequence,
    tune_filters,
)
from hanet.io.location import parse_location
from hanet.refiner import Refiner
from hanet.tables import markdown_table

# Metrics where larger is better; every other reported metric is an error.
HIGHER_IS_BETTER = ("pck",)


def better(a: dict[str, float], b: dict[str, float], columns: list[str]) -> bool:
    """``a`` beats ``b`` on every metric."""
    for key in columns:
        up = key.startswith(HIGHER_IS_BETTER)
        if (a[key] <= b[key]) if up else (a[key] >= b[key]):
            return False
    return True


def setting(text: str, cfg: Config) -> tuple[int, float]:
    """``STEP`` or ``STEP:SIGMA`` -> (window step, smoothing sigma); STEP may be N or W."""
    step, _, sigma = text.partition(":")
    named = {"N": cfg.model.interval, "W": cfg.model.window_size}
    return named[step] if step in named else int(step), float(sigma or 0)


def scored(poses: list[np.ndarray], sequences: list) -> dict[str, float]:
    scores = [score_sequence(p, s) for p, s in zip(poses, sequences)]
    return aggregate(scores, sequences[0].representation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", required=True, help="Repeatable.")
    parser.add_argument("--data", required=True, help="Dataset with test (and val) sequences.")
    parser.add_argument("--steps", nargs="+", default=["1", "2", "5", "N"])
    parser.add_argument("--copies", type=int, default=20, help="Test-split copies to refine.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cpus-per-actor", type=float, default=0.5)
    args = parser.parse_args()
    ray = start_ray()
    rows, baselines = [], {}
    with tempfile.TemporaryDirectory(prefix="hanet-frontier-") as tmp:
        root = Path(tmp)
        for index, checkpoint in enumerate(args.checkpoint):
            net, stored = load_model(parse_location(checkpoint))
            test, val = evaluation_sequences(stored, parse_location(args.data))
            if not baselines:  # the input and the tuned filters do not depend on the model
                params = tune_filters(val or test, interval=stored.model.interval)
                baselines["input"] = scored([input_poses(s) for s in test], test)
                for name in CLASSIC_FILTERS:
                    poses = [filter_poses(s, name, params[name]) for s in test]
                    baselines[name] = scored(poses, test)
                columns = metric_columns(test[0].representation)
                corpus = copies_of(test, args.copies)
                inputs = root / "input"
                files = write_parquet_corpus(corpus, inputs)
                frames = sum(seq.num_frames for seq in corpus)
            params_count = sum(p.numel() for p in net.parameters())
            label = f"{stored.name} ({params_count / 1e6:.2f}M)"
            for text in args.steps:
                step, sigma = setting(text, stored)
                overrides = [f"refine.window_step={step}", f"refine.smooth_sigma={sigma}"]
                cfg = stored.replace(overrides)
                refiner = Refiner(net, cfg, device="cpu")
                quality = scored([r.pred for r in refiner.refine_many(test)], test)
                # Before the job (whose workers take a while to exit), the best of 3 rounds.
                bare, _ = bare_model_frames_per_s(
                    refiner, test, args.workers, args.threads, seconds=2.0, rounds=3
                )
                out = root / f"out-{index}-{step}-{sigma}"
                summary = run_refine(
                    parse_location(checkpoint),
                    parse_location(inputs),
                    parse_location(out),
                    workers=args.workers,
                    threads_per_actor=args.threads,
                    overrides=[*overrides, f"refine.cpus_per_actor={args.cpus_per_actor}"],
                    output_format="parquet",
                )
                assert summary.written == files and not summary.errors, summary.errors
                busy = sum(row["seconds"] for row in summary.rows) / args.workers
                rows.append(
                    {
                        "model": label,
                        "window_step": step,
                        "smooth_sigma": sigma,
                        **quality,
                        "e2e": frames / summary.seconds,
                        "steady": frames / busy,
                        "bare": bare,
                        "beats_filters": all(
                            better(quality, baselines[name], columns) for name in CLASSIC_FILTERS
                        ),
                    }
                )
                print(f"{label} step {step}: {rows[-1]}", flush=True)
    ray.shutdown()
    print(
        f"\nRefinement frontier on {args.data} test split ({len(test)} sequences; speed over "
        f"{args.copies} copies = {frames} frames in {files} files, {args.workers} actor(s) x "
        f"{args.threads} thread(s), CPU, {os.cpu_count()} cores)\n"
    )
    speed = ["e2e frames/s", "steady frames/s", "bare frames/s", "e2e/bare"]
    table = [
        {
            "setting": f"{r['model']} step {r['window_step']}"
            + (f", smooth {r['smooth_sigma']:g}" if r["smooth_sigma"] else ""),
            **{key: r[key] for key in columns},
            "e2e frames/s": round(r["e2e"]),
            "steady frames/s": round(r["steady"]),
            "bare frames/s": round(r["bare"]),
            "e2e/bare": r["e2e"] / r["bare"],
            "beats every filter": "yes" if r["beats_filters"] else "no",
        }
        for r in rows
    ]
    table += [{"setting": name, **values} for name, values in baselines.items()]
    print(markdown_table(["setting", *columns, *speed, "beats every filter"], table, digits=2))
    print_result(
        {
            "rows": [
                {
                    "model": r["model"],
                    "window_step": r["window_step"],
                    "smooth_sigma": r["smooth_sigma"],
                    **{key: round(r[key], 3) for key in columns},
                    "e2e_frames_per_s": round(r["e2e"], 1),
                    "steady_frames_per_s": round(r["steady"], 1),
                    "bare_frames_per_s": round(r["bare"], 1),
                    "e2e_over_bare": round(r["e2e"] / r["bare"], 3),
                    "beats_every_filter": r["beats_filters"],
                }
                for r in rows
            ],
            "baselines": {
                name: {k: round(v, 3) for k, v in vals.items()} for name, vals in baselines.items()
            },
        }
    )


if __name__ == "__main__":
    main()
