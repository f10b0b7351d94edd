"""Refine a whole corpus of estimator outputs on Ray Data: one refined object per input object.

Layout of an output prefix::

    OUTPUT/
      <rel>.parquet                 one refined object per input object (relative path kept;
                                    with output_format="same", the input's own name and format)
      _done/<input rel>.json        per-object completion record, written after its output
      _errors.json                  objects of the last run that failed, with the reason
      _manifest.json                summary of the last run (objects, frames, errors, speed)

Names starting with ``_`` or ``.`` are invisible to :func:`hanet.storage.list_files`, so the
bookkeeping never shows up as data, and the output prefix can be fed to another stage as is.

Resumption
    Every output is written atomically, then its done-record, which holds the input's content
    fingerprint, the output's SHA-256 and the identity of the model (checkpoint bytes plus the
    settings that change results). An object is skipped on a later run if and only if its
    done-record matches all three, so a job killed at any point finishes on rerun: an object
    whose output was written but whose record was not is simply refined again into the same
    name, never duplicated. A changed input, checkpoint or format is refined again.

Error isolation
    Reading, checking, refining and writing one object happen inside one ``try``; whatever goes
    wrong becomes that object's error row (its reason names the object) and the job goes on.

The per-object work lives in :class:`ObjectRefiner`, which needs no Ray; :class:`RefineActor`
is its Ray Data wrapper, which loads the checkpoint once per actor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import posixpath
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow.parquet as pq
import torch

from hanet.checkpoint import load_checkpoint, load_model
from hanet.config import Config, ConfigError, from_dict
from hanet.readers import (
    POSE_KEYS,
    SUPPORTED_SUFFIXES,
    best_per_track,
    load_npz,
    read_any,
)
from hanet.refiner import Refiner
from hanet.schema import Sequence, sequences_to_table
from hanet.storage import (
    Location,
    delete_tree,
    fingerprint,
    is_file,
    list_files,
    open_input,
    read_bytes,
    write_bytes_atomic,
    write_text_atomic,
)

log = logging.getLogger(__name__)

OutputFormat = Literal["parquet", "same"]
OUTPUT_FORMATS = ("parquet", "same")
DONE_DIR = "_done"
ERRORS_FILE = "_errors.json"
MANIFEST_FILE = "_manifest.json"


class RefineJobError(ValueError):
    """The job as a whole cannot run: bad locations, checkpoint, overrides or empty input."""


class OutputFormatError(ValueError):
    """A refined object cannot be written back in its input's own format."""


# ----------------------------------------------------------------------------------------------
# Locations, discovery and output names


def _same_store(a: Location, b: Location) -> bool:
    # Two S3 locations on different endpoints are different stores, even with equal paths.
    return a.scheme == b.scheme and a.endpoint_override == b.endpoint_override


def _real(loc: Location) -> str:
    return os.path.realpath(loc.path) if loc.scheme == "file" else loc.path.rstrip("/")


def _within(inner: Location, outer: Location) -> bool:
    """True if ``inner`` is ``outer`` or lies below it (symlinks resolved for local paths)."""
    if not _same_store(inner, outer):
        return False
    a, b = _real(inner), _real(outer)
    return a == b or a.startswith(b.rstrip("/") + "/")


def check_locations(source: Location, output: Location) -> None:
    """Refuse an output that is, contains or lies inside the input.

    Raises:
        RefineJobError: The two overlap: refined objects would be read back as inputs on the
            next run, or inputs could be overwritten.
    """
    if _within(output, source):
        raise RefineJobError(
            f"output {output.uri} is the input or lies inside it ({source.uri}); choose an "
            "output prefix outside the input"
        )
    if _within(source, output):
        raise RefineJobError(
            f"input {source.uri} lies inside the output {output.uri}; choose an output prefix "
            "outside the input"
        )


def discover_objects(source: Location) -> tuple[Location, list[str]]:
    """The input root and the relative paths of every supported object under ``source``.

    A single file is its own corpus; its folder is the root, so its name is kept.

    Raises:
        RefineJobError: Nothing there, or no object with a supported suffix.
    """
    try:
        found = list_files(source, suffixes=SUPPORTED_SUFFIXES)
    except FileNotFoundError as err:
        raise RefineJobError(f"{source.uri}: no such file or prefix") from err
    root = source.parent if is_file(source) else source
    if not found:
        raise RefineJobError(
            f"{source.uri}: no input objects (supported: {', '.join(SUPPORTED_SUFFIXES)})"
        )
    return root, [loc.relative_to(root) for loc in found]


