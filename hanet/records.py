"""What a refine job keeps in its output prefix besides the refined objects: the plan (which
input goes to which output name), the identity of the model and settings, and one done-record
per object.

Layout of an output prefix::

    OUTPUT/
      <rel>.parquet                 one refined object per input object (relative path kept;
                                    with output_format="same", the input's own name and format)
      _done/<input rel>.json        per-object completion record, written after its output
      _errors.json                  objects of the last run that failed, with the reason
      _manifest.json                summary of the last run (objects, frames, errors, speed,
                                    files under the input left out and why; hanet.refine_summary)

Names starting with ``_`` or ``.`` are invisible to :func:`hanet.io.storage.list_files`, so the
bookkeeping never shows up as data, and the output prefix can be fed to another stage as is.

Resumption
    Every output is written atomically, then its done-record, which holds the input's content
    fingerprint, the output's SHA-256 and the identity of the model (checkpoint bytes plus the
    settings that change results). An object is skipped on a later run if and only if its
    done-record matches all three, so a job killed at any point finishes on rerun: an object
    whose output was written but whose record was not is simply refined again into the same
    name, never duplicated. A changed input, checkpoint or format is refined again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import posixpath
import time
from collections import defaultdict
from typing import Any

from hanet.config import Config, ConfigError
from hanet.errors import UserError
from hanet.formats.dispatch import OUTPUT_FORMATS, SUPPORTED_SUFFIXES
from hanet.io.errors import StorageError
from hanet.io.location import Location, within
from hanet.io.storage import (
    all_files,
    exists,
    is_file,
    list_files,
    read_bytes,
    write_text_atomic,
)

log = logging.getLogger(__name__)

__all__ = [
    "DONE_DIR",
    "ERRORS_FILE",
    "MANIFEST_FILE",
    "RefineJobError",
    "check_locations",
    "describe_left_out",
    "discover_objects",
    "done_record_location",
    "effective_config",
    "is_current",
    "model_identity",
    "plan_outputs",
    "read_done_record",
    "sha256",
    "write_done_record",
]

DONE_DIR = "_done"
ERRORS_FILE = "_errors.json"
MANIFEST_FILE = "_manifest.json"


class RefineJobError(UserError, ValueError):
    """The job as a whole cannot run: bad locations, checkpoint, overrides or empty input."""


def check_locations(source: Location, output: Location) -> None:
    """Refuse an output that is, contains or lies inside the input.

    Raises:
        RefineJobError: The two overlap: refined objects would be read back as inputs on the
            next run, or inputs could be overwritten; or a local output is, or lies below, a
            file.
    """
    if within(output, source):
        raise RefineJobError(
            f"output {output.uri} is the input or lies inside it ({source.uri}); choose an "
            "output prefix outside the input"
        )
    if within(source, output):
        raise RefineJobError(
            f"input {source.uri} lies inside the output {output.uri}; choose an output prefix "
            "outside the input"
        )
    if output.scheme == "file":  # S3 has no files that block a prefix
        ancestor = output
        while not ancestor.is_root and not exists(ancestor):
            ancestor = ancestor.parent
        if is_file(ancestor):
            raise RefineJobError(
                f"output {output.uri}: {ancestor.uri} is a file, not a folder; choose another "
                "output"
            )


def discover_objects(source: Location) -> tuple[Location, list[str], dict[str, str]]:
    """The input root, the relative paths of every supported object under ``source``, and every
    other file there with the reason it is not an input.

    A single file is its own corpus; its folder is the root, so its name is kept.

    Returns:
        ``(root, inputs, not_inputs)``; ``not_inputs`` maps a relative path to why it was left
        out: hidden (a name in its path starts with ``.`` or ``_``: bookkeeping, temporaries,
        markers) or an unsupported suffix.

    Raises:
        RefineJobError: Nothing there, or no object with a supported suffix.
    """
    try:
        found = list_files(source, suffixes=SUPPORTED_SUFFIXES)
    except FileNotFoundError as err:
        if isinstance(err, StorageError):  # no such bucket: its own words
            raise
        raise RefineJobError(f"{source.uri}: no such file or prefix") from err
    single = is_file(source)
    root = source.parent if single else source
    rels = [loc.relative_to(root) for loc in found]
    not_inputs = {} if single else _not_inputs(all_files(source), set(rels))
    if not found:
        left_out = f"; left out: {describe_left_out(not_inputs)}" if not_inputs else ""
        raise RefineJobError(
            f"{source.uri}: no input objects (supported: {', '.join(SUPPORTED_SUFFIXES)})"
            + left_out
        )
    return root, rels, not_inputs


def _not_inputs(files: list[tuple[str, int]], inputs: set[str]) -> dict[str, str]:
    reasons = {}
    for rel, _ in files:
        if rel in inputs:
            continue
        if any(part.startswith((".", "_")) for part in rel.split("/")):
            reasons[rel] = "hidden (a name in its path starts with '.' or '_')"
        else:
            suffix = posixpath.splitext(rel)[1] or "(none)"
            reasons[rel] = f"unsupported suffix {suffix}"
    return reasons


def describe_left_out(not_inputs: dict[str, str]) -> str:
    """``3 file(s): 2 hidden ..., 1 unsupported suffix .txt (e.g. notes.txt)``."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for rel, reason in sorted(not_inputs.items()):
        by_reason[reason].append(rel)
    parts = [f"{len(rels)} {reason} (e.g. {rels[0]})" for reason, rels in by_reason.items()]
    return f"{len(not_inputs)} file(s): " + ", ".join(parts)


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
    overrides = list(overrides or [])
    trained = stored.data.joint_layout
    try:
        cfg = stored.replace(overrides)
    except ConfigError as err:
        keys = {str(o).split("=", 1)[0].strip() for o in overrides}
        hint = (
            f" (the checkpoint was trained on layout {trained.name!r}, {trained.num_joints} "
            "joints; its weights fix the joint layout)"
            if "data.layout" in keys
            else ""
        )
        raise RefineJobError(f"--set: {err}{hint}") from None
    if cfg.model != stored.model:
        raise RefineJobError("--set: model.* is fixed by the checkpoint's weights")
    asked = cfg.data.joint_layout
    if asked != trained:
        raise RefineJobError(
            f"--set data.layout: {asked.name!r}, but the checkpoint was trained on "
            f"{trained.name!r}; the weights fix the joint layout"
        )
    return cfg


