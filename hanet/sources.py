"""The inputs of a preprocessing run: what to read (published pairs or pose files), their
content fingerprints, and reading one of them into validated sequences (inside a Ray task)."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass
from typing import Any

from hanet.config import Config
from hanet.data.schema import SchemaError, Sequence
from hanet.data.splits import assign_split
from hanet.dataset import DatasetError
from hanet.formats.common import ReadError
from hanet.formats.dispatch import SUPPORTED_SUFFIXES, read_any
from hanet.formats.npz_layout import POSE_KEYS
from hanet.formats.published import (
    PublishedPair,
    find_published_pairs,
    find_published_root,
    read_published_pair,
)
from hanet.formats.safe_npz import npz_shapes
from hanet.io.location import Location, parse_location
from hanet.io.storage import exists, fingerprint, list_files

__all__ = ["Source", "discover_sources", "read_source", "source_fingerprints", "sources_for"]


@dataclass(frozen=True)
class Source:
    """One input of a preprocessing run and the dataset/estimator names to take from it."""

    location: Location
    dataset: str | None = None
    estimator: str | None = None

    @property
    def label(self) -> str:
        names = "/".join(n for n in (self.dataset, self.estimator) if n)
        return f"{self.location.uri}{f' ({names})' if names else ''}"


def sources_for(cfg: Config, inputs: Seq[Location] = ()) -> list[Source]:
    """The run's inputs: ``inputs`` (the command line's, with ``data.dataset`` and
    ``data.estimator``) when given, else ``data.sources``.

    Raises:
        DatasetError: neither gives an input.
    """
    if inputs:
        return [Source(loc, cfg.data.dataset, cfg.data.estimator) for loc in inputs]
    if not cfg.data.sources:
        raise DatasetError("no input: give --input, or list data.sources in the config")
    return [Source(parse_location(s.path), s.dataset, s.estimator) for s in cfg.data.sources]


def discover_sources(
    cfg: Config, sources: Seq[Source] | Location, slots: int = 1
) -> list[dict[str, Any]]:
    """Read tasks: published (gt, detections) pairs, or any supported files, of every source;
    each task records the index of its source. Published pairs are cut into chunks of
    sequences sized so that their tasks number about ``slots`` (the tasks that can run at
    once, times a few), within :data:`CHUNK_SEQUENCES`.

    Raises:
        DatasetError: a source does not exist, holds no input, or holds the published layout
            but no pair for its dataset and estimator.
    """
    if isinstance(sources, Location):
        sources = [Source(sources, cfg.data.dataset, cfg.data.estimator)]
    found = [(index, task) for index, source in enumerate(sources) for task in _discover(source)]
    counts = [task.pop("count", None) for _, task in found]
    size = _chunk_size(sum(c for c in counts if c is not None), slots)
    tasks, sizes = [], []
    for (index, task), count in zip(found, counts):
        if task["kind"] != "pair":
            tasks.append({**task, "source": index})
            sizes.append(None)
            continue
        for indices in _chunks(count, size):
            tasks.append({**task, "indices": indices, "source": index})
            sizes.append(count if indices is None else len(indices))
    # Largest first (those of unknown size before all), so that the last to finish are short.
    order = sorted(range(len(tasks)), key=lambda i: -1 if sizes[i] is None else -sizes[i])
    return [tasks[i] for i in order]


def _discover(source: Source) -> list[dict[str, Any]]:
    location = source.location
    if not exists(location):
        raise DatasetError(f"{location.uri}: input not found")
    try:
        root = find_published_root(location)
    except ReadError:
        root = None
    if root is not None:
        try:
            pairs = find_published_pairs(root, source.dataset, source.estimator)
        except ReadError as err:
            raise DatasetError(f"{err} (set data.dataset / data.estimator)") from None
        return [{"kind": "pair", "pair": p, "root": root, "count": _count(p)} for p in pairs]
    files = list_files(location, suffixes=SUPPORTED_SUFFIXES)
    if not files:
        raise DatasetError(
            f"{location.uri}: no input found (expected the published layout "
            "groundtruth_poses/ + detected_poses/, here or under data/, or "
            f"{', '.join(SUPPORTED_SUFFIXES)} files)"
        )
    return [{"kind": "file", "location": loc, "root": location} for loc in files]


# Bounds of the chunk size (sequences per read task of a large published pair; a pair's
# chunks are balanced, so a few may be one shorter than it). Every task of a
# pair loads the pair's whole files (pickled arrays cannot be read in part), so more tasks
# than the CPUs can keep busy only repeat that load: on 2 CPUs the sample x 10 (1,350
# sequences) took 2.3-2.5 s in chunks of 64 and 2.0-2.1 s in chunks of 256 (2 tasks of 1,024:
# 3.0-3.9 s, one CPU idle at the end). The upper bound keeps a task's memory in hand.
CHUNK_SEQUENCES = (64, 1024)
# Tasks per slot (a task that can run at once): enough to even out their lengths.
TASKS_PER_SLOT = 3
POSE_KEYS_ALL = {key for keys in POSE_KEYS.values() for key in keys}


def _count(pair: PublishedPair) -> int | None:
    """Sequences in a pair, from the detection file's headers (None: let the reader say)."""
    try:
        shapes = npz_shapes(pair.detected)
    except (ReadError, FileNotFoundError):
        return None
    lengths = [shape[0] for key, shape in shapes.items() if key in POSE_KEYS_ALL and shape]
    return lengths[0] if lengths else None