def plan_outputs(rels: list[str], output_format: str) -> tuple[dict[str, str], dict[str, str]]:
    """Output name per input: the relative path with its suffix made ``.parquet``, or kept.

    When two inputs would share a name (``a.npz`` and ``a.json``), the non-Parquet ones keep
    their suffix before ``.parquet`` (``a.npz.parquet``), so no output overwrites another.

    Returns:
        ``(names, errors)``: input rel -> output rel, and input rel -> reason for inputs that
        still collide and are therefore not refined.
    """
    if output_format not in OUTPUT_FORMATS:
        raise RefineJobError(f"output format {output_format!r} is not one of {OUTPUT_FORMATS}")
    if output_format == "same":
        return {rel: rel for rel in rels}, {}
    names = {rel: posixpath.splitext(rel)[0] + ".parquet" for rel in rels}
    groups: dict[str, list[str]] = defaultdict(list)
    for rel, name in names.items():
        groups[name].append(rel)
    for members in groups.values():
        if len(members) > 1:
            for rel in members:
                if not rel.lower().endswith(".parquet"):
                    names[rel] = rel + ".parquet"
    errors = {}
    final: dict[str, list[str]] = defaultdict(list)
    for rel, name in names.items():
        final[name].append(rel)
    for name, members in final.items():
        for rel in sorted(members)[1:]:
            errors[rel] = f"output name {name} is already taken by {sorted(members)[0]}"
    return {rel: name for rel, name in names.items() if rel not in errors}, errors


def done_record_location(output: Location, rel: str) -> Location:
    """Where the completion record of input ``rel`` lives."""
    return output.join(DONE_DIR, rel + ".json")


# ----------------------------------------------------------------------------------------------
# Checkpoint and the settings that change results


def effective_config(stored: Config, overrides: list[str] | None) -> Config:
    """The checkpoint's config with ``section.key=value`` overrides for data/refine settings.

    Raises:
        RefineJobError: An override is invalid or touches ``model.*`` (the weights fix it).
    """
    try:
        cfg = stored.replace(list(overrides or []))
    except ConfigError as err:
        raise RefineJobError(f"--set: {err}") from None
    if cfg.model != stored.model:
        raise RefineJobError("--set: model.* is fixed by the checkpoint's weights")
    return cfg


