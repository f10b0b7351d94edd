"""The inputs of a preprocessing run: what to read (published pairs or pose files), their
content fingerprints, and reading one of them into validated sequences (inside a Ray task)."""

from __future__ import annotations

import pickle
from typing import Any

from hanet.config import Config
from hanet.data.schema import SchemaError, units_warning
from hanet.data.splits import assign_split
from hanet.dataset import DatasetError
from hanet.formats.common import ReadError
from hanet.formats.dispatch import SUPPORTED_SUFFIXES, read_any
from hanet.formats.published import (
    PublishedPair,
    find_published_pairs,
    find_published_root,
    read_published_pair,
)
from hanet.io.location import Location
from hanet.io.storage import exists, fingerprint, list_files

__all__ = ["discover_sources", "read_source", "source_fingerprints"]


# Sources


def discover_sources(cfg: Config, source: Location) -> list[dict[str, Any]]:
    """Read tasks: published (gt, detections) pairs, or any supported files under ``source``.

    Raises:
        DatasetError: ``source`` does not exist, holds no input, or holds the published
            layout but no pair for the configured dataset and estimator.
    """
    if not exists(source):
        raise DatasetError(f"{source.uri}: input not found")
    try:
        root = find_published_root(source)
    except ReadError:
        root = None
    if root is not None:
        try:
            pairs = find_published_pairs(root, cfg.data.dataset, cfg.data.estimator)
        except ReadError as err:
            raise DatasetError(f"{err} (set data.dataset / data.estimator)") from None
        return [{"kind": "pair", "pair": pair, "root": root} for pair in pairs]
    files = list_files(source, suffixes=SUPPORTED_SUFFIXES)
    if not files:
        raise DatasetError(
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


def read_source(task: dict[str, Any], cfg: Config) -> list[dict[str, Any]]:
    """Read one source into validated sequences; errors become rows instead of exceptions so
    the driver can report all of them at once (with ``fail`` as with ``skip``), and so does a
    body size that does not fit the declared units (a ``warning``, reported once)."""
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
                "warning": units_warning(seq),
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
        "warning": None,
    }


# ----------------------------------------------------------------------------------------------
