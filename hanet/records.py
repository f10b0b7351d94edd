"""What a refine job keeps in its output prefix besides the refined objects: the plan (which
input goes to which output name), the identity of the model and settings, and one done-record
per object.

Layout of an output prefix::

    OUTPUT/
      <rel>.parquet                 one refined object per input object (relative path kept;
                                    with output_format="same", the input's own name and format)
      _done/<input rel>.json        per-object completion record, written after its output
      _errors.json                  objects of the last run that failed, with the reason
      _manifest.json                summary of the last run (objects, frames, errors, speed)

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
from dataclasses import dataclass, field
from typing import Any

from hanet.config import Config, ConfigError
from hanet.errors import UserError
from hanet.formats.dispatch import OUTPUT_FORMATS, SUPPORTED_SUFFIXES
from hanet.io.location import Location, within
from hanet.io.storage import is_file, list_files, read_bytes, write_text_atomic

log = logging.getLogger(__name__)

__all__ = [
    "DONE_DIR",
    "RefineSummary",
    "summarise",
    "write_run_files",
    "ERRORS_FILE",
    "MANIFEST_FILE",
    "RefineJobError",
    "check_locations",
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
            next run, or inputs could be overwritten.
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
    asked, trained = cfg.data.joint_layout, stored.data.joint_layout
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
) -> None:
    """Write the done-record of input ``rel``: the commit point of one object, written only
    once its output ``data`` is complete under ``out_rel``."""
    record = {
        "input": rel,
        "input_fingerprint": input_fingerprint,
        "output": out_rel,
        "output_sha256": sha256(data),
        "output_bytes": len(data),
        "model": identity,
        "sequences": sequences,
        "frames": frames,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_text_atomic(
        done_record_location(output, rel), json.dumps(record, indent=2, sort_keys=True)
    )


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


def summarise(
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


def write_run_files(
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
        "layout": cfg.data.joint_layout.to_mapping(),
        "representation": cfg.data.representation,
        "objects_table": [
            {k: r[k] for k in ("input", "output", "status", "sequences", "frames")}
            for r in summary.rows
        ],
    }
    write_text_atomic(output.join(MANIFEST_FILE), json.dumps(manifest, indent=2) + "\n")
