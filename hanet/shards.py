"""One read task's share of preprocessing, inside a Ray task: its sequences read and validated,
cut into windows and written as Parquet shards, and written themselves as sequence parts, all
into the staging folder of :func:`hanet.preprocessing.run_preprocess`.

File names derive from their content (first sequence id, start, row count), so they are unique
within a dataset and a rerun writes the same names.
"""

from __future__ import annotations

import hashlib
from typing import Any

from hanet.config import Config
from hanet.data.arrow import parquet_bytes, window_table
from hanet.data.augment import stored_window_size
from hanet.data.normalise import root_distance
from hanet.data.schema import Sequence, units_warning
from hanet.data.splits import clip_folders
from hanet.data.windows import stacked_window_arrays
from hanet.formats.parquet import encode_sequence_parquet
from hanet.io.location import Location
from hanet.io.storage import write_bytes_staged
from hanet.sources import read_source

__all__ = ["process_task", "write_window_shards"]


def process_task(task: dict[str, Any], cfg: Config, staging: Location) -> list[dict[str, Any]]:
    """One read task's whole share of the work (inside a Ray task): its sequences read and
    validated, cut into windows and written as shards, and written themselves as one sequence
    part per split. Returns a JSON-able record per sequence, file written and problem."""
    sequences, errors = read_source(task, cfg)
    records: list[dict[str, Any]] = [{"kind": "error", "error": e} for e in errors]
    for seq in sequences:
        records.append(
            {
                "kind": "sequence",
                "sequence_id": seq.sequence_id,
                "source": seq.source or "",
                "split": seq.split,
                "frames": seq.num_frames,
                "input": task["source"],
                "clips": sorted(clip_folders(seq)),
                "warning": units_warning(seq),
                "root_distance": root_distance(seq),
            }
        )
    if not sequences:
        return records
    records += [{"kind": "shard", **w} for w in write_window_shards(sequences, cfg, staging)]
    by_split: dict[str, list[Sequence]] = {}
    for seq in sequences:
        by_split.setdefault(seq.split or "infer", []).append(seq)
    for split, seqs in by_split.items():
        seqs.sort(key=lambda s: s.sequence_id)
        rel = f"sequences/{split}/{_part_name(seqs[0].sequence_id, 0, len(seqs))}"
        write_bytes_staged(staging.join(rel), encode_sequence_parquet(seqs))
        records.append({"kind": "sequences", "file": rel, "split": split})
    return records


def write_window_shards(
    sequences: list[Sequence], cfg: Config, staging: Location
) -> list[dict[str, Any]]:
    """Cut sequences into windows and write Parquet shards of at most ``data.shard_rows``
    windows, one set per split.

    Shard names derive from their content (first sequence id, start, row count), so they are
    unique within a dataset and a rerun writes the same names.
    """
    by_split: dict[str, list[Sequence]] = {}
    for seq in sequences:
        by_split.setdefault(seq.split or "infer", []).append(seq)
    tables = {
        split: window_table(
            [
                stacked_window_arrays(
                    seqs,
                    cfg.model,
                    split,
                    cfg.data.train_stride,
                    cfg.data.test_stride_q,
                    cfg.data.normalisation,
                    stored_window_size(cfg.model.window_size, cfg.augment),
                )
            ]
        )
        for split, seqs in by_split.items()
    }
    written = []
    for split, table in tables.items():
        for begin in range(0, table.num_rows, cfg.data.shard_rows):
            chunk = table.slice(begin, cfg.data.shard_rows)
            first_id, first_start = chunk.column("sequence_id")[0], chunk.column("start")[0]
            name = _part_name(first_id.as_py(), first_start.as_py(), chunk.num_rows)
            data = parquet_bytes(chunk)
            write_bytes_staged(staging.join("windows", split, name), data)
            written.append(
                {
                    "file": f"windows/{split}/{name}",
                    "split": split,
                    "windows": chunk.num_rows,
                    "bytes": len(data),
                }
            )
    return written


def _part_name(first_id: str, first_start: int, rows: int) -> str:
    """A part file's name from its content (first sequence, start, rows): unique within a
    dataset, and the same on a rerun."""
    key = f"{first_id}:{first_start}:{rows}"
    return f"part-{hashlib.sha1(key.encode()).hexdigest()[:16]}.parquet"
