"""Raw estimator output + ground truth -> sharded Parquet window datasets, on Ray Data.

Layout of an output dataset::

    OUTPUT/
      manifest.json              written last: the dataset is complete iff it exists
      sequences/<split>.parquet  validated sequences (SEQUENCE_SCHEMA), for evaluation
      windows/<split>/part-*.parquet   model windows (WINDOW_SCHEMA)
      errors.json                bad sequences skipped with --on-error skip

Reading is parallel (one Ray Data task per source file or published pair), windowing and
shard writing run in parallel over sequences, and everything is written into a staging
folder that is committed only when complete. The manifest records what the dataset was made
from (schema version, the config settings that shape the windows, content fingerprints of the
inputs), so a rerun with the same inputs and config is a no-op and a different one refuses to
replace the dataset unless told to.
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
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from hanet.config import Config
from hanet.dataset import assign_split, window_arrays
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
from hanet.skeletons import get_layout
from hanet.storage import (
    Location,
    StagedDirectory,
    exists,
    fingerprint,
    is_file,
    list_files,
    read_text,
    write_bytes_atomic,
)

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
ERRORS = "errors.json"
SPLIT_ORDER = ("train", "val", "test", "infer")
# What a dataset folder may hold; anything else there is someone else's and is not replaced
# without --overwrite.
_OWN_TOP_LEVEL = (MANIFEST, ERRORS, "sequences", "windows")
# The model settings that shape the windows; the rest of the model section does not change a
# dataset, so changing it must not force a re-preprocess.
_WINDOW_MODEL_KEYS = ("num_joints", "joint_dim", "interval", "num_intervals")


class PreprocessError(RuntimeError):
    """Bad input (with --on-error fail) or an output that may not be overwritten."""


@dataclass
class PreprocessResult:
    """What a run did. ``skipped``: the output was already up to date, nothing was written."""

    manifest: dict[str, Any]
    skipped: bool = False
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage

    @property
    def frames(self) -> int:
        return int(sum(s["frames"] for s in self.manifest["splits"].values()))

    @property
    def windows(self) -> int:
        return int(sum(s["windows"] for s in self.manifest["splits"].values()))


# ----------------------------------------------------------------------------------------------
# Sources


def discover_sources(cfg: Config, source: Location) -> list[dict[str, Any]]:
    """Read tasks: published (gt, detections) pairs, or any supported files under ``source``.

    Raises:
        PreprocessError: ``source`` does not exist, holds no input, or holds the published
            layout but no pair for the configured dataset and estimator.
    """
    if not exists(source):
        raise PreprocessError(f"{source.uri}: input not found")
    try:
        root = find_published_root(source)
    except ReadError:
        root = None
    if root is not None:
        try:
            pairs = find_published_pairs(root, cfg.data.dataset, cfg.data.estimator)
        except ReadError as err:
            raise PreprocessError(f"{err} (set data.dataset / data.estimator)") from None
        return [{"kind": "pair", "pair": pair, "root": root} for pair in pairs]
    files = list_files(source, suffixes=SUPPORTED_SUFFIXES)
    if not files:
        raise PreprocessError(
            f"{source.uri}: no input found (expected the published layout "
            "groundtruth_poses/ + detected_poses/, here or under data/, or "
            f"{', '.join(SUPPORTED_SUFFIXES)} files)"
        )
    return [{"kind": "file", "location": loc} for loc in files]


def _task_locations(task: dict[str, Any]) -> list[Location]:
    if task["kind"] == "pair":
        pair: PublishedPair = task["pair"]
        return [pair.gt, pair.detected]
    return [task["location"]]


def _source_key(loc: Location, base: Location) -> str:
    """An input's name relative to the published root (or ``--input``), so moving or copying
    the input (say to S3), or naming its parent that holds ``data/``, keeps the identity."""
    try:
        return loc.relative_to(base)
    except ValueError:
        return loc.name


def source_fingerprints(tasks: list[dict[str, Any]], source: Location) -> dict[str, str]:
    """Content fingerprints of every input file (a missing one is reported by its reader)."""
    found = {}
    for task in tasks:
        for loc in _task_locations(task):
            key = _source_key(loc, task.get("root", source))
            try:
                found[key] = fingerprint(loc)
            except FileNotFoundError:
                found[key] = "missing"
    return dict(sorted(found.items()))


# ----------------------------------------------------------------------------------------------
# Reading (runs in Ray tasks)


def _read_task(task: dict[str, Any], cfg: Config, on_error: str) -> list[dict[str, Any]]:
    """Read one source into validated sequences; errors become rows instead of exceptions so
    the driver can report all of them at once (with ``fail`` as with ``skip``)."""
    errors: list[str] = []
    try:
        if task["kind"] == "pair":
            sequences = read_published_pair(
                task["pair"],
                cfg.data.layout,
                cfg.data.representation,
                cfg.data.fps,
                errors=errors,
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
        sequences = []
        errors.append(str(err))
    rows = [_error_row(message) for message in errors]
    for seq in sequences:
        if seq.representation == "2D" and seq.image_size is None:
            # Checked here rather than at windowing, so it is reported like any bad input.
            rows.append(
                _error_row(
                    f"{seq.where()}: 2D input without an image size (the file carries none: "
                    "set data.image_width and data.image_height)"
                )
            )
            continue
        seq.split = assign_split(seq, cfg.data.val_fraction, cfg.data.seed)
        rows.append(
            {
                "error": None,
                "sequence_id": seq.sequence_id,
                "source": seq.source or "",
                "payload": pickle.dumps(seq, protocol=pickle.HIGHEST_PROTOCOL),
                "split": seq.split,
                "frames": seq.num_frames,
            }
        )
    return rows


def _error_row(message: str) -> dict[str, Any]:
    return {
        "error": message,
        "sequence_id": "",
        "source": "",
        "payload": b"",
        "split": "",
        "frames": 0,
    }


# ----------------------------------------------------------------------------------------------
# Windows (runs in Ray tasks)


def window_table(parts: list[dict[str, np.ndarray]]) -> pa.Table:
    """Stacked window arrays (:func:`hanet.dataset.window_arrays`) -> a WINDOW_SCHEMA table.

    List columns are built from one flat numpy buffer and computed offsets: every row of a
    column has the same length, so no per-row work is needed.
    """
    columns: dict[str, pa.Array] = {}
    for name in WINDOW_SCHEMA.names:
        field_type = WINDOW_SCHEMA.field(name).type
        stacked = np.concatenate([part[name] for part in parts])
        if pa.types.is_list(field_type):
            rows = len(stacked)
            flat = np.ascontiguousarray(stacked).reshape(-1)
            if flat.size > np.iinfo(np.int32).max:
                raise PreprocessError(f"{flat.size} values in one shard: lower data.shard_rows")
            offsets = np.arange(rows + 1, dtype=np.int32) * (flat.size // max(rows, 1))
            columns[name] = pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(flat, type=field_type.value_type)
            )
        else:
            columns[name] = pa.array(stacked, type=field_type)
    return pa.table(columns, schema=WINDOW_SCHEMA)


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


def _manifest_identity(cfg: Config, fingerprints: dict[str, str]) -> dict[str, Any]:
    """What must match for an existing output to count as this run's output."""
    model = cfg.to_dict()["model"]
    relevant = {
        "model": {key: model[key] for key in _WINDOW_MODEL_KEYS},
        "data": cfg.to_dict()["data"],
    }
    return {"schema_version": SCHEMA_VERSION, "config": relevant, "sources": fingerprints}


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Readable ``key: old -> new`` lines between two JSON-like values."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                lines.append(f"{where}: added")
            elif key not in new:
                lines.append(f"{where}: gone")
            else:
                lines.extend(_differences(old[key], new[key], where))
        return lines
    return [] if old == new else [f"{prefix}: {old!r} -> {new!r}"]


