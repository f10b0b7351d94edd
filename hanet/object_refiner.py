"""Refine whole objects (files) with one loaded model: read, cut, run, merge, check, write and
record each, with the windows of many objects packed into full batches.

Packing
    Objects differ widely in size, and most hold a few short sequences: one forward pass per
    object would run small batches and leave the model waiting for each read and write. Here a
    call takes several objects; their reads (and done-record checks) run on a small thread
    pool while the model runs, their windows are packed into batches of
    ``refine.batch_windows`` across object boundaries, and each object's merge, checks and
    atomic write go back to the pool as soon as its last window has run. Storage waits (S3
    round trips) then overlap the model's arithmetic instead of adding to it.

Commit
    Each object's output and then its done-record are written atomically but not synced one
    by one; before a call returns, one :func:`hanet.io.storage.make_durable` syncs them all,
    on several threads at once. Synced write by write (four fsyncs per object, file and
    folder twice) they cost about 0.8 ms of CPU and 1.3-2 ms of waiting per object, against
    0.4 and 0.8 ms synced together one after another (of the 8-11 ms an object of a few
    clips cost besides the model); synced at once, the waiting halved again. A row says
    ``written`` only once that sync succeeded. If power fails before it, an object may keep a
    done-record without its output's bytes; the record's SHA-256 then no longer matches, and
    a rerun refines the object again.

Error isolation
    Everything that can go wrong with one object (it cannot be read, does not fit the
    checkpoint, its refined poses are not finite or not plausible, its output cannot be
    written) becomes that object's error row, naming it; the other objects of the call go on.
    When the object store stops answering, the step is tried again after growing pauses
    (every step is idempotent); an object it never answered for is marked ``unavailable``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from collections.abc import Sequence as Seq
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from hanet.config import Config
from hanet.data.plausibility import Reference, reference, references
from hanet.data.schema import Sequence, units_warning
from hanet.formats.dispatch import encode_as, read_any
from hanet.io.location import Location
from hanet.io.retry import retry_unreachable
from hanet.io.storage import (
    delete_tree,
    fingerprint_and_content,
    make_durable,
    write_bytes_atomic,
)
from hanet.output_checks import check_refined_many
from hanet.records import (
    done_record_location,
    is_current,
    read_done_record,
    write_done_record,
)
from hanet.refiner import Cut, Refiner

log = logging.getLogger(__name__)

__all__ = ["ROW_COLUMNS", "UNAVAILABLE", "ObjectRefiner", "read_object"]

ROW_COLUMNS = tuple(
    "input output status sequences frames seconds error replaced retries warning "
    "displacement".split()
)
# Pauses before each new attempt at a step while the storage does not answer (about 15 s).
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)
# The status of an object the storage never answered for: the job stops (see run_refine).
UNAVAILABLE = "unavailable"

# Files synced at once at the end of a call (make_durable): the disk commits them together.
SYNC_THREADS = 8

T = TypeVar("T")
# An object written but not yet synced: its row, and its output and done-record.
_Written = tuple[dict[str, Any], list[Location]]


def read_object(location: Location, cfg: Config, data: bytes | None = None) -> list[Sequence]:
    """The sequences of one input object, read as the checkpoint's data config says (from
    ``data``, its content, when already read).

    Sequence Parquet carries its own image size and frame rate; where a file lacks them, the
    config's ``data.image_width/height`` and ``data.fps`` fill in, as for the other formats.
    """
    wanted = cfg.data
    sequences = read_any(
        location, wanted.joint_layout, wanted.representation, wanted.fps, wanted.image_size, data
    )
    for seq in sequences:
        if seq.image_size is None and seq.representation == "2D":
            seq.image_size = wanted.image_size
        if seq.fps is None:
            seq.fps = wanted.fps
    return sequences


def new_row(rel: str, out_rel: str) -> dict[str, Any]:
    """An object's result row before anything was tried (see :data:`ROW_COLUMNS`)."""
    return {
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
        "displacement": float("nan"),
    }


@dataclass
class _Read:
    """One object read and cut, waiting for its windows to run."""

    row: dict[str, Any]
    location: Location
    input_fp: str
    record: dict[str, Any] | None
    sequences: list[Sequence]
    refs: list[Reference]  # each input's body size and extent, to judge warnings and outputs
    cut: Cut  # every sequence's windows, joined
    outputs: np.ndarray | None = None  # every window's output, once all have run
    parts: list[np.ndarray] = dataclasses.field(default_factory=list)  # outputs so far
    ran: int = 0  # windows run so far
    failed: bool = False  # the model failed on a pass with its windows (the row says so)

    @property
    def windows(self) -> int:
        return len(self.cut.starts)

    @property
    def waiting(self) -> np.ndarray:
        """The windows not run yet."""
        return self.cut.windows[self.ran :]


