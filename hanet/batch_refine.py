"""Refine a whole corpus of estimator outputs on Ray Data: one refined object per input object.

Error isolation
    Whatever goes wrong with one object (reading, checking, refining, writing) becomes that
    object's error row (its reason names the object) and the job goes on. Refined poses are
    checked before they are written (:mod:`hanet.output_checks`): NaN or implausible output is
    an error row, never an object.

Storage outages
    When the object store stops answering (a restart, a network blip), a step of an object is
    tried again after growing pauses (:data:`hanet.object_refiner.RETRY_DELAYS_S`, about 15 s
    in all); every step is idempotent, so a retry never duplicates anything. If it still does
    not answer, the job stops with one error naming the endpoint: the objects finished so far
    are kept, and a rerun continues from them.

The per-object work lives in :class:`hanet.object_refiner.ObjectRefiner`, which needs no Ray
and packs the windows of several objects into full batches; :class:`RefineActor` is its Ray
Data wrapper, which loads the checkpoint once per actor and takes one call of up to
``refine.batch_objects`` objects at a time (:func:`plan_calls`). :mod:`hanet.records` holds the
output plan, the done-records and the model identity that make a rerun resume.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Any

import numpy as np
import ray
import ray.data
import torch

from hanet.checkpoint import check_checkpoint, load_model
from hanet.config import from_dict
from hanet.io.errors import EndpointUnreachable, translated
from hanet.io.location import Location
from hanet.io.storage import delete_tree, open_input, remove_temporaries
from hanet.object_refiner import (
    RETRY_DELAYS_S,
    ROW_COLUMNS,
    UNAVAILABLE,
    ObjectRefiner,
)
from hanet.records import (
    check_locations,
    discover_objects,
    effective_config,
    model_identity,
    plan_outputs,
)
from hanet.refine_summary import RefineSummary, summarise, write_run_files
from hanet.refiner import Refiner

log = logging.getLogger(__name__)

__all__ = ["RefineActor", "plan_calls", "run_refine"]

# The fewest calls per actor a job is cut into, where it has the objects (see plan_calls).
CALLS_PER_ACTOR = 16
# Blocks the job's call list is put into: one call each up to this many (a block of several
# calls is one Ray task, run call after call on one actor).
MAX_BLOCKS = 4096


class RefineActor:
    """Ray Data actor: loads the checkpoint once, then refines the objects of each batch with
    their windows packed together (:meth:`ObjectRefiner.process_many`).

    Args:
        checkpoint: The checkpoint's bytes, or an ``ObjectRef`` to them as a ``uint8`` array (so
            that a checkpoint that lives on the driver's disk reaches actors on other nodes).
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
            checkpoint = memoryview(ray.get(checkpoint))  # the object store's own bytes
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
            io_threads=config.refine.io_threads,
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        """One row per object of the batch's calls (:func:`plan_calls`; one call per batch)."""
        rows: list[dict[str, Any]] = []
        for inputs, outputs in zip(batch["inputs"], batch["outputs"]):
            rows += self.worker.process_many(
                [(str(rel), str(out)) for rel, out in zip(inputs, outputs)]
            )
        return {column: [row[column] for row in rows] for column in ROW_COLUMNS}


def plan_calls(
    items: list[dict[str, str]], workers: int, batch_objects: int
) -> list[dict[str, list[str]]]:
    """The job's objects (``{"input", "output"}`` each, in order) cut into actor calls of at
    most ``batch_objects`` objects, as even as the count allows, and into at least
    :data:`CALLS_PER_ACTOR` calls per actor where there are enough objects.

    Several objects per call let their windows fill batches; the floor spreads a small job over
    the pool and bounds its tail, where one actor runs its last call while the others have
    finished: a call is then at most a sixteenth of an actor's share (for the paper model, calls
    of 16 files of 4 clips take some 50 s each on a CPU core). Ray Data queues two calls on
    each actor, the first one ready included: cut into one call per actor, a job ran both calls
    on one actor while the other stayed idle (the paper model, 11 files and 2 actors: 31 s of
    refining; cut into 6 calls, 18.5 s on both).

    Each call is one row of the job's dataset, so the calls are exactly these: Ray Data cutting
    a stream of object rows into batches of ``batch_objects`` left a call of the one or two
    objects at the end of each input block (of 507 files, 17 of every 46 calls held one object).
    On a CPU those remnants cost little (alternated runs of the 507 files at window step 21:
    within the runs' noise); a GPU pass of one small object's windows wastes most of the device.

    Returns:
        Calls ``{"inputs": [...], "outputs": [...]}``, the objects in their order.
    """
    if not items:
        return []
    count = max(math.ceil(len(items) / batch_objects), min(len(items), workers * CALLS_PER_ACTOR))
    size, extra = divmod(len(items), count)  # the first ``extra`` calls take one more
    calls, begin = [], 0
    for index in range(count):
        end = begin + size + (index < extra)
        chunk = items[begin:end]
        calls.append(
            {"inputs": [i["input"] for i in chunk], "outputs": [i["output"] for i in chunk]}
        )
        begin = end
    return calls


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
    # A job killed mid-write (its driver or an actor) can leave a local atomic write's
    # temporary (on S3 an object is one PUT: none); the objects it was writing have no
    # done-record, so this run writes them again. After the input is listed, so that a storage
    # that refuses or does not answer is named by the input.
    for rel in remove_temporaries(output) if output.scheme == "file" else []:
        log.info("%s: removed a temporary an interrupted run left", output.join(rel).uri)
    names, name_errors = plan_outputs(rels, fmt)
    identity = model_identity(checkpoint_bytes, cfg, fmt)
    items = [{"input": rel, "output": names[rel]} for rel in rels if rel in names]
    if limit is not None:
        items = items[:limit]
    workers = max(1, min(workers or cfg.refine.concurrency, max(1, len(items))))
    calls = plan_calls(items, workers, cfg.refine.batch_objects)
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
        # As an array: an actor's ray.get is then a view of the shared-memory copy, where bytes
        # were unpickled into a private copy (4 s of 1.15 GB per actor for the paper model).
        checkpoint_ref = ray.put(np.frombuffer(checkpoint_bytes, np.uint8))
        dataset = ray.data.from_items(calls, override_num_blocks=min(len(calls), MAX_BLOCKS))
        results = dataset.map_batches(
            RefineActor,
            batch_size=1,  # one call
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
        rows,
        name_errors,
        root,
        output,
        time.perf_counter() - began,
        not_inputs=not_inputs,
        displacement_limit=cfg.refine.displacement_limit,
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
        "displacement": float(row["displacement"]),
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