def model_identity(checkpoint_bytes: bytes, cfg: Config, output_format: str) -> str:
    """What must match for an earlier output to count as this run's output."""
    relevant = {
        "checkpoint": hashlib.sha256(checkpoint_bytes).hexdigest(),
        "data": dataclasses.asdict(cfg.data),
        "window_step": cfg.test_window_step(),
        "merge_weights": cfg.refine.merge_weights,
        "lookahead": cfg.refine.lookahead,
        "format": output_format,
    }
    if cfg.refine.smooth_sigma:  # only when set: outputs refined without it keep their identity
        relevant["smooth_sigma"] = cfg.refine.smooth_sigma
    text = json.dumps(relevant, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------------------------------
# Reading and writing one object


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_done_record(output: Location, rel: str) -> dict[str, Any] | None:
    """The done-record an earlier run left for input ``rel``, if readable."""
    record_loc = done_record_location(output, rel)
    try:
        return json.loads(read_bytes(record_loc))
    except FileNotFoundError:
        return None
    except StorageError:
        raise  # storage trouble is not a broken record: refining again would not help
    except (ValueError, OSError):
        log.warning("%s: unreadable done-record; refining again", record_loc.uri)
        return None


def is_current(
    record: dict[str, Any] | None, output: Location, input_fingerprint: str, identity: str
) -> bool:
    """Whether ``record`` describes a complete output of this input with this model: same
    input fingerprint and model identity, and the output's bytes still match its SHA-256."""
    if record is None:
        return False
    if record.get("input_fingerprint") != input_fingerprint or record.get("model") != identity:
        return False
    try:
        data = read_bytes(output.join(record["output"]))
    except (FileNotFoundError, KeyError):
        return False
    return sha256(data) == record.get("output_sha256")


def write_done_record(
    output: Location,
    rel: str,
    out_rel: str,
    input_fingerprint: str,
    data: bytes,
    identity: str,
    sequences: int,
    frames: int,
    displacement: float | None = None,
    durable: bool = True,
) -> Location:
    """Write the done-record of input ``rel``: the commit point of one object, written only
    once its output ``data`` is complete under ``out_rel``; returns where it was written.
    ``displacement`` is how far the refinement moved the poses
    (:func:`hanet.output_checks.displacement`). ``durable=False``: see
    :func:`hanet.io.storage.write_bytes_atomic` (a record that a power loss leaves behind
    without its output is harmless: :func:`is_current` checks the output's SHA-256)."""
    record = {
        "input": rel,
        "input_fingerprint": input_fingerprint,
        "output": out_rel,
        "output_sha256": sha256(data),
        "output_bytes": len(data),
        "model": identity,
        "sequences": sequences,
        "frames": frames,
        "displacement": None if displacement is None else round(displacement, 6),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    where = done_record_location(output, rel)
    write_text_atomic(where, json.dumps(record, indent=2, sort_keys=True), durable=durable)
    return where
