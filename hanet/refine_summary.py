"""What a refine job did: the summary it prints, ``_errors.json`` and ``_manifest.json``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hanet.config import Config
from hanet.io.location import Location
from hanet.io.storage import write_text_atomic
from hanet.records import ERRORS_FILE, MANIFEST_FILE, describe_left_out
from hanet.sections import RefineConfig

__all__ = ["RefineSummary", "summarise", "write_run_files"]


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
    # Files under the input that are not inputs, with the reason (relative path -> reason).
    not_inputs: dict[str, str] = field(default_factory=dict)
    # Objects retried after the storage stopped answering for a while, and how often in all.
    retries: int = 0
    # Objects whose body size does not fit the declared units (one line each).
    unit_warnings: list[str] = field(default_factory=list)
    # How far refinement moved the poses, in body sizes, over the complete objects (written or
    # skipped): min / median / p90 / max, and the objects beyond the limit (input -> value).
    displacement: dict[str, float] = field(default_factory=dict)
    displacement_limit: float = RefineConfig.displacement_limit
    far_moved: dict[str, float] = field(default_factory=dict)

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
            "not_inputs": len(self.not_inputs),
            "retries": self.retries,
            "unit_warnings": len(self.unit_warnings),
            "sequences": self.sequences,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "frames_per_s": round(self.frames_per_s, 1),
            "displacement": self.displacement,
            "displacement_limit": self.displacement_limit,
            "far_moved": len(self.far_moved),
        }

    def format(self) -> str:
        lines = [
            f"objects: {self.objects} (written {self.written}, skipped {self.skipped} already "
            f"complete, errors {len(self.errors)})",
            f"frames:  {self.frames} refined in {self.seconds:.1f} s "
            f"({self.frames_per_s:.0f} frames/s)",
        ]
        if self.displacement:
            d = self.displacement
            lines.append(
                f"moved:   {d['median']:.3f} body sizes per joint (median over objects; "
                f"min {d['min']:.3f}, p90 {d['p90']:.3f}, max {d['max']:.3f})"
            )
        if self.far_moved:
            worst = sorted(self.far_moved.items(), key=lambda item: -item[1])
            shown = ", ".join(f"{rel} ({value:.2f})" for rel, value in worst[:5])
            more = f" and {len(worst) - 5} more" if len(worst) > 5 else ""
            lines.append(
                f"warning: {len(worst)} object(s) moved more than "
                f"{self.displacement_limit:g} body sizes (unlike the training data?): "
                f"{shown}{more}"
            )
        if self.not_inputs:
            lines.append(f"left out: {describe_left_out(self.not_inputs)}")
        if self.retries:
            lines.append(f"retried: {self.retries} time(s) while the storage did not answer")
        if self.unit_warnings:
            lines.append(
                f"warning: {len(self.unit_warnings)} object(s) have a body size that does not "
                f"fit the declared units, e.g. {self.unit_warnings[0]}"
            )
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
    not_inputs: dict[str, str] | None = None,
    displacement_limit: float = RefineConfig.displacement_limit,
) -> RefineSummary:
    rows = sorted(rows, key=lambda r: r["input"])
    summary = RefineSummary(output=output.uri, objects=len(rows) + len(name_errors))
    summary.rows = rows
    summary.seconds = seconds
    summary.not_inputs = dict(not_inputs or {})
    summary.retries = sum(int(row.get("retries", 0)) for row in rows)
    summary.unit_warnings = [row["warning"] for row in rows if row.get("warning")]
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
    complete = [row for row in rows if row["status"] in ("written", "skipped")]
    moved = {
        row["input"]: float(row["displacement"])
        for row in complete
        if math.isfinite(row.get("displacement", math.nan))
    }
    summary.displacement_limit = displacement_limit
    if moved:
        values = np.array(list(moved.values()))
        summary.displacement = {
            "min": round(float(values.min()), 6),
            "median": round(float(np.median(values)), 6),
            "p90": round(float(np.percentile(values, 90)), 6),
            "max": round(float(values.max()), 6),
        }
        summary.far_moved = {rel: v for rel, v in moved.items() if v > displacement_limit}
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
        "not_inputs": summary.not_inputs,
        "unit_warnings": summary.unit_warnings,
        "far_moved": summary.far_moved,
        "objects_table": [
            {k: r[k] for k in ("input", "output", "status", "sequences", "frames")}
            | {"displacement": _json_number(r.get("displacement"))}
            for r in summary.rows
        ],
    }
    write_text_atomic(output.join(MANIFEST_FILE), json.dumps(manifest, indent=2) + "\n")


def _json_number(value: Any) -> float | None:
    """A float for JSON: None where it is not a finite number (NaN is not JSON)."""
    if value is None or not math.isfinite(float(value)):
        return None
    return round(float(value), 6)