def model_identity(checkpoint_bytes: bytes, cfg: Config, output_format: str) -> str:
    """What must match for an earlier output to count as this run's output."""
    relevant = {
        "checkpoint": hashlib.sha256(checkpoint_bytes).hexdigest(),
        "data": dataclasses.asdict(cfg.data),
        "window_step": cfg.test_window_step(),
        "merge_weights": cfg.refine.merge_weights,
        "format": output_format,
    }
    text = json.dumps(relevant, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------------------------------
# Reading and writing one object


def read_object(location: Location, cfg: Config) -> list[Sequence]:
    """The sequences of one input object, read as the checkpoint's data config says.

    Sequence Parquet carries its own image size and frame rate; where a file lacks them, the
    config's ``data.image_width/height`` and ``data.fps`` fill in, as for the other formats.
    """
    data = cfg.data
    sequences = read_any(location, data.layout, data.representation, data.fps, data.image_size)
    for seq in sequences:
        if seq.image_size is None and seq.representation == "2D":
            seq.image_size = data.image_size
        if seq.fps is None:
            seq.fps = data.fps
    return sequences


def encode_parquet(refined: list[Sequence]) -> bytes:
    """Refined sequences as one sequence-Parquet file (pred = refined poses)."""
    buffer = io.BytesIO()
    pq.write_table(sequences_to_table(refined), buffer, compression="zstd")
    return buffer.getvalue()


def _merged_poses(seq: Sequence, original: np.ndarray, where: str) -> np.ndarray:
    """Refined poses in the original entry's shape; missing joints keep the input's marker
    (NaN or -1), so a reader of the output sees them missing exactly as in the input."""
    original = np.asarray(original)
    if original.size != seq.pred.size or original.dtype == object:
        raise OutputFormatError(
            f"{where}: the stored poses {original.shape} do not map one-to-one onto the refined "
            f"{seq.pred.shape}; use output format 'parquet'"
        )
    stored = original.astype(np.float32).reshape(seq.pred.shape)
    merged = np.where(seq.observed()[..., None], seq.pred, stored)
    dtype = original.dtype if np.issubdtype(original.dtype, np.floating) else np.float32
    return merged.reshape(original.shape).astype(dtype)


def encode_npz(location: Location, refined: list[Sequence], representation: str) -> bytes:
    """The input detections npz with its pose entries replaced by the refined poses.

    Every other key (image names, image shapes, ...) is copied unchanged. Entries stay one per
    sequence, in the input's order, as an object array or a stacked array like the input.
    """
    arrays = load_npz(location)
    key = next((k for k in POSE_KEYS[representation] if k in arrays), None)
    if key is None:
        raise OutputFormatError(f"{location.uri}: no pose array to replace")
    entries = arrays[key]
    if len(entries) != len(refined):
        raise OutputFormatError(
            f"{location.uri}: {len(entries)} pose entries but {len(refined)} refined sequences"
        )
    merged = [
        _merged_poses(seq, entry, f"{location.uri}: sequence {i}")
        for i, (seq, entry) in enumerate(zip(refined, entries))
    ]
    if entries.dtype == object:
        out = np.empty(len(merged), dtype=object)
        for i, poses in enumerate(merged):
            out[i] = poses
    else:
        out = np.stack(merged)
    arrays = {**arrays, key: out}
    buffer = io.BytesIO()
    # Object arrays need pickle to be written; readers load them with hanet.readers.load_npz.
    np.savez_compressed(buffer, allow_pickle=True, **arrays)
    return buffer.getvalue()


def encode_keypoint_json(location: Location, refined: list[Sequence]) -> bytes:
    """The input's COCO-style keypoint results with refined x, y and the original scores.

    The detection kept per track and frame is the one :func:`hanet.readers.read_keypoint_json`
    keeps (the first with the highest score); its other fields (image id, track id, category,
    score) are kept. Lower-scoring duplicates were never refined and are left out. A joint with
    score 0 was missing and keeps its original coordinates, so it still reads as missing.

    Tracks are matched to the refined sequences in the reader's order (tracks sorted by the
    text of their id), and every match is checked against the stored confidences, so a change
    in the reader cannot silently put one track's poses on another.
    """
    document = json.loads(read_bytes(location))
    container_key = None
    detections = document
    if isinstance(document, dict):
        container_key = "annotations" if "annotations" in document else "results"
        detections = document[container_key]
    ordered = sorted(best_per_track(detections).items(), key=lambda kv: str(kv[0]))
    if len(ordered) != len(refined):
        raise OutputFormatError(
            f"{location.uri}: {len(ordered)} tracks but {len(refined)} refined sequences"
        )
    kept: dict[int, dict[str, Any]] = {}  # id(detection) -> refined copy
    for (track_id, frames), seq in zip(ordered, refined):
        index = {name: t for t, name in enumerate(seq.frame_names or ())}
        for frame, det in frames.items():
            t = index.get(str(frame))  # the reader names frames by the text of their image id
            triples = np.asarray(det["keypoints"], dtype=np.float64).reshape(-1, 3)
            scores = np.nan_to_num(triples[:, 2].astype(np.float32), nan=0.0)
            if t is None or (
                seq.confidence is not None and not np.array_equal(scores, seq.confidence[t])
            ):
                raise OutputFormatError(
                    f"{location.uri}: cannot match track {track_id!r}, image {frame!r} to the "
                    f"refined sequence {seq.sequence_id!r}"
                )
            observed = seq.observed()[t]
            xy = np.where(observed[:, None], seq.pred[t].astype(np.float64), triples[:, :2])
            triples = np.concatenate([xy, triples[:, 2:]], axis=1)
            kept[id(det)] = {**det, "keypoints": [float(v) for v in triples.reshape(-1)]}
    # The input's order, minus the duplicates that were not kept.
    out = [kept[id(det)] for det in detections if id(det) in kept]
    if container_key is not None:
        document = {**document, container_key: out}
    else:
        document = out
    return json.dumps(document).encode()


def encode_output(
    location: Location, refined: list[Sequence], output_format: str, representation: str
) -> bytes:
    """The bytes of the refined object for ``location``'s input in the chosen format."""
    suffix = location.suffix.lower()
    if output_format == "parquet" or suffix == ".parquet":
        return encode_parquet(refined)
    if suffix == ".npz":
        return encode_npz(location, refined, representation)
    if suffix == ".json":
        return encode_keypoint_json(location, refined)
    raise OutputFormatError(f"{location.uri}: no writer for {suffix!r} files")


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------------
# The per-object work (no Ray) and its Ray Data actor

ROW_COLUMNS = ("input", "output", "status", "sequences", "frames", "seconds", "error", "replaced")


class ObjectRefiner:
    """Refines whole objects: read, check, refine, write atomically, record completion.

    Usable without Ray (a notebook can refine one object with the same code as the job).

    Args:
        refiner: The loaded model.
        cfg: The effective config (checkpoint's plus overrides): how to read inputs.
        source_root: Folder or prefix that input paths are relative to.
        output: Output folder or prefix.
        output_format: ``"parquet"`` or ``"same"`` (the input's own format).
        identity: :func:`model_identity` of this run; done-records must carry it to count.
    """

    def __init__(
        self,
        refiner: Refiner,
        cfg: Config,
        source_root: Location,
        output: Location,
        output_format: str,
        identity: str,
    ) -> None:
        self.refiner = refiner
        self.cfg = cfg
        self.source_root = source_root
        self.output = output
        self.output_format = output_format
        self.identity = identity

    def _read_record(self, rel: str) -> dict[str, Any] | None:
        """The done-record an earlier run left for ``rel``, if readable."""
        record_loc = done_record_location(self.output, rel)
        try:
            return json.loads(read_bytes(record_loc))
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            log.warning("%s: unreadable done-record; refining again", record_loc.uri)
            return None

    def _is_current(self, record: dict[str, Any] | None, input_fp: str) -> bool:
        """Whether ``record`` describes a complete output of this input with this model."""
        if record is None:
            return False
        if record.get("input_fingerprint") != input_fp or record.get("model") != self.identity:
            return False
        try:
            data = read_bytes(self.output.join(record["output"]))
        except (FileNotFoundError, KeyError):
            return False
        return _sha256(data) == record.get("output_sha256")

    @torch.inference_mode()
    def process(self, rel: str, out_rel: str) -> dict[str, Any]:
        """Refine one object unless already done; never raises (errors become the row)."""
        began = time.perf_counter()
        location = self.source_root.join(rel)
        row: dict[str, Any] = {
            "input": rel,
            "output": out_rel,
            "status": "error",
            "sequences": 0,
            "frames": 0,
            "seconds": 0.0,
            "error": "",
            "replaced": "",
        }
        try:
            input_fp = fingerprint(location)
            record = self._read_record(rel)
            if self._is_current(record, input_fp):
                row.update(
                    status="skipped",
                    output=record["output"],
                    sequences=int(record.get("sequences", 0)),
                    frames=int(record.get("frames", 0)),
                )
                return row
            sequences = read_object(location, self.cfg)
            refined = self.refiner.refine_many(sequences)
            data = encode_output(
                location, refined, self.output_format, self.cfg.data.representation
            )
            write_bytes_atomic(self.output.join(out_rel), data)
            frames = int(sum(seq.num_frames for seq in refined))
            previous = (record or {}).get("output")
            self._write_record(rel, out_rel, input_fp, data, len(refined), frames)
            replaced = previous if previous and previous != out_rel else ""
            row.update(status="written", sequences=len(refined), frames=frames, replaced=replaced)
        except Exception as err:  # isolate every failure to its object
            message = str(err) or type(err).__name__
            if location.uri not in message:
                message = f"{location.uri}: {message}"
            row["error"] = f"{type(err).__name__}: {message}"
            log.warning("refine failed: %s", row["error"])
        finally:
            row["seconds"] = time.perf_counter() - began
        return row

    def _write_record(
        self, rel: str, out_rel: str, input_fp: str, data: bytes, sequences: int, frames: int
    ) -> None:
        """Write the done-record, the commit point of one object."""
        record = {
            "input": rel,
            "input_fingerprint": input_fp,
            "output": out_rel,
            "output_sha256": _sha256(data),
            "output_bytes": len(data),
            "model": self.identity,
            "sequences": sequences,
            "frames": frames,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        # The record is the commit point: written only once the output is complete.
        write_text_atomic(
            done_record_location(self.output, rel), json.dumps(record, indent=2, sort_keys=True)
        )


class RefineActor:
    """Ray Data actor: loads the checkpoint once, then refines one object per row.

    Args:
        checkpoint: The checkpoint's bytes, or an ``ObjectRef`` to them (so that a checkpoint
            that lives on the driver's disk reaches actors on other nodes).
        cfg: The effective config, as a plain dict.
        source_root, output, output_format, identity: See :class:`ObjectRefiner`.
        gpu: Run on this actor's GPU.
        threads: Torch intra-op threads per actor; None keeps Ray's setting.
    """

    def __init__(
        self,
        checkpoint: Any,
        cfg: dict[str, Any],
        source_root: Location,
        output: Location,
        output_format: str,
        identity: str,
        gpu: bool = False,
        threads: int | None = None,
    ) -> None:
        import ray

        if threads:
            torch.set_num_threads(threads)
        if isinstance(checkpoint, ray.ObjectRef):
            checkpoint = ray.get(checkpoint)
        config = from_dict(cfg)
        device = torch.device("cuda" if gpu else "cpu")
        model, _ = load_model(io.BytesIO(checkpoint), map_location=device)
        self.worker = ObjectRefiner(
            Refiner(model, config, device=device),
            config,
            source_root,
            output,
            output_format,
            identity,
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        rows = [
            self.worker.process(str(rel), str(out))
            for rel, out in zip(batch["input"], batch["output"])
        ]
        return {column: [row[column] for row in rows] for column in ROW_COLUMNS}


# ----------------------------------------------------------------------------------------------
# The job


@dataclass
class RefineSummary:
    """What a run did. ``frames`` counts frames refined by this run (skipped ones excluded)."""

    output: str
    objects: int = 0
    written: int = 0
    skipped: int = 0
    sequences: int = 0
    frames: int = 0
    seconds: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "objects": self.objects,
            "written": self.written,
            "skipped": self.skipped,
            "errors": len(self.errors),
            "sequences": self.sequences,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "frames_per_s": round(self.frames_per_s, 1),
        }

    def format(self) -> str:
        lines = [
            f"objects: {self.objects} (written {self.written}, skipped {self.skipped} already "
            f"complete, errors {len(self.errors)})",
            f"frames:  {self.frames} refined in {self.seconds:.1f} s "
            f"({self.frames_per_s:.0f} frames/s)",
        ]
        for error in self.errors[:10]:
            lines.append(f"  error: {error['reason']}")
        if len(self.errors) > 10:
            lines.append(f"  ... and {len(self.errors) - 10} more")
        if self.errors:
            lines.append(f"errors manifest: {self.output.rstrip('/')}/{ERRORS_FILE}")
        return "\n".join(lines)


def run_refine(
    checkpoint: Location,
    source: Location,
    output: Location,
    workers: int | None = None,
    gpu: bool = False,
    overrides: list[str] | None = None,
    output_format: str | None = None,
    threads_per_actor: int | None = None,
    limit: int | None = None,
) -> RefineSummary:
    """Refine every supported object under ``source`` into ``output`` on Ray Data.

    Args:
        checkpoint: A HANet checkpoint (local or S3).
        source: Input folder/prefix (or one file); never modified.
        output: Output folder/prefix; must not overlap ``source``.
        workers: Actors in the pool; ``refine.concurrency`` by default.
        gpu: One GPU per actor.
        overrides: ``section.key=value`` for the checkpoint's ``data.*`` / ``refine.*``.
        output_format: ``"parquet"`` or ``"same"``; ``refine.output_format`` by default.
        threads_per_actor: Torch threads per actor; Ray's default when None.
        limit: Only the first ``limit`` objects (by path), as if the job had been stopped
            there; used to test resumption.

    Returns:
        The summary; it is also written to ``output/_manifest.json`` and the failures to
        ``output/_errors.json``.

    Raises:
        RefineJobError: Overlapping locations, an unreadable checkpoint, bad overrides, or no
            input at all. Failures of single objects never raise.
    """
    import ray
    import ray.data

    began = time.perf_counter()
    check_locations(source, output)
    try:
        # One sized read (read_bytes streams in chunks, several times slower for a 1 GB file).
        with open_input(checkpoint) as reader:
            checkpoint_bytes = reader.read()
        stored = from_dict(load_checkpoint(io.BytesIO(checkpoint_bytes))["config"])
    except (OSError, ValueError) as err:
        raise RefineJobError(f"checkpoint {checkpoint.uri}: {err}") from err
    cfg = effective_config(stored, overrides)
    fmt = output_format or cfg.refine.output_format
    root, rels = discover_objects(source)
    names, name_errors = plan_outputs(rels, fmt)
    identity = model_identity(checkpoint_bytes, cfg, fmt)
    items = [{"input": rel, "output": names[rel]} for rel in rels if rel in names]
    if limit is not None:
        items = items[:limit]
    workers = max(1, min(workers or cfg.refine.concurrency, max(1, len(items))))
    log.info(
        "refining %d object(s) from %s into %s with %d actor(s)%s",
        len(items),
        source.uri,
        output.uri,
        workers,
        " on GPU" if gpu else "",
    )
    rows: list[dict[str, Any]] = []
    if items:
        # One put, shared by every actor, instead of the bytes inside each actor's arguments.
        checkpoint_ref = ray.put(checkpoint_bytes)
        dataset = ray.data.from_items(items, override_num_blocks=min(len(items), 200))
        results = dataset.map_batches(
            RefineActor,
            batch_size=1,  # objects differ widely in size; one per call balances the actors
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=cfg.refine.cpus_per_actor,
            num_gpus=1 if gpu else None,
            fn_constructor_kwargs={
                "checkpoint": checkpoint_ref,
                "cfg": cfg.to_dict(),
                "source_root": root,
                "output": output,
                "output_format": fmt,
                "identity": identity,
                "gpu": gpu,
                "threads": threads_per_actor,
            },
        )
        step = max(1, len(items) // 10)
        for row in results.iter_rows():
            rows.append(_plain_row(row))
            if len(rows) % step == 0:
                log.info("%d/%d objects done", len(rows), len(items))
        del checkpoint_ref
    _remove_replaced(rows, set(names.values()), output)
    summary = _summarise(rows, name_errors, root, output, time.perf_counter() - began)
    _write_run_files(summary, cfg, checkpoint, source, output, fmt, identity)
    return summary


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "input": str(row["input"]),
        "output": str(row["output"]),
        "status": str(row["status"]),
        "sequences": int(row["sequences"]),
        "frames": int(row["frames"]),
        "seconds": float(row["seconds"]),
        "error": str(row["error"]),
        "replaced": str(row["replaced"]),
    }


def _remove_replaced(rows: list[dict[str, Any]], planned: set[str], output: Location) -> None:
    """Delete outputs that earlier runs wrote under names this run no longer uses for those
    inputs (the format changed), so each input keeps exactly one output. Done here, after
    every actor finished, because such a name may now belong to another input's output."""
    for row in rows:
        stale = row["replaced"]
        if stale and stale not in planned:
            delete_tree(output.join(stale))
            log.info("%s: removed the earlier output of %s", output.join(stale).uri, row["input"])


def _summarise(
    rows: list[dict[str, Any]],
    name_errors: dict[str, str],
    root: Location,
    output: Location,
    seconds: float,
) -> RefineSummary:
    rows = sorted(rows, key=lambda r: r["input"])
    summary = RefineSummary(output=output.uri, objects=len(rows) + len(name_errors))
    summary.rows = rows
    summary.seconds = seconds
    for row in rows:
        if row["status"] == "written":
            summary.written += 1
            summary.sequences += row["sequences"]
            summary.frames += row["frames"]
        elif row["status"] == "skipped":
            summary.skipped += 1
        else:
            summary.errors.append({"object": root.join(row["input"]).uri, "reason": row["error"]})
    for rel, reason in sorted(name_errors.items()):
        uri = root.join(rel).uri
        summary.errors.append({"object": uri, "reason": f"{uri}: {reason}"})
    return summary


def _write_run_files(
    summary: RefineSummary,
    cfg: Config,
    checkpoint: Location,
    source: Location,
    output: Location,
    output_format: str,
    identity: str,
) -> None:
    """``_errors.json`` (always, so a clean rerun clears old errors) and ``_manifest.json``."""
    write_text_atomic(output.join(ERRORS_FILE), json.dumps(summary.errors, indent=2) + "\n")
    manifest = {
        "format": "hanet-refined",
        **summary.to_dict(),
        "input": source.uri,
        "checkpoint": checkpoint.uri,
        "model": identity,
        "output_format": output_format,
        "layout": cfg.data.layout,
        "representation": cfg.data.representation,
        "objects_table": [
            {k: r[k] for k in ("input", "output", "status", "sequences", "frames")}
            for r in summary.rows
        ],
    }
    write_text_atomic(output.join(MANIFEST_FILE), json.dumps(manifest, indent=2) + "\n")