def _chunk_size(sequences: int, slots: int) -> int:
    """Sequences per task for ``sequences`` in all over ``slots`` slots."""
    least, most = CHUNK_SEQUENCES
    return max(least, min(most, -(-sequences // max(1, slots * TASKS_PER_SLOT))))


def _chunks(count: int | None, size: int) -> list[range | None]:
    """A pair's sequence numbers in the fewest chunks of at most ``size``, their lengths
    within one of each other."""
    if count is None or count <= size:
        return [None]  # the whole pair in one task
    parts = -(-count // size)
    bounds = [count * i // parts for i in range(parts + 1)]
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


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


def source_fingerprints(tasks: list[dict[str, Any]]) -> dict[str, str]:
    """Content fingerprints of every input file (a missing one is reported by its reader),
    named relative to their source (prefixed by its number when there are several)."""
    several = len({task["source"] for task in tasks}) > 1
    found = {}
    for task in tasks:
        if task.get("indices") is not None and task["indices"].start > 0:
            continue  # a later chunk of a pair already fingerprinted
        for loc in _task_locations(task):
            key = _source_key(loc, task["root"])
            found[f"{task['source']}:{key}" if several else key] = _fingerprint(loc)
    return dict(sorted(found.items()))


def _fingerprint(loc: Location) -> str:
    try:
        return fingerprint(loc)
    except FileNotFoundError:
        return "missing"


# ----------------------------------------------------------------------------------------------
# Reading (runs in Ray tasks)


def read_source(task: dict[str, Any], cfg: Config) -> tuple[list[Sequence], list[str]]:
    """One task's validated sequences, their splits assigned, and the problems found (each
    naming file, sequence and problem): a bad input never raises here, so the driver can
    report every problem at once (with ``fail`` as with ``skip``)."""
    errors: list[str] = []
    try:
        if task["kind"] == "pair":
            sequences = read_published_pair(
                task["pair"],
                cfg.data.joint_layout,
                cfg.data.representation,
                cfg.data.fps,
                errors=errors,
                indices=task.get("indices"),
            )
        else:
            sequences = read_any(
                task["location"],
                cfg.data.joint_layout,
                cfg.data.representation,
                cfg.data.fps,
                cfg.data.image_size,
            )
    except (ReadError, SchemaError) as err:
        sequences = []
        errors.append(str(err))
    kept = []
    for seq in sequences:
        published = cfg.data.normalisation == "published"
        if published and seq.representation == "2D" and seq.image_size is None:
            # Checked here rather than at windowing, so it is reported like any bad input.
            errors.append(
                f"{seq.where()}: 2D input without an image size (the file carries none: "
                "set data.image_width and data.image_height, or data.normalisation=body)"
            )
            continue
        seq.split = assign_split(seq, cfg.data.val_fraction, cfg.data.seed)
        kept.append(seq)
    return kept, errors
