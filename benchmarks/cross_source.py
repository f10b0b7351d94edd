"""Transfer across motion sources: train on one part of the bundled sample, refine the other.

    python benchmarks/cross_source.py [--settings published body body+augment] [--set k=v ...]

The bundled 2D sample holds two motion sources of the same kind (same joints, same simulated
estimator) but different captures and skeletons: one CMU motion-capture clip (35 sequences,
camera views and pieces of it) and 20 DeepMimic clips. Both directions are measured:

- ``cmu->deepmimic``: train (and carve validation) on every CMU sequence, test on every
  DeepMimic sequence;
- ``deepmimic->cmu``: the reverse.

For every direction and setting the demo configuration (``configs/demo_2D.yaml`` with the
setting's overrides) is preprocessed, trained with Ray Train exactly as ``make demo`` trains,
and scored on the other source beside the classic filters, whose settings are tuned on the
training source's validation split (as a user would tune them). The settings:

- ``published``: the published image-size normalisation, no augmentation;
- ``body``: scale-free normalisation (``data.normalisation=body``), no augmentation;
- ``body+augment``: scale-free normalisation and the demo configuration's augmentation.

The table shows input, HANet and the best tuned filter per direction and setting; the last
line is ``RESULT {json}`` with every figure.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import DEMO_CONFIG, SAMPLE_DIR, print_result, start_ray

from hanet.checkpoint import load_model
from hanet.config import load_config
from hanet.dataset import load_split
from hanet.formats.published import (
    find_published_pairs,
    read_published_pair,
    write_published_pair,
)
from hanet.formats.safe_npz import load_npz
from hanet.io.location import Location, parse_location
from hanet.preprocessing import run_preprocess
from hanet.refiner import Refiner
from hanet.report import best_filter, build_report
from hanet.runs import export_run
from hanet.tables import markdown_table
from hanet.training import best_checkpoint, build_trainer

DATASET, ESTIMATOR = "mocap2d", "simplebaseline"
NO_AUGMENT = [
    f"augment.{key}={value}"
    for key, value in (
        ("mirror", 0.0),
        ("rotate_deg", 0.0),
        ("scale", 0.0),
        ("translate", 0.0),
        ("speed_min", 1.0),
        ("speed_max", 1.0),
    )
]
SETTINGS = {
    "published": ["data.normalisation=published", *NO_AUGMENT],
    "body": ["data.normalisation=body", *NO_AUGMENT],
    "body+augment": ["data.normalisation=body"],
}
METRICS = ("pck@0.05", "pck@0.1", "pck@0.2", "pixel_error", "accel_px")


def split_sample(root: Path) -> dict[str, Location]:
    """The sample's sequences by source, each source written as one published-layout root
    holding all its sequences (train and test files together) as one split."""
    parts: dict[str, dict[str, dict[str, list]]] = {"cmu": {}, "deepmimic": {}}
    for pair in find_published_pairs(parse_location(SAMPLE_DIR), DATASET, ESTIMATOR):
        gt, det = load_npz(pair.gt), load_npz(pair.detected)
        for index, names in enumerate(gt["imgname"]):
            part = "cmu" if str(names[0]).startswith("cmu_") else "deepmimic"
            for side, arrays in (("gt", gt), ("det", det)):
                store = parts[part].setdefault(side, {})
                for key, values in arrays.items():
                    store.setdefault(key, []).append(values[index])
    return {
        name: _write(parse_location(root / name), arrays["gt"], arrays["det"])
        for name, arrays in parts.items()
    }


def _write(root: Location, gt: dict, det: dict) -> Location:
    write_published_pair(root, DATASET, ESTIMATOR, "train", gt, det)
    return root


def run(train: Location, test: Location, overrides: list[str], work: Path) -> dict:
    """Train on ``train``, score on every sequence of ``test``; the report's headline rows."""
    cfg = load_config(DEMO_CONFIG, overrides)
    dataset = parse_location(work / "dataset")
    run_preprocess(cfg, train, dataset)
    out = parse_location(work / "run")
    began = time.perf_counter()
    result = build_trainer(cfg, dataset, out).fit()
    seconds = time.perf_counter() - began
    net, stored = load_model(export_run(best_checkpoint(result), cfg, out))
    (pair,) = find_published_pairs(test, DATASET, ESTIMATOR)
    sequences = read_published_pair(pair, stored.data.joint_layout, "2D", stored.data.fps)
    report = build_report(Refiner(net, stored), sequences, load_split(dataset, "val"))
    best = best_filter(report)
    return {
        "input": report.table["input"],
        "HANet": report.table["HANet"],
        f"best filter ({best})": report.table[best],
        "train_seconds": seconds,
        "test_sequences": len(sequences),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    ray = start_ray(dashboard=True)  # Train V2 queries the state API through it
    rows, figures = [], {}
    with tempfile.TemporaryDirectory(prefix="hanet-cross-") as tmp:
        root = Path(tmp)
        parts = split_sample(root / "sources")
        for direction, (train, test) in {
            "cmu->deepmimic": (parts["cmu"], parts["deepmimic"]),
            "deepmimic->cmu": (parts["deepmimic"], parts["cmu"]),
        }.items():
            for setting in args.settings:
                work = root / f"{direction.replace('->', '_to_')}-{setting}"
                outcome = run(train, test, [*SETTINGS[setting], *args.overrides], work)
                figures[f"{direction} {setting}"] = outcome
                for method in ("input", "HANet", next(k for k in outcome if k.startswith("best"))):
                    rows.append(
                        {"direction": direction, "setting": setting, "method": method}
                        | {m: outcome[method][m] for m in METRICS}
                    )
                print(f"{direction} {setting}: trained in {outcome['train_seconds']:.0f} s")
    ray.shutdown()
    print()
    print(markdown_table(["direction", "setting", "method", *METRICS], rows, digits=2))
    print_result(figures)


if __name__ == "__main__":
    main()
