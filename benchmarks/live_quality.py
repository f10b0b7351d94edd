"""Quality of live (causal) refinement on the bundled sample's test clips, against One-Euro.

    python benchmarks/live_quality.py [--data outputs/demo/dataset] \
        [--offline outputs/demo/run/model.pt] [--causal K=outputs/causalK/model.pt ...] \
        [--lookaheads 0 2 5]

Every row is scored on the test split of a preprocessed dataset (the demo's by default) with
the report's metrics (PCK@0.05/0.1/0.2, pixel error, acceleration error):

- input, and HANet offline (merged windows, the model's own refine settings) for reference;
- HANet live with look-ahead k (``refine.lookahead=k``: frame t from the window ending at
  t + k, exactly what ``StreamRefiner`` and the service return), for each k, with the model
  trained offline and with the models trained causally for that k (``--causal k=path``,
  repeatable, e.g. from ``pipelines/train.py --set train.lookahead=k``; named by their
  folder);
- One-Euro, the online peer, with min cutoff and beta tuned on the validation split by pixel
  error over a wider grid than the report's (the report's best sits on its grid's edge).

The last line says, per row, whether HANet beats One-Euro on every metric.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch
from common import REPO, print_result

from hanet.checkpoint import load_model
from hanet.dataset import evaluation_sequences
from hanet.evaluation import evaluate_method, filter_poses, input_poses, metric_columns
from hanet.io.location import parse_location
from hanet.refiner import Refiner

ONE_EURO_GRID = [
    {"min_cutoff": c, "beta": b}
    for c, b in itertools.product(
        [0.1, 0.3, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0, 50.0],
        [0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 10.0],
    )
]
HIGHER_IS_BETTER = ("pck",)


def tune_one_euro(val) -> dict:
    best, best_error = None, float("inf")
    for params in ONE_EURO_GRID:
        scores, _ = evaluate_method(val, lambda s, p=params: filter_poses(s, "one_euro", p))
        if scores["pixel_error"] < best_error:
            best, best_error = params, scores["pixel_error"]
    return best


def refined(path: Path, lookahead: int | None, test) -> dict:
    model, config = load_model(path)
    if lookahead is not None:
        config = config.replace({"refine.lookahead": lookahead})
    outputs = {
        s.sequence_id: r.pred for s, r in zip(test, Refiner(model, config).refine_many(test))
    }
    scores, _ = evaluate_method(test, lambda s: outputs[s.sequence_id])
    return scores


def beats(row: dict, peer: dict, columns: list[str]) -> bool:
    return all(
        row[c] > peer[c] if c.startswith(HIGHER_IS_BETTER) else row[c] < peer[c] for c in columns
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO / "outputs/demo/dataset")
    parser.add_argument("--offline", type=Path, default=REPO / "outputs/demo/run/model.pt")
    parser.add_argument("--causal", nargs="*", default=[], help="k=checkpoint, trained for k")
    parser.add_argument("--lookaheads", type=int, nargs="+", default=[0, 2, 5])
    args = parser.parse_args()
    torch.set_num_threads(1)  # small batches on a shared machine: more threads only spin
    causal = [(int(k), Path(p)) for k, p in (item.split("=", 1) for item in args.causal)]

    _, config = load_model(args.offline)
    test, val = evaluation_sequences(config, parse_location(args.data))
    columns = metric_columns(config.data.representation)
    rows: dict[str, dict] = {"input": evaluate_method(test, input_poses)[0]}
    rows["HANet offline (merged windows)"] = refined(args.offline, None, test)
    for k in args.lookaheads:
        rows[f"HANet live k={k} (offline-trained)"] = refined(args.offline, k, test)
        for trained_for, path in causal:
            if trained_for == k:
                label = f"HANet live k={k} (causal-trained, {path.parent.name})"
                rows[label] = refined(path, k, test)
    params = tune_one_euro(val)
    name = f"One-Euro (min cutoff {params['min_cutoff']}, beta {params['beta']})"
    rows[name] = evaluate_method(test, lambda s: filter_poses(s, "one_euro", params))[0]
    peer = rows[name]

    print(f"{len(test)} test sequences; One-Euro tuned on {len(val)} validation sequences")
    print("| method | " + " | ".join(columns) + " | beats One-Euro on all |")
    print("|---|" + "---:|" * (len(columns) + 1))
    verdict = {}
    for method, scores in rows.items():
        wins = beats(scores, peer, columns) if method.startswith("HANet live") else None
        verdict[method] = wins
        cells = " | ".join(f"{scores[c]:.2f}" for c in columns)
        print(f"| {method} | {cells} | {'' if wins is None else ('yes' if wins else 'no')} |")
    print_result(
        {
            "rows": {m: {c: s[c] for c in columns} for m, s in rows.items()},
            "one_euro_params": params,
            "beats_one_euro_on_every_metric": {m: w for m, w in verdict.items() if w is not None},
        }
    )


if __name__ == "__main__":
    main()