def load_manifest(output: Location) -> dict[str, Any] | None:
    """The manifest of a committed dataset, or None where there is none.

    Raises:
        PreprocessError: a manifest that is not valid JSON.
    """
    target = output.join(MANIFEST)
    if not exists(target):
        return None
    try:
        manifest = json.loads(read_text(target))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PreprocessError(f"{target.uri}: not a valid manifest ({err})") from None
    if not isinstance(manifest, dict):
        raise PreprocessError(f"{target.uri}: not a valid manifest (not a JSON object)")
    return manifest


def _check_locations(source: Location, output: Location) -> None:
    """Refuse outputs whose commit could touch the input, or that cannot be a folder."""

    def inside(inner: Location, outer: Location) -> bool:
        if inner.scheme != outer.scheme:
            return False
        base = outer.path.rstrip("/")
        return inner.path.rstrip("/") == base or inner.path.startswith(base + "/")

    if inside(output, source):
        raise PreprocessError(f"{output.uri}: the output must not be inside the input")
    if inside(source, output):
        # Committing replaces the output folder as a whole: the input would go with it.
        raise PreprocessError(f"{source.uri}: the input must not be inside the output")
    if output.is_root:
        raise PreprocessError(f"{output.uri}: the output must be a folder below a root or bucket")
    if is_file(output):
        raise PreprocessError(f"{output.uri}: exists and is a file, not a dataset folder")


def _check_config(cfg: Config) -> None:
    try:
        layout = get_layout(cfg.data.layout)
    except ValueError as err:
        raise PreprocessError(f"data.layout: {err}") from None
    if layout.num_joints != cfg.model.num_joints:
        raise PreprocessError(
            f"model.num_joints={cfg.model.num_joints}, but layout {layout.name!r} has "
            f"{layout.num_joints} joints"
        )
    step = cfg.model.interval * cfg.data.test_stride_q
    if step > cfg.model.window_size:
        raise PreprocessError(
            f"data.test_stride_q={cfg.data.test_stride_q}: test windows every {step} frames "
            f"would leave frames between windows of {cfg.model.window_size} uncovered"
        )


