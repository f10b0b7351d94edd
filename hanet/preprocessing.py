"""Raw estimator output + ground truth -> a sharded Parquet window dataset, on Ray Data.

One Ray Data task per source file or chunk of a published pair (:mod:`hanet.sources`) reads,
validates, windows and writes its share (:mod:`hanet.shards`) into a staging folder, committed
only when complete (:class:`hanet.io.staging.StagedDirectory`); the driver checks the records
and writes the manifest.
:mod:`hanet.dataset` describes the result and decides whether an existing one may be replaced.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from collections.abc import Sequence as Seq
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray
import ray.data

from hanet.config import Config
from hanet.data.arrow import SCHEMA_VERSION
from hanet.data.augment import stored_window_size
from hanet.data.normalise import ROOT_RELATIVE_M
from hanet.dataset import (
    ERRORS,
    MANIFEST,
    SPLIT_ORDER,
    DatasetError,
    check_replaceable,
    dataset_identity,
)
from hanet.io.location import Location, within
from hanet.io.staging import StagedDirectory
from hanet.io.storage import is_file, write_bytes_atomic
from hanet.shards import process_task
from hanet.sources import Source, discover_sources, source_fingerprints

log = logging.getLogger(__name__)

__all__ = ["PreprocessResult", "run_preprocess"]


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
    step = cfg.model.interval * cfg.data.test_stride_q
    if step > cfg.model.window_size:
        raise DatasetError(
            f"data.test_stride_q={cfg.data.test_stride_q}: test windows every {step} frames "
            f"would leave frames between windows of {cfg.model.window_size} uncovered"
        )


def run_preprocess(
    cfg: Config,
    source: Location | Seq[Source],
    output: Location,
    on_error: str = "fail",
    overwrite: bool = False,
    cpus_per_task: float = 1.0,
) -> PreprocessResult:
    """Preprocess ``source`` into a window dataset at ``output`` (see the module docstring).

    Args:
        cfg: data and model settings (layout, representation, windows, shard size).
        source: the inputs (:class:`hanet.sources.Source`), or one location read with
            ``data.dataset`` and ``data.estimator``: a published layout root (or its parent
            holding ``data/``), or a folder of ``.npz`` / ``.json`` / ``.parquet`` files; local
            or ``s3://``. Several inputs are mixed into one dataset.
        output: the dataset folder; local or ``s3://``.
        on_error: ``"fail"``: any bad input fails the run, listing every problem, and nothing
            is written. ``"skip"``: bad sequences (or files) go to ``errors.json`` and the rest
            is written.
        overwrite: replace an output made from other inputs or another config.
        cpus_per_task: Ray CPUs per read and shard task. The work is numpy and Parquet
            encoding, which keeps a core busy: two tasks sharing one core each run more than
            twice as slowly as one alone.

    Raises:
        DatasetError: bad input with ``on_error="fail"`` (every problem listed, nothing
            written), no valid sequence at all, or an existing output made from other inputs or
            config without ``overwrite``.
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    began = time.perf_counter()
    stages: dict[str, float] = {}
    sources = (
        [Source(source, cfg.data.dataset, cfg.data.estimator)]
        if isinstance(source, Location)
        else list(source)
    )
    for item in sources:
        _check_locations(item.location, output)
    _check_config(cfg)
    tasks = discover_sources(cfg, sources, _slots(cpus_per_task))
    identity = dataset_identity(cfg, source_fingerprints(tasks))
    stages["fingerprint"] = time.perf_counter() - began
    existing = check_replaceable(output, identity, on_error, overwrite)
    if existing is not None:
        log.info("%s is up to date (same inputs and config); nothing to do", output.uri)
        return PreprocessResult(existing, skipped=True, seconds=time.perf_counter() - began)

    # [1] In parallel, one Ray task per input file (or chunk of a large pair): read, validate,
    # window, normalise and write window shards and sequence parts into the staging folder.
    # Everything staged is discarded if the run fails below, so writing early loses nothing.
    log.info("reading %d file(s) from %s", len(tasks), ", ".join(s.label for s in sources))
    with StagedDirectory(output) as staged:

        def process(batch: dict[str, np.ndarray]) -> dict[str, list]:
            records = []
            for task in batch["task"]:
                records += process_task(tasks[int(task)], cfg, staged.staging)
            return {"record": [json.dumps(r) for r in records]}

        # Items are task numbers: a PublishedPair is no Arrow value, and the list travels
        # once, with the function.
        with _unreserved():
            rows = (
                ray.data.from_items(
                    [{"task": i} for i in range(len(tasks))],
                    override_num_blocks=max(1, len(tasks)),
                )
                .map_batches(process, batch_size=1, num_cpus=cpus_per_task)
                .take_all()
            )
        records = [json.loads(row["record"]) for row in rows]
        stages["read_window_write"] = time.perf_counter() - began - sum(stages.values())
        summary = [r for r in records if r["kind"] == "sequence"]
        errors = list(dict.fromkeys(r["error"] for r in records if r["kind"] == "error"))
        unit_warnings = [r["warning"] for r in summary if r["warning"]]
        if unit_warnings:
            log.warning(
                "%d sequence(s) have a body size that does not fit the declared units, e.g. %s",
                len(unit_warnings),
                unit_warnings[0],
            )
        _warn_root_path(summary, cfg)
        _check_outcome(summary, errors, on_error, sources)
        shards = sorted((r for r in records if r["kind"] == "shard"), key=lambda r: r["file"])
        log.info(
            "read %d sequence(s), %d frame(s); wrote %d window(s) in %d shard(s) in %.1f s",
            len(summary),
            sum(r["frames"] for r in summary),
            sum(r["windows"] for r in shards),
            len(shards),
            stages["read_window_write"],
        )
        if errors:
            log.warning("skipping %d bad input(s), e.g. %s", len(errors), errors[0])
            write_bytes_atomic(
                staged.staging.join(ERRORS), (json.dumps(errors, indent=2) + "\n").encode()
            )
        # Validation is carved from train, so both sides count as "seen in training".
        seen = {c for r in summary if r["split"] in ("train", "val") for c in r["clips"]}
        leaks = sorted({c for r in summary if r["split"] == "test" for c in r["clips"]} & seen)
        if leaks:
            log.warning(
                "%d clip(s) appear in both train and test (e.g. %s): test scores would be "
                "inflated by leakage",
                len(leaks),
                leaks[0],
            )
        manifest = {
            "format": "hanet-windows",
            "schema_version": SCHEMA_VERSION,
            "identity": identity,
            "config": cfg.to_dict(),
            "source": sources[0].location.uri,
            "sources": _per_source(sources, summary),
            "splits": _splits(summary, records),
            "errors": len(errors),
            "leaked_clip_count": len(leaks),
            "leaked_clips": leaks[:100],  # examples; the count says how many
            "window_size": cfg.model.window_size,
            "train_window_size": stored_window_size(cfg.model.window_size, cfg.augment),
            "num_joints": cfg.model.num_joints,
            "joint_dim": cfg.model.joint_dim,
            "layout": cfg.data.joint_layout.to_mapping(),
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


def _slots(cpus_per_task: float) -> int:
    """Tasks that can run at once: the cluster's CPUs (this machine's before Ray starts) over
    the CPUs of a task."""
    cpus = ray.cluster_resources().get("CPU", 1) if ray.is_initialized() else os.cpu_count()
    return max(1, int((cpus or 1) / cpus_per_task))


@contextmanager
def _unreserved() -> Iterator[None]:
    """Datasets made inside run without Ray Data's per-operator resource reservation (a
    dataset keeps the context it was made in). The reservation holds back part of the
    cluster for operators downstream; a one-operator dataset has none, so it only delays the
    start: the tasks here ran one at a time for their first second (2 CPUs, the sample x 10:
    3.9 s instead of 2.5 s)."""
    context = ray.data.DataContext.get_current()
    before = context.op_resource_reservation_enabled
    context.op_resource_reservation_enabled = False
    try:
        yield
    finally:
        context.op_resource_reservation_enabled = before


def _warn_root_path(summary: list[dict[str, Any]], cfg: Config) -> None:
    """One warning for a run whose 3D inputs are not root-relative under ``published``
    normalisation: their root path would pass through refinement unrefined."""
    if cfg.data.representation != "3D" or cfg.data.normalisation != "published":
        return
    far = [r for r in summary if r["root_distance"] > ROOT_RELATIVE_M]
    if far:
        worst = max(far, key=lambda r: r["root_distance"])
        log.warning(
            "%d sequence(s) are not root-relative (e.g. %s: sequence %r, root up to %.2f m from "
            "the origin): data.normalisation 'published' refines each frame around its own "
            "root and keeps the input's root path as it is; 'body' refines that path too",
            len(far),
            worst["source"],
            worst["sequence_id"],
            worst["root_distance"],
        )


def _check_outcome(
    summary: list[dict[str, Any]], errors: list[str], on_error: str, sources: list[Source]
) -> None:
    """Refuse a run whose inputs clash, fail, or give nothing (the staging is discarded).

    Raises:
        DatasetError: duplicate sequence ids; bad input with ``on_error="fail"``; no valid
            sequence at all.
    """
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
            f"{', '.join(s.location.uri for s in sources)}: no valid sequence found; nothing "
            "was written" + (f" ({len(errors)} bad input(s), e.g. {errors[0]})" if errors else "")
        )


