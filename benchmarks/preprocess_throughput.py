"""Preprocessing throughput, as a ratio to writing the same window arrays with plain pyarrow.

    python benchmarks/preprocess_throughput.py [--replicas 10] [--config configs/demo_2D.yaml]
        [--repeats 3]

The bundled sample is replicated ``--replicas`` times into a temporary published layout (each
split's sequences repeated, so the work scales while the data stays real), then:

1. ``run_preprocess`` reads, validates, windows, normalises and writes it through Ray Data
   (after a warm-up run on the plain sample, so worker start-up is not counted);
2. in the same process, the windows it wrote are loaded into numpy, and the time to build an
   equivalent Arrow table directly from those arrays and ``pq.write_table`` it (with the
   pipeline's own writer options, :func:`hanet.data.arrow.parquet_options`: the same file) is
   measured: the floor for "just writing the bytes".

The two alternate ``--repeats`` times (each run of 1 into a new folder) and each side counts
its fastest run: on a shared 2-core machine single runs of either vary by a third.

Both throughputs are printed in frames/s (source frames) and windows/s, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from common import DEMO_CONFIG, SAMPLE_DIR, print_result, start_ray

from hanet.config import load_config
from hanet.data.arrow import parquet_options
from hanet.dataset import window_files
from hanet.formats.published import find_published_pairs
from hanet.formats.safe_npz import load_npz
from hanet.io.location import parse_location
from hanet.preprocessing import run_preprocess


def replicate_sample(sample: Path, target: Path, dataset: str, estimator: str, n: int) -> None:
    """The sample's pairs for ``dataset``/``estimator`` with every split repeated ``n`` times."""
    for pair in find_published_pairs(parse_location(sample), dataset, estimator):
        for location, folder in ((pair.gt, "groundtruth_poses"), (pair.detected, "detected_poses")):
            arrays = load_npz(location)
            relative = Path(location.path).relative_to(sample / folder)
            path = target / folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            repeated = {}
            for key, value in arrays.items():
                out = np.empty(len(value) * n, dtype=object)
                for i, item in enumerate(list(value) * n):
                    out[i] = item
                repeated[key] = out
            np.savez(path, **repeated)


def window_arrays(dataset: Path) -> list[tuple[pa.Schema, dict[str, np.ndarray]]]:
    """Per split of a written dataset, its window schema and every column as one flat numpy
    array (splits apart: training windows may be stored longer than the others)."""
    out = []
    for split in ("train", "val", "test", "infer"):
        tables = [pq.read_table(f.path) for f in window_files(parse_location(dataset), split)]
        if not tables:
            continue
        table = pa.concat_tables(tables).combine_chunks()
        arrays: dict[str, np.ndarray] = {}
        for name in table.column_names:
            column = table.column(name).chunk(0)
            if pa.types.is_fixed_size_list(column.type):
                column = column.flatten()
            arrays[name] = column.to_numpy(zero_copy_only=False)
        out.append((table.schema, arrays))
    return out


def plain_pyarrow_write(schema: pa.Schema, arrays: dict[str, np.ndarray], path: Path) -> float:
    """Seconds to build the window table from numpy and write it with pq.write_table."""
    began = time.perf_counter()
    columns = {}
    for name in schema.names:
        field_type = schema.field(name).type
        if pa.types.is_fixed_size_list(field_type):
            columns[name] = pa.FixedSizeListArray.from_arrays(
                pa.array(arrays[name], type=field_type.value_type), field_type.list_size
            )
        else:
            columns[name] = pa.array(arrays[name], type=field_type)
    table = pa.table(columns, schema=schema)
    pq.write_table(table, path, **parquet_options(schema))
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--config", type=Path, default=DEMO_CONFIG)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--num-cpus", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side (fastest counts)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cfg = load_config(args.config, args.overrides)
    ray = start_ray(num_cpus=args.num_cpus)
    with tempfile.TemporaryDirectory(prefix="hanet-bench-") as tmp:
        work = Path(tmp)
        source = work / "input"
        replicate_sample(SAMPLE_DIR, source, cfg.data.dataset, cfg.data.estimator, args.replicas)
        # Warm-up: start the Ray workers and import hanet in them.
        run_preprocess(cfg, parse_location(SAMPLE_DIR), parse_location(work / "warmup"))

        # Each side runs --repeats times, alternately (so that both see the machine in the
        # same state), and each counts its fastest run.
        results, baselines, splits = [], [], []
        for i in range(args.repeats):
            results.append(
                run_preprocess(cfg, parse_location(source), parse_location(work / f"dataset-{i}"))
            )
            if not splits:
                splits = window_arrays(work / "dataset-0")
                assert sum(len(arrays["start"]) for _, arrays in splits) == results[0].windows
            baselines.append(
                sum(
                    plain_pyarrow_write(schema, arrays, work / f"plain-{i}-{j}.parquet")
                    for j, (schema, arrays) in enumerate(splits)
                )
            )
        result = min(results, key=lambda r: r.seconds)
        frames, windows, seconds = result.frames, result.windows, result.seconds
        baseline = min(baselines)

    ratio = baseline / seconds
    stages = ", ".join(f"{name} {value:.2f} s" for name, value in result.stages.items())
    print(f"config {args.config.name}, sample x{args.replicas}: {frames} frames, {windows} windows")
    print(
        f"run_preprocess (read+validate+window+normalise+write, Ray Data): {seconds:7.2f} s  "
        f"{frames / seconds:9.0f} frames/s  {windows / seconds:9.0f} windows/s"
    )
    print(f"  stages: {stages}")
    print(
        f"plain pyarrow (table from numpy + pq.write_table):                {baseline:7.2f} s  "
        f"{frames / baseline:9.0f} frames/s  {windows / baseline:9.0f} windows/s"
    )
    print(
        f"ratio preprocess / plain pyarrow throughput: {ratio:.3f} "
        f"(plain is {1 / ratio:.1f}x faster)"
    )
    ray.shutdown()
    print_result({"ratio": round(ratio, 4), "frames_per_s": round(frames / seconds, 1)})


if __name__ == "__main__":
    main()