def _foreign_files(output: Location) -> list[str]:
    """Files in ``output`` that a dataset of ours would not hold, hidden ones included (a
    commit replaces the folder as a whole: a ``.git`` there would go too)."""
    if not exists(output):
        return []
    selector = pafs.FileSelector(output.path, recursive=True)
    found = []
    for info in output.filesystem().get_file_info(selector):
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(output.path.rstrip("/")) + 1 :]
        if rel.split("/", 1)[0] not in _OWN_TOP_LEVEL:
            found.append(rel)
    return sorted(found)


def _may_replace(
    output: Location, identity: dict[str, Any], on_error: str, overwrite: bool
) -> dict[str, Any] | None:
    """None to go ahead, or the existing manifest when the output is already up to date.

    Raises:
        PreprocessError: the output holds something else and ``overwrite`` is off.
    """
    try:
        existing = load_manifest(output)
    except PreprocessError:
        if not overwrite:
            raise
        existing = None
    if existing is not None:
        same = existing.get("identity") == identity
        # An output made with --on-error skip from bad input does not satisfy a run that must
        # fail on bad input: go on, and the run fails as it should.
        if same and (on_error == "skip" or not existing.get("errors")):
            return existing
        old = dict(existing.get("identity") or {})
        if same or overwrite:
            return None
        if {**old, "schema_version": SCHEMA_VERSION} == identity:
            # Same inputs and config, written by an older version of this code: regenerating
            # loses nothing.
            log.info(
                "%s: written with schema %s; regenerating", output.uri, old.get("schema_version")
            )
            return None
        changes = _differences(old, identity)
        listed = "; ".join(changes[:6]) + (
            f"; ... {len(changes) - 6} more" if len(changes) > 6 else ""
        )
        raise PreprocessError(
            f"{output.uri}: holds a dataset made from other inputs or another config ({listed}); "
            "pass --overwrite to replace it"
        )
    foreign = _foreign_files(output)
    if foreign and not overwrite:
        raise PreprocessError(
            f"{output.uri}: exists and holds files that are not a hanet dataset (e.g. "
            f"{foreign[0]}); refusing to replace it (pass --overwrite, or pick another folder)"
        )
    return None


# ----------------------------------------------------------------------------------------------
# The pipeline


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
        PreprocessError: bad input with ``on_error="fail"`` (every problem listed, nothing
            written), no valid sequence at all, or an existing output made from other inputs or
            config without ``overwrite``.
    """
    import ray
    from ray.data.expressions import col

    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    began = time.perf_counter()
    stages: dict[str, float] = {}
    _check_locations(source, output)
    _check_config(cfg)
    tasks = discover_sources(cfg, source)
    identity = _manifest_identity(cfg, source_fingerprints(tasks, source))
    stages["fingerprint"] = time.perf_counter() - began
    existing = _may_replace(output, identity, on_error, overwrite)
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
        .flat_map(
            lambda item: _read_task(tasks[item["task"]], cfg, on_error), num_cpus=cpus_per_task
        )
        .materialize()
    )
    summary = read.select_columns(["error", "sequence_id", "source", "split", "frames"]).take_all()
    errors = [row["error"] for row in summary if row["error"] is not None]
    summary = [row for row in summary if row["error"] is None]
    duplicates = _duplicate_ids(summary)
    if duplicates:
        # Not a bad sequence but a naming clash: skipping either side would be arbitrary.
        raise PreprocessError(
            f"{len(duplicates)} duplicate sequence id(s); nothing was written:\n  "
            + "\n  ".join(duplicates[:20])
        )
    if errors and on_error == "fail":
        listed = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise PreprocessError(
            f"{len(errors)} bad input(s); nothing was written:\n  {listed}{more}\n"
            "(use --on-error skip to write the good sequences and report the bad ones)"
        )
    if not summary:
        raise PreprocessError(
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
            buffer = io.BytesIO()
            pq.write_table(sequences_to_table(seqs), buffer, compression="zstd")
            write_bytes_atomic(
                staged.staging.join("sequences", f"{split}.parquet"), buffer.getvalue()
            )
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
    return PreprocessResult(manifest, seconds=seconds, errors=errors, stages=stages)


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


def window_files(dataset: Location, split: str) -> list[Location]:
    """The window shards of one split of a committed dataset (refuses an uncommitted one)."""
    manifest = load_manifest(dataset)
    if manifest is None:
        raise PreprocessError(
            f"{dataset.uri}: no {MANIFEST}; not a complete dataset (run pipelines/preprocess.py)"
        )
    files = manifest["splits"].get(split, {}).get("files", [])
    return [dataset.join(*f.split("/")) for f in files]