def _splits(summary: list[dict[str, Any]], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per split: sequences, frames, windows, and the window shards and sequence parts."""
    splits = {}
    for split in SPLIT_ORDER:
        seqs = [r for r in summary if r["split"] == split]
        if not seqs:
            continue
        shards = sorted(
            (r for r in records if r["kind"] == "shard" and r["split"] == split),
            key=lambda r: r["file"],
        )
        parts = sorted(
            r["file"] for r in records if r["kind"] == "sequences" and r["split"] == split
        )
        splits[split] = {
            "sequences": len(seqs),
            "frames": int(sum(r["frames"] for r in seqs)),
            "windows": int(sum(r["windows"] for r in shards)),
            "files": [r["file"] for r in shards],
            "sequence_files": parts,
        }
    return splits


def _per_source(sources: list[Source], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each input gave: its names, and sequences and frames per split."""
    out = []
    for index, source in enumerate(sources):
        mine = [row for row in rows if row["input"] == index]
        splits: dict[str, dict[str, int]] = {}
        for row in mine:
            counts = splits.setdefault(row["split"], {"sequences": 0, "frames": 0})
            counts["sequences"] += 1
            counts["frames"] += int(row["frames"])
        out.append(
            {
                "input": source.location.uri,
                "dataset": source.dataset,
                "estimator": source.estimator,
                "splits": {k: splits[k] for k in SPLIT_ORDER if k in splits},
            }
        )
    return out


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
