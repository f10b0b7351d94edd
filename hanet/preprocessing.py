"""Raw estimator output + ground truth -> sharded Parquet window datasets, on Ray Data.

Layout of an output dataset::

    OUTPUT/
      manifest.json              written last: the dataset is complete iff it exists
      sequences/<split>.parquet  validated sequences (SEQUENCE_SCHEMA), for evaluation
      windows/<split>/part-*.parquet   model windows (WINDOW_SCHEMA)
      errors.json                bad sequences skipped with --on-error skip

Reading is parallel (one Ray Data task per source file or published pair), windowing and
shard writing run in parallel over sequences, and everything is written into a staging
folder that is committed only when complete.
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
import pyarrow as pa
import pyarrow.parquet as pq

from hanet.config import Config
from hanet.dataset import assign_split, sequence_windows
from hanet.readers import (
    SUPPORTED_SUFFIXES,
    PublishedPair,
    ReadError,
    find_leaks,
    find_published_pairs,
    find_published_root,
    read_any,
    read_published_pair,
)
from hanet.schema import (
    SCHEMA_VERSION,
    WINDOW_SCHEMA,
    SchemaError,
    Sequence,
    sequences_to_table,
)
from hanet.storage import (
    Location,
    StagedDirectory,
    exists,
    fingerprint,
    list_files,
    read_text,
    write_bytes_atomic,
)

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SPLIT_ORDER = ("train", "val", "test", "infer")


class PreprocessError(RuntimeError):
    """Bad input (with --on-error fail) or an output that may not be overwritten."""


@dataclass
class PreprocessResult:
    manifest: dict[str, Any]
    skipped: bool = False  # the output was already up to date
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def discover_sources(cfg: Config, source: Location) -> list[dict[str, Any]]:
    """Read tasks: published (gt, detections) pairs, or any supported files under ``source``."""
    try:
        root = find_published_root(source)
    except ReadError:
        root = None
    if root is not None:
        pairs = find_published_pairs(root, cfg.data.dataset, cfg.data.estimator)
        return [{"kind": "pair", "pair": pair} for pair in pairs]
    files = list_files(source, suffixes=SUPPORTED_SUFFIXES)
    if not files:
        raise PreprocessError(
            f"{source.uri}: no input found (expected the published layout or "
            f"{', '.join(SUPPORTED_SUFFIXES)} files)"
        )
    return [{"kind": "file", "location": loc} for loc in files]


def _task_locations(task: dict[str, Any]) -> list[Location]:
    if task["kind"] == "pair":
        pair: PublishedPair = task["pair"]
        return [pair.gt, pair.detected]
    return [task["location"]]


def _read_task(task: dict[str, Any], cfg: Config, on_error: str) -> list[dict[str, Any]]:
    """Read one source into validated sequences; errors become rows instead of exceptions so
    the driver can report all of them at once."""
    errors: list[str] = []
    collect = errors if on_error == "skip" else None
    try:
        if task["kind"] == "pair":
            sequences = read_published_pair(
                task["pair"],
                cfg.data.layout,
                cfg.data.representation,
                cfg.data.fps,
                errors=collect if collect is not None else errors,
            )
        else:
            sequences = read_any(
                task["location"],
                cfg.data.layout,
                cfg.data.representation,
                cfg.data.fps,
                cfg.data.image_size,
            )
    except (ReadError, SchemaError) as err:
        sequences, errors = [], errors + [str(err)]
    rows = [{"error": message, "payload": b"", "split": "", "frames": 0} for message in errors]
    for seq in sequences:
        seq.split = assign_split(seq, cfg.data.val_fraction, cfg.data.seed)
        rows.append(
            {
                "error": None,
                "payload": pickle.dumps(seq, protocol=pickle.HIGHEST_PROTOCOL),
                "split": seq.split,
                "frames": seq.num_frames,
            }
        )
    return rows


def _window_table(rows: list[dict[str, Any]]) -> pa.Table:
    columns: dict[str, Any] = {}
    for name in WINDOW_SCHEMA.names:
        field_type = WINDOW_SCHEMA.field(name).type
        values = [r[name] for r in rows]
        if pa.types.is_list(field_type):
            flat = np.concatenate([np.asarray(v).reshape(-1) for v in values])
            offsets = np.cumsum([0] + [np.asarray(v).size for v in values]).astype(np.int32)
            columns[name] = pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(flat, type=field_type.value_type)
            )
        else:
            columns[name] = pa.array(values, type=field_type)
    return pa.table(columns, schema=WINDOW_SCHEMA)


def write_window_shards(
    sequences: list[Sequence], cfg: Config, staging: Location
) -> list[dict[str, Any]]:
    """Cut sequences into windows and write one Parquet shard per split and chunk.

    Shard names derive from their content's sequence ids, so a rerun writes the same names.
    """
    by_split: dict[str, list[dict[str, Any]]] = {}
    for seq in sequences:
        rows = sequence_windows(
            seq, cfg.model, seq.split or "infer", cfg.data.train_stride, cfg.data.test_stride_q
        )
        by_split.setdefault(seq.split or "infer", []).extend(rows)
    written = []
    for split, rows in by_split.items():
        for begin in range(0, len(rows), cfg.data.shard_rows):
            chunk = rows[begin : begin + cfg.data.shard_rows]
            key = f"{chunk[0]['sequence_id']}:{chunk[0]['start']}:{len(chunk)}"
            name = f"part-{hashlib.sha1(key.encode()).hexdigest()[:16]}.parquet"
            target = staging.join("windows", split, name)
            buffer = io.BytesIO()
            pq.write_table(_window_table(chunk), buffer, compression="zstd")
            write_bytes_atomic(target, buffer.getvalue())
            written.append(
                {
                    "file": f"windows/{split}/{name}",
                    "split": split,
                    "windows": len(chunk),
                    "bytes": buffer.tell(),
                }
            )
    return written


def _manifest_identity(cfg: Config, fingerprints: dict[str, str]) -> dict[str, Any]:
    """What must match for an existing output to count as this run's output."""
    relevant = {"model": cfg.to_dict()["model"], "data": cfg.to_dict()["data"]}
    return {"schema_version": SCHEMA_VERSION, "config": relevant, "sources": fingerprints}