class ObjectRefiner:
    """Refines whole objects; usable without Ray (a notebook can refine one object with the
    same code as the job).

    Args:
        refiner: The loaded model.
        cfg: The effective config (checkpoint's plus overrides): how to read inputs.
        source_root: Folder or prefix that input paths are relative to.
        output: Output folder or prefix.
        output_format: ``"parquet"`` or ``"same"`` (the input's own format).
        identity: :func:`hanet.records.model_identity` of this run; done-records must carry it
            to count.
        io_threads: Threads reading and writing objects while the model runs.
    """

    def __init__(
        self,
        refiner: Refiner,
        cfg: Config,
        source_root: Location,
        output: Location,
        output_format: str,
        identity: str,
        io_threads: int = 4,
    ) -> None:
        self.refiner = refiner
        self.cfg = cfg
        self.source_root = source_root
        self.output = output
        self.output_format = output_format
        self.identity = identity
        self.io_threads = max(1, io_threads)

    def process(self, rel: str, out_rel: str) -> dict[str, Any]:
        """Refine one object unless already done; never raises (errors become the row)."""
        return self.process_many([(rel, out_rel)])[0]

    @torch.inference_mode()
    def process_many(self, items: Seq[tuple[str, str]]) -> list[dict[str, Any]]:
        """Refine objects ``(input, output)`` (relative paths), their windows packed together;
        never raises: one row per object, in order, says what happened to it.

        Each row's ``seconds`` is the object's share (by frames) of the call's time, so that
        the rows of a job add up to its actors' busy time.
        """
        began = time.perf_counter()
        rows = [new_row(rel, out_rel) for rel, out_rel in items]
        pending: list[_Read] = []
        finishing: list[Future[_Written | None]] = []
        size = self.refiner.batch_windows
        with ThreadPoolExecutor(self.io_threads, thread_name_prefix="hanet-io") as pool:
            reads = [pool.submit(self._guarded, row, self._read, row) for row in rows]
            for future in reads:
                read = future.result()
                if read is None:  # already done, or failed (the row says which)
                    continue
                pending.append(read)
                waiting = sum(item.windows - item.ran for item in pending)
                if waiting >= size:  # whole batches only: the rest waits for the next reads
                    finishing += self._run(pending, pool, waiting // size * size)
                    pending = [item for item in pending if item.outputs is None and not item.failed]
            finishing += self._run(pending, pool, None)
            written = [done for done in (future.result() for future in finishing) if done]
        self._commit(written)
        self._share_time(rows, time.perf_counter() - began)
        return rows

    # -- steps ------------------------------------------------------------------------------

    def _guarded(
        self, row: dict[str, Any], step: Callable[[dict[str, Any]], T], *args: Any
    ) -> T | None:
        """``step(*args)`` with storage outages retried; any failure becomes ``row``'s error."""
        location = self.source_root.join(row["input"])
        # Any S3 location of the job tells a storage outage from the object's own problem.
        store = location if location.scheme == "s3" else self.output

        def retrying(error: BaseException, delay: float) -> None:
            row["retries"] += 1
            log.warning("%s: %s; trying again in %.1f s", location.uri, error, delay)

        try:
            return retry_unreachable(lambda: step(*args), store, RETRY_DELAYS_S, retrying)
        except Exception as err:  # isolate every failure to its object
            message = str(err) or type(err).__name__
            if location.uri not in message:
                message = f"{location.uri}: {message}"
            row["status"] = UNAVAILABLE if getattr(err, "transient", False) else "error"
            row["error"] = f"{type(err).__name__}: {message}"
            log.warning("refine failed: %s", row["error"])
            return None

    def _read(self, row: dict[str, Any]) -> _Read | None:
        """Read and cut one object; None (the row filled in) when it is already complete."""
        location = self.source_root.join(row["input"])
        # Read once: fingerprinted, and (unless it is already done) parsed from the same bytes.
        input_fp, content = fingerprint_and_content(location)
        record = read_done_record(self.output, row["input"])
        if is_current(record, self.output, input_fp, self.identity):
            assert record is not None
            row.update(
                status="skipped",
                output=record["output"],
                sequences=int(record.get("sequences", 0)),
                frames=int(record.get("frames", 0)),
                displacement=float(record.get("displacement", float("nan"))),
            )
            return None
        sequences = read_object(location, self.cfg, content)
        refs = _references(sequences)
        warnings = [text for text in map(units_warning, sequences, refs) if text]
        if warnings:
            more = f" (and {len(warnings) - 1} more sequence(s))" if len(warnings) > 1 else ""
            row["warning"] = warnings[0] + more
        cut = self.refiner.cut_many(sequences)
        return _Read(row, location, input_fp, record, sequences, refs, cut)

    def _run(
        self, reads: list[_Read], pool: ThreadPoolExecutor, count: int | None
    ) -> list[Future[_Written | None]]:
        """Run the first ``count`` (None: all) windows that ``reads`` have waiting, in their
        order; hand each object whose windows have all run to the pool to be finished.

        Between reads ``count`` is a whole number of batches: an object's windows may then
        run in two passes, but no pass but a call's last runs a part-filled batch. A forward
        pass of the demo model costs about 2.4 ms besides its windows (0.65 ms each in a batch
        of 64), and more in a batch of a few. At window step 21 (about 15 windows per file of 4
        clips), 405 such files in calls of 16 took 112 batches instead of 166 when each pack ran
        whole, and 12.4 instead of 13.4 ms of the model per file (one process, alternated runs).
        """
        if not reads:
            return []
        waiting = np.concatenate([read.waiting for read in reads])
        count = len(waiting) if count is None else count
        try:
            outputs = self.refiner.run_windows(waiting[:count]) if count else waiting[:0]
        except Exception as err:  # the model failed on this pass: each object in it says so
            offset = 0
            for read in reads:
                if offset < count:  # some of its windows were in the pass
                    self._guarded(read.row, _raise, err)
                    read.failed = True
                offset += read.windows - read.ran
            return []
        done, offset = [], 0
        for read in reads:
            take = min(read.windows - read.ran, count - offset)
            read.parts.append(outputs[offset : offset + take])
            read.ran, offset = read.ran + take, offset + take
            if read.ran == read.windows:
                read.outputs = read.parts[0] if len(read.parts) == 1 else np.concatenate(read.parts)
                done.append(read)
        return [pool.submit(self._guarded, read.row, self._finish, read) for read in done]

    def _finish(self, read: _Read) -> _Written:
        """Merge, check, encode and write one object and then its done-record, unsynced;
        :meth:`_commit` makes them durable."""
        row, out_rel = read.row, read.row["output"]
        assert read.outputs is not None
        merged = self.refiner.merge_many(read.sequences, read.cut, read.outputs)
        moved = check_refined_many(read.sequences, merged, read.refs)
        refined = [dataclasses.replace(seq, pred=pred) for seq, pred in zip(read.sequences, merged)]
        frames = sum(seq.num_frames for seq in read.sequences)
        displacement = (
            sum(d * seq.num_frames for d, seq in zip(moved, read.sequences)) / frames
            if frames
            else 0.0
        )
        data = encode_as(read.location, refined, self.output_format, self.cfg.data.representation)
        target = self.output.join(out_rel)
        write_bytes_atomic(target, data, durable=False)
        record = write_done_record(
            self.output,
            row["input"],
            out_rel,
            read.input_fp,
            data,
            self.identity,
            len(refined),
            frames,
            displacement=displacement,
            durable=False,
        )
        previous = (read.record or {}).get("output")
        replaced = previous if previous and previous != out_rel else ""
        row.update(
            sequences=len(refined),
            frames=frames,
            replaced=replaced,
            displacement=displacement,
        )
        return row, [target, record]

    def _commit(self, written: list[_Written]) -> None:
        """Sync the outputs and done-records of ``written`` at once (on threads of their own),
        then mark their rows ``written``; if the disk refuses, each row says so and its
        done-record is removed, so that a rerun refines the object again instead of trusting
        unsynced bytes."""
        try:
            make_durable(
                (location for _, files in written for location in files), threads=SYNC_THREADS
            )
        except Exception as err:  # a disk that fails an fsync: nothing of this call counts
            for row, _ in written:
                where = self.output.join(row["output"]).uri
                row["error"] = f"{type(err).__name__}: {where}: could not be synced ({err})"
                log.warning("refine failed: %s", row["error"])
                with contextlib.suppress(Exception):
                    delete_tree(done_record_location(self.output, row["input"]))
            return
        for row, _ in written:
            row["status"] = "written"

    @staticmethod
    def _share_time(rows: list[dict[str, Any]], seconds: float) -> None:
        frames = sum(row["frames"] for row in rows if row["status"] == "written")
        for row in rows:
            if not frames:
                row["seconds"] = seconds / len(rows)
            elif row["status"] == "written":
                row["seconds"] = seconds * row["frames"] / frames
            else:
                row["seconds"] = 0.0


def _references(sequences: list[Sequence]) -> list[Reference]:
    """Each input's body size and extent (one pass when they share a representation)."""
    if len({seq.representation for seq in sequences}) > 1:
        return [reference(seq.pred, seq.observed(), seq.representation) for seq in sequences]
    poses, masks = [seq.pred for seq in sequences], [seq.observed() for seq in sequences]
    return references(poses, masks, sequences[0].representation if sequences else "2D")


def _raise(err: BaseException) -> None:
    raise err
