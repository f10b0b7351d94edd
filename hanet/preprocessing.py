"""Raw estimator output + ground truth -> a sharded Parquet window dataset, on Ray Data.

Reading is parallel (one Ray Data task per source file or published pair, :mod:`hanet.sources`),
windowing and shard writing run in parallel over sequences, and everything is written into a
staging folder committed only when complete (:class:`hanet.io.staging.StagedDirectory`).
:mod:`hanet.dataset` describes the result and decides whether an existing one may be replaced.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import ray
import ray.data
from ray.data.expressions import col

from hanet.config import Config
from hanet.data.arrow import SCHEMA_VERSION, window_table
from hanet.data.schema import Sequence
from hanet.data.splits import find_leaks
from hanet.data.windows import window_arrays
from hanet.dataset import (
    ERRORS,
    MANIFEST,
    SPLIT_ORDER,
    DatasetError,
    check_replaceable,
    dataset_identity,
)
from hanet.formats.parquet import write_sequence_parquet
from hanet.io.location import Location, within
from hanet.io.staging import StagedDirectory
from hanet.io.storage import is_file, write_bytes_atomic
from hanet.skeletons import get_layout
from hanet.sources import discover_sources, read_source, source_fingerprints

log = logging.getLogger(__name__)

__all__ = ["PreprocessResult", "run_preprocess", "write_window_shards"]


@dataclass
class PreprocessResult:
    """What a run did. ``skipped``: the output was already up to date, nothing was written."""

    manifest: dict[str, Any]
    skipped: bool = False
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    # Sequences whose body size does not fit the declared units (hanet.data.plausibility).
    unit_warnings: list[str] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage

    @property
    def frames(self) -> int:
        return int(sum(s["frames"] for s in self.manifest["splits"].values()))

    @property
    def windows(self) -> int:
        return int(sum(s["windows"] for s in self.manifest["splits"].values()))


def write_window_shards(
    sequences: list[Sequence], cfg: Config, staging: Location
) -> list[dict[str, Any]]:
    """Cut sequences into windows and write Parquet shards of at most ``data.shard_rows``
    windows, one set per split.

    Shard names derive from their content (first sequence id, start, row count), so they are
    unique within a dataset and a rerun writes the same names.
    """
    by_split: dict[str, list[dict[str, np.ndarray]]] = {}
    for seq in sequences:
        split = seq.split or "infer"
        by_split.setdefault(split, []).append(
            window_arrays(seq, cfg.model, split, cfg.data.train_stride, cfg.data.test_stride_q)
        )
    written = []
    for split, parts in by_split.items():
        table = window_table(parts)
        for begin in range(0, table.num_rows, cfg.data.shard_rows):
            chunk = table.slice(begin, cfg.data.shard_rows)
            first_id, first_start = chunk.column("sequence_id")[0], chunk.column("start")[0]
            key = f"{first_id.as_py()}:{first_start.as_py()}:{chunk.num_rows}"
            name = f"part-{hashlib.sha1(key.encode()).hexdigest()[:16]}.parquet"
            buffer = io.BytesIO()
            pq.write_table(chunk, buffer, compression="zstd")
            write_bytes_atomic(staging.join("windows", split, name), buffer.getvalue())
            written.append(
                {
                    "file": f"windows/{split}/{name}",
                    "split": split,
                    "windows": chunk.num_rows,
                    "bytes": buffer.tell(),
                }
            )
    return written


# ----------------------------------------------------------------------------------------------
# Identity, manifest, output checks


def _check_locations(source: Location, output: Location) -> None:
    """Refuse outputs whose commit could touch the input, or that cannot be a folder."""
    if within(output, source):
        raise DatasetError(f"{output.uri}: the output must not be inside the input")
    if within(source, output):
        # Committing replaces the output folder as a whole: the input would go with it.
        raise DatasetError(f"{source.uri}: the input must not be inside the output")
    if output.is_root:
        raise DatasetError(f"{output.uri}: the output must be a folder below a root or bucket")
    if is_file(output):
        raise DatasetError(f"{output.uri}: exists and is a file, not a dataset folder")


def _check_config(cfg: Config) -> None:
    try:
        layout = get_layout(cfg.data.layout)
    except ValueError as err:
        raise DatasetError(f"data.layout: {err}") from None
    if layout.num_joints != cfg.model.num_joints:
        raise DatasetError(
            f"model.num_joints={cfg.model.num_joints}, but layout {layout.name!r} has "
            f"{layout.num_joints} joints"
        )
    step = cfg.model.interval * cfg.data.test_stride_q
    if step > cfg.model.window_size:
        raise DatasetError(
            f"data.test_stride_q={cfg.data.test_stride_q}: test windows every {step} frames "
            f"would leave frames between windows of {cfg.model.window_size} uncovered"
        )


def run_preprocess(
    cfg: Config,
    source: Location,
    output: Location,
    on_error: str = "fail",
    overwrite: bool = False,
    cpus_per_task: float = 0.5,
) -> PreprocessResult:
    """Preprocess ``source`` into a window dataset at ``output`` (see the module docstring).

    Args:
        cfg: data and model settings (layout, representation, windows, shard size).
        source: the published layout root (or its parent holding ``data/``), or a folder of
            ``.npz`` / ``.json`` / ``.parquet`` files; local or ``s3://``.
        output: the dataset folder; local or ``s3://``.
        on_error: ``"fail"``: any bad input fails the run, listing every problem, and nothing
            is written. ``"skip"``: bad sequences (or files) go to ``errors.json`` and the rest
            is written.
        overwrite: replace an output made from other inputs or another config.
        cpus_per_task: Ray CPUs per read and shard task.

    Raises:
        DatasetError: bad input with ``on_error="fail"`` (every problem listed, nothing
            written), no valid sequence at all, or an existing output made from other inputs or
            config without ``overwrite``.
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    began = time.perf_counter()
    stages: dict[str, float] = {}
    _check_locations(source, output)
    _check_config(cfg)
    tasks = discover_sources(cfg, source)
    identity = dataset_identity(cfg, source_fingerprints(tasks, source))
    stages["fingerprint"] = time.perf_counter() - began
    existing = check_replaceable(output, identity, on_error, overwrite)
    if existing is not None:
        log.info("%s is up to date (same inputs and config); nothing to do", output.uri)
        return PreprocessResult(existing, skipped=True, seconds=time.perf_counter() - began)

    # [1] Read and validate every source in parallel.
    log.info("reading %d source(s) from %s", len(tasks), source.uri)
    # Items are task numbers: a PublishedPair is no Arrow value, and the list travels once,
    # with the function.
    read = (
        ray.data.from_items(
            [{"task": i} for i in range(len(tasks))], override_num_blocks=max(1, len(tasks))
        )
        .flat_map(lambda item: read_source(tasks[item["task"]], cfg), num_cpus=cpus_per_task)
        .materialize()
    )
    summary = read.select_columns(
        ["error", "sequence_id", "source", "split", "frames", "warning"]
    ).take_all()
    errors = [row["error"] for row in summary if row["error"] is not None]
    unit_warnings = [row["warning"] for row in summary if row["warning"]]
    if unit_warnings:
        log.warning(
            "%d sequence(s) have a body size that does not fit the declared units, e.g. %s",
            len(unit_warnings),
            unit_warnings[0],
        )
    summary = [row for row in summary if row["error"] is None]
    duplicates = _duplicate_ids(summary)
    if duplicates:
        # Not a bad sequence but a naming clash: skipping either side would be arbitrary.
        raise DatasetError(
            f"{len(duplicates)} duplicate sequence id(s); nothing was written:\n  "
            + "\n  ".join(duplicates[:20])
        )
    if errors and on_error == "fail":
        listed = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise DatasetError(
            f"{len(errors)} bad input(s); nothing was written:\n  {listed}{more}\n"
            "(use --on-error skip to write the good sequences and report the bad ones)"
        )
    if not summary:
        raise DatasetError(
            f"{source.uri}: no valid sequence found; nothing was written"
            + (f" ({len(errors)} bad input(s), e.g. {errors[0]})" if errors else "")
        )
    if errors:
        log.warning("skipping %d bad input(s), e.g. %s", len(errors), errors[0])
    stages["read"] = time.perf_counter() - began - sum(stages.values())
    log.info(
        "read %d sequence(s), %d frame(s) in %.1f s",
        len(summary),
        sum(row["frames"] for row in summary),
        stages["read"],
    )
    # Error rows have 0 frames and valid sequences at least 1: an Arrow-native filter.
    good = read.filter(expr=col("frames") > 0)

    # Batches of about shard_rows windows, so each batch writes about one shard per split.
    frames_per_seq = float(np.mean([row["frames"] for row in summary]))
    windows_per_seq = max(1.0, frames_per_seq / max(1, cfg.data.train_stride))
    seqs_per_batch = max(1, int(cfg.data.shard_rows / windows_per_seq))

    with StagedDirectory(output) as staged:
        # [2] Window, normalise and write shards in parallel over sequences.
        def shard_batch(batch: dict[str, np.ndarray]) -> dict[str, list]:
            sequences = [pickle.loads(p) for p in batch["payload"]]
            written = write_window_shards(sequences, cfg, staged.staging)
            return {"record": [json.dumps(w) for w in written]}

        n_blocks = max(1, min(len(summary) // seqs_per_batch + 1, 64))
        records = (
            good.select_columns(["payload"])
            .repartition(n_blocks)
            .map_batches(shard_batch, batch_size=seqs_per_batch, num_cpus=cpus_per_task)
            .take_all()
        )
        shards = sorted((json.loads(r["record"]) for r in records), key=lambda w: w["file"])
        stages["windows"] = time.perf_counter() - began - sum(stages.values())
        log.info(
            "wrote %d window(s) in %d shard(s) in %.1f s",
            sum(s["windows"] for s in shards),
            len(shards),
            stages["windows"],
        )

        # [3] The validated sequences themselves, one file per split, for evaluation.
        by_split: dict[str, list[Sequence]] = {}
        for batch in good.select_columns(["payload"]).iter_batches(batch_format="numpy"):
            for payload in batch["payload"]:
                seq = pickle.loads(payload)
                by_split.setdefault(seq.split or "infer", []).append(seq)
        for split, seqs in by_split.items():
            seqs.sort(key=lambda s: s.sequence_id)
            write_sequence_parquet(staged.staging.join("sequences", f"{split}.parquet"), seqs)
        stages["sequences"] = time.perf_counter() - began - sum(stages.values())
        if errors:
            write_bytes_atomic(
                staged.staging.join(ERRORS), (json.dumps(errors, indent=2) + "\n").encode()
            )
        # Validation is carved from train, so both sides count as "seen in training".
        leaks = find_leaks(
            by_split.get("train", []) + by_split.get("val", []), by_split.get("test", [])
        )
        if leaks:
            log.warning(
                "%d clip(s) appear in both train and test (e.g. %s): test scores would be "
                "inflated by leakage",
                len(leaks),
                leaks[0],
            )
        splits = {}
        for split in SPLIT_ORDER:
            seqs = by_split.get(split, [])
            split_shards = [s for s in shards if s["split"] == split]
            if not seqs:
                continue
            splits[split] = {
                "sequences": len(seqs),
                "frames": int(sum(s.num_frames for s in seqs)),
                "windows": int(sum(s["windows"] for s in split_shards)),
                "files": [s["file"] for s in split_shards],
            }
        manifest = {
            "format": "hanet-windows",
            "schema_version": SCHEMA_VERSION,
            "identity": identity,
            "config": cfg.to_dict(),
            "source": source.uri,
            "splits": splits,
            "errors": len(errors),
            "leaked_clip_count": len(leaks),
            "leaked_clips": leaks[:100],  # examples; the count says how many
            "window_size": cfg.model.window_size,
            "num_joints": cfg.model.num_joints,
            "joint_dim": cfg.model.joint_dim,
            "layout": cfg.data.layout,
            "representation": cfg.data.representation,
        }
        # commit() adds "files": every staged file with its size (manifest excluded).
        staged.commit(MANIFEST, manifest)
    seconds = time.perf_counter() - began
    stages["commit"] = seconds - sum(stages.values())
    log.info(
        "committed %s in %.1f s (%s)",
        output.uri,
        seconds,
        ", ".join(f"{name} {value:.1f} s" for name, value in stages.items()),
    )
    return PreprocessResult(
        manifest, seconds=seconds, errors=errors, unit_warnings=unit_warnings, stages=stages
    )


def _duplicate_ids(rows: list[dict[str, Any]]) -> list[str]:
    """Two inputs giving the same sequence id would overwrite each other downstream."""
    first: dict[str, str] = {}
    problems = []
    for row in sorted(rows, key=lambda r: (r["sequence_id"], r["source"])):
        seen = first.setdefault(row["sequence_id"], row["source"])
        if seen != row["source"]:
            problems.append(
                f"{row['source']}: sequence {row['sequence_id']!r}: the same id also comes from "
                f"{seen} (rename one of the files)"
            )
    return problems