def load_manifest(output: Location) -> dict[str, Any] | None:
    target = output.join(MANIFEST)
    if not exists(target):
        return None
    return json.loads(read_text(target))


def run_preprocess(
    cfg: Config,
    source: Location,
    output: Location,
    on_error: str = "fail",
    overwrite: bool = False,
    cpus_per_task: float = 0.5,
) -> PreprocessResult:
    """Preprocess ``source`` into a window dataset at ``output`` (see the module docstring).

    Raises:
        PreprocessError: bad input with ``on_error="fail"`` (every problem listed, nothing
            written), or an existing output made from other inputs or config without
            ``overwrite``.
    """
    import ray

    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    if output.uri.rstrip("/") == source.uri.rstrip("/") or output.uri.startswith(
        source.uri.rstrip("/") + "/"
    ):
        raise PreprocessError(f"{output.uri}: the output must not be inside the input")
    began = time.perf_counter()
    tasks = discover_sources(cfg, source)
    fingerprints = {
        loc.uri: fingerprint(loc) for task in tasks for loc in _task_locations(task) if exists(loc)
    }
    identity = _manifest_identity(cfg, fingerprints)
    existing = load_manifest(output)
    if existing is not None:
        if existing.get("identity") == identity:
            log.info("%s is up to date; nothing to do", output.uri)
            return PreprocessResult(existing, skipped=True)
        if not overwrite:
            raise PreprocessError(
                f"{output.uri}: holds a dataset made from other inputs or another config; "
                "pass --overwrite to replace it"
            )

    # [1] Read and validate every source in parallel.
    read = ray.data.from_items(tasks, override_num_blocks=max(1, len(tasks))).flat_map(
        lambda task: _read_task(task, cfg, on_error), num_cpus=cpus_per_task
    )
    read = read.materialize()
    errors = [row["error"] for row in read.filter(lambda r: r["error"] is not None).take_all()]
    if errors and on_error == "fail":
        listed = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise PreprocessError(
            f"{len(errors)} bad input(s); nothing was written:\n  {listed}{more}\n"
            "(use --on-error skip to write the good sequences and report the bad ones)"
        )
    good = read.filter(lambda r: r["error"] is None)
    summary = good.select_columns(["split", "frames"]).take_all()
    if not summary:
        raise PreprocessError(f"{source.uri}: no valid sequence found")
    frames_per_seq = float(np.mean([row["frames"] for row in summary]))
    windows_per_seq = max(1.0, frames_per_seq / max(1, cfg.data.train_stride))
    seqs_per_batch = max(1, int(cfg.data.shard_rows / windows_per_seq))

    with StagedDirectory(output) as staged:
        # [2] Window, normalise and write shards in parallel over sequences.
        def shard_batch(batch: dict[str, np.ndarray]) -> dict[str, list]:
            sequences = [pickle.loads(p) for p in batch["payload"]]
            written = write_window_shards(sequences, cfg, staged.staging)
            return {
                "record": [json.dumps(w) for w in written],
            }

        n_blocks = max(1, min(len(summary) // seqs_per_batch + 1, 64))
        records = (
            good.repartition(n_blocks)
            .map_batches(shard_batch, batch_size=seqs_per_batch, num_cpus=cpus_per_task)
            .take_all()
        )
        shards = sorted((json.loads(r["record"]) for r in records), key=lambda w: w["file"])

        # [3] The validated sequences themselves, one file per split, for evaluation.
        sequences = [pickle.loads(row["payload"]) for row in good.take_all()]
        by_split: dict[str, list[Sequence]] = {}
        for seq in sequences:
            by_split.setdefault(seq.split or "infer", []).append(seq)
        for split, seqs in by_split.items():
            seqs.sort(key=lambda s: s.sequence_id)
            buffer = io.BytesIO()
            pq.write_table(sequences_to_table(seqs), buffer, compression="zstd")
            write_bytes_atomic(
                staged.staging.join("sequences", f"{split}.parquet"), buffer.getvalue()
            )
        if errors:
            write_bytes_atomic(
                staged.staging.join("errors.json"), json.dumps(errors, indent=2).encode()
            )
        leaks = find_leaks(by_split.get("train", []), by_split.get("test", []))
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
            "leaked_clips": leaks,
            "window_size": cfg.model.window_size,
            "num_joints": cfg.model.num_joints,
            "joint_dim": cfg.model.joint_dim,
            "layout": cfg.data.layout,
            "representation": cfg.data.representation,
        }
        staged.commit(MANIFEST, manifest)
    return PreprocessResult(manifest, seconds=time.perf_counter() - began, errors=errors)


def window_files(dataset: Location, split: str) -> list[Location]:
    """The window shards of one split of a committed dataset (refuses an uncommitted one)."""
    manifest = load_manifest(dataset)
    if manifest is None:
        raise PreprocessError(
            f"{dataset.uri}: no {MANIFEST}; not a complete dataset (run pipelines/preprocess.py)"
        )
    files = manifest["splits"].get(split, {}).get("files", [])
    return [dataset.join(*f.split("/")) for f in files]
