"""Refine a whole corpus of estimator outputs on Ray Data: one refined object per input object.

Error isolation
    Reading, checking, refining and writing one object happen inside one ``try``; whatever goes
    wrong becomes that object's error row (its reason names the object) and the job goes on.
    Refined poses are checked before they are written (:mod:`hanet.output_checks`): NaN or
    implausible output is an error row, never an object.

Storage outages
    When the object store stops answering (a restart, a network blip), an object is tried
    again after growing pauses (:data:`RETRY_DELAYS_S`, about 15 s in all); every step is
    idempotent, so a retry never duplicates anything. If it still does not answer, the job
    stops with one error naming the endpoint: the objects finished so far are kept, and a rerun
    continues from them.

The per-object work lives in :class:`ObjectRefiner`, which needs no Ray; :class:`RefineActor`
is its Ray Data wrapper, which loads the checkpoint once per actor. :mod:`hanet.records` holds
the output plan, the done-records and the model identity that make a rerun resume.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import numpy as np
import ray
import ray.data
import torch

from hanet.checkpoint import check_checkpoint, load_model
from hanet.config import Config, from_dict
from hanet.data.schema import Sequence, units_warning
from hanet.formats.dispatch import encode_as, read_any
from hanet.io.errors import EndpointUnreachable, translated
from hanet.io.location import Location
from hanet.io.retry import retry_unreachable
from hanet.io.storage import delete_tree, fingerprint, open_input, write_bytes_atomic
from hanet.output_checks import check_refined
from hanet.records import (
    check_locations,
    discover_objects,
    effective_config,
    is_current,
    model_identity,
    plan_outputs,
    read_done_record,
    write_done_record,
)
from hanet.refine_summary import RefineSummary, summarise, write_run_files
from hanet.refiner import Refiner

log = logging.getLogger(__name__)

__all__ = ["ObjectRefiner", "RefineActor", "read_object", "run_refine"]


def read_object(location: Location, cfg: Config) -> list[Sequence]:
    """The sequences of one input object, read as the checkpoint's data config says.

    Sequence Parquet carries its own image size and frame rate; where a file lacks them, the
    config's ``data.image_width/height`` and ``data.fps`` fill in, as for the other formats.
    """
    data = cfg.data
    sequences = read_any(
        location, data.joint_layout, data.representation, data.fps, data.image_size
    )
    for seq in sequences:
        if seq.image_size is None and seq.representation == "2D":
            seq.image_size = data.image_size
        if seq.fps is None:
            seq.fps = data.fps
    return sequences


# ----------------------------------------------------------------------------------------------
# The per-object work (no Ray) and its Ray Data actor

ROW_COLUMNS = tuple(
    "input output status sequences frames seconds error replaced retries warning".split()
)
# Pauses before each new attempt at an object while the storage does not answer.
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)
# The status of an object the storage never answered for: the job stops (see run_refine).
UNAVAILABLE = "unavailable"


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
            "retries": 0,
            "warning": "",
        }
        # Any S3 location of the job tells a storage outage from the object's own problem.
        store = location if location.scheme == "s3" else self.output

        def retrying(error: BaseException, delay: float) -> None:
            row["retries"] += 1
            log.warning("%s: %s; trying again in %.1f s", location.uri, error, delay)

        try:
            retry_unreachable(
                lambda: self._refine_one(location, rel, out_rel, row),
                store,
                RETRY_DELAYS_S,
                retrying,
            )
        except Exception as err:  # isolate every failure to its object
            message = str(err) or type(err).__name__
            if location.uri not in message:
                message = f"{location.uri}: {message}"
            row["status"] = UNAVAILABLE if getattr(err, "transient", False) else "error"
            row["error"] = f"{type(err).__name__}: {message}"
            log.warning("refine failed: %s", row["error"])
        row["seconds"] = time.perf_counter() - began
        return row

    def _refine_one(self, location: Location, rel: str, out_rel: str, row: dict[str, Any]) -> None:
        """One attempt at one object; fills ``row`` in, raises on any failure."""
        input_fp = fingerprint(location)
        record = read_done_record(self.output, rel)
        if is_current(record, self.output, input_fp, self.identity):
            row.update(
                status="skipped",
                output=record["output"],
                sequences=int(record.get("sequences", 0)),
                frames=int(record.get("frames", 0)),
            )
            return
        sequences = read_object(location, self.cfg)
        warnings = [text for text in map(units_warning, sequences) if text]
        if warnings:
            more = f" (and {len(warnings) - 1} more sequence(s))" if len(warnings) > 1 else ""
            row["warning"] = warnings[0] + more
        refined = self.refiner.refine_many(sequences)
        for original, result in zip(sequences, refined):
            check_refined(original, result)
        data = encode_as(location, refined, self.output_format, self.cfg.data.representation)
        write_bytes_atomic(self.output.join(out_rel), data)
        frames = int(sum(seq.num_frames for seq in refined))
        previous = (record or {}).get("output")
        write_done_record(
            self.output, rel, out_rel, input_fp, data, self.identity, len(refined), frames
        )
        replaced = previous if previous and previous != out_rel else ""
        row.update(status="written", sequences=len(refined), frames=frames, replaced=replaced)


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
        checkpoint_name: str | None = None,
    ) -> None:
        if threads:
            torch.set_num_threads(threads)
        if isinstance(checkpoint, ray.ObjectRef):
            checkpoint = ray.get(checkpoint)
        config = from_dict(cfg)
        device = torch.device("cuda" if gpu else "cpu")
        model, _ = load_model(checkpoint, map_location=device, name=checkpoint_name)
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
        RefineJobError: Overlapping locations, bad overrides, or no input at all.
        CheckpointError: The checkpoint is not one, is damaged, or its weights do not fit its
            config (checked here, before any actor starts).
        StorageError: The storage refused access, or stopped answering for good mid-job (the
            objects finished until then are kept). Failures of single objects never raise.
    """
    began = time.perf_counter()
    check_locations(source, output)
    # One sized read (read_bytes streams in chunks, several times slower for a 1 GB file).
    with translated(checkpoint), open_input(checkpoint) as reader:
        checkpoint_bytes = reader.read()
    stored = check_checkpoint(checkpoint_bytes, name=checkpoint.uri)
    cfg = effective_config(stored, overrides)
    fmt = output_format or cfg.refine.output_format
    root, rels, not_inputs = discover_objects(source)
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
                "checkpoint_name": checkpoint.uri,
            },
        )
        step = max(1, len(items) // 10)
        # Closed explicitly: leaving the loop by an exception then shuts the actors down at
        # once, instead of when the traceback holding the iterator is collected.
        stream = iter(results.iter_rows())
        with contextlib.closing(stream):  # type: ignore[type-var]
            _follow(stream, rows, len(items), step)
        del checkpoint_ref
    _remove_replaced(rows, set(names.values()), output)
    summary = summarise(
        rows, name_errors, root, output, time.perf_counter() - began, not_inputs=not_inputs
    )
    write_run_files(summary, cfg, checkpoint, source, output, fmt, identity)
    return summary


def _follow(stream: Any, rows: list[dict[str, Any]], total: int, step: int) -> None:
    """Collect the job's rows into ``rows``, logging progress; stop the job with one error when
    the storage never answered for an object (each object finished is kept)."""
    for row in stream:
        rows.append(_plain_row(row))
        if rows[-1]["status"] == UNAVAILABLE:
            done = sum(r["status"] in ("written", "skipped") for r in rows)
            raise EndpointUnreachable(
                f"{rows[-1]['error'].split(': ', 1)[-1]} (tried for {sum(RETRY_DELAYS_S):.0f} s); "
                f"stopped: {done} of {total} object(s) are complete and kept, a rerun continues "
                "from them"
            )
        if len(rows) % step == 0:
            log.info("%d/%d objects done", len(rows), total)


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
        "retries": int(row["retries"]),
        "warning": str(row["warning"]),
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
