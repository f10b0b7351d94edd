"""A committed window dataset: its manifest, its files and splits, and whether an existing one
is the dataset a run would make.

Layout::

    DATASET/
      manifest.json              written last: the dataset is complete iff it exists
      sequences/<split>.parquet  validated sequences, for evaluation
      windows/<split>/part-*.parquet   model windows
      errors.json                bad sequences skipped with --on-error skip

The manifest records what the dataset was made from (schema version, the config settings that
shape the windows, content fingerprints of the inputs), so a rerun with the same inputs and
config is a no-op and a different one refuses to replace the dataset unless told to.
"""

from __future__ import annotations

import logging
from typing import Any

from hanet.config import Config
from hanet.data.arrow import SCHEMA_VERSION
from hanet.data.augment import stored_window_size
from hanet.data.schema import Sequence
from hanet.data.splits import assign_split
from hanet.errors import UserError
from hanet.formats.common import ReadError
from hanet.formats.parquet import read_sequence_parquet
from hanet.formats.published import find_published_pairs, read_published_pair
from hanet.io.location import Location
from hanet.io.staging import ManifestError, read_manifest
from hanet.io.storage import all_files, exists, is_file

log = logging.getLogger(__name__)

__all__ = [
    "ERRORS",
    "MANIFEST",
    "SPLIT_ORDER",
    "DatasetError",
    "check_replaceable",
    "check_shape",
    "committed_manifest",
    "dataset_identity",
    "evaluation_sequences",
    "load_manifest",
    "load_split",
    "sequence_files",
    "window_files",
]

MANIFEST = "manifest.json"
ERRORS = "errors.json"
SPLIT_ORDER = ("train", "val", "test", "infer")
# What a dataset folder may hold; anything else there is someone else's and is not replaced
# without --overwrite.
_OWN_TOP_LEVEL = (MANIFEST, ERRORS, "sequences", "windows")
# The model settings that shape the windows; the rest of the model section does not change a
# dataset, so changing it must not force a re-preprocess.
_WINDOW_MODEL_KEYS = ("num_joints", "joint_dim", "interval", "num_intervals")


class DatasetError(UserError, ValueError):
    """A dataset cannot be made, read or replaced; the message names the folder and why."""


def load_manifest(dataset: Location) -> dict[str, Any] | None:
    """The manifest of a committed dataset, or None where there is none.

    Raises:
        DatasetError: a manifest that is not valid JSON.
    """
    try:
        return read_manifest(dataset, MANIFEST)
    except ManifestError as err:
        raise DatasetError(str(err)) from None


def committed_manifest(dataset: Location) -> dict[str, Any]:
    """The manifest of a dataset that must be complete.

    Raises:
        DatasetError: no manifest (not a dataset, or an incomplete one).
    """
    manifest = load_manifest(dataset)
    if manifest is None:
        raise DatasetError(
            f"{dataset.uri}: no {MANIFEST}; not a complete dataset (run pipelines/preprocess.py)"
        )
    return manifest


def window_files(dataset: Location, split: str) -> list[Location]:
    """The window shards of one split of a committed dataset (refuses an uncommitted one)."""
    files = committed_manifest(dataset)["splits"].get(split, {}).get("files", [])
    return [dataset.join(*f.split("/")) for f in files]


def sequence_files(dataset: Location, split: str) -> list[Location]:
    """The sequence-Parquet parts of one split of a committed dataset."""
    parts = committed_manifest(dataset)["splits"].get(split, {}).get("sequence_files", [])
    return [dataset.join(*part.split("/")) for part in parts]


def load_split(dataset: Location, split: str) -> list[Sequence]:
    """The validated sequences of one split, by id (none when the dataset has no such
    split; a folder that is no dataset but holds ``sequences/<split>.parquet`` reads that)."""
    if load_manifest(dataset) is None:
        single = dataset.join("sequences", f"{split}.parquet")
        return read_sequence_parquet(single) if exists(single) else []
    sequences = [
        seq for part in sequence_files(dataset, split) for seq in read_sequence_parquet(part)
    ]
    return sorted(sequences, key=lambda seq: seq.sequence_id)


def check_shape(dataset: Location, manifest: dict[str, Any], cfg: Config) -> None:
    """Refuse a dataset whose windows do not fit ``cfg``'s model.

    Raises:
        DatasetError: another window size or joint count.
    """
    if manifest.get("window_size") != cfg.model.window_size or manifest.get("num_joints") != (
        cfg.model.num_joints
    ):
        raise DatasetError(
            f"{dataset.uri}: windows of {manifest.get('window_size')} frames x "
            f"{manifest.get('num_joints')} joints, but the config needs {cfg.model.window_size} "
            f"x {cfg.model.num_joints}: preprocess with the same model settings"
        )
    needed = stored_window_size(cfg.model.window_size, cfg.augment)
    stored = manifest.get("train_window_size", manifest.get("window_size"))
    if stored < needed:
        raise DatasetError(
            f"{dataset.uri}: training windows of {stored} frames, but augment.speed_max="
            f"{cfg.augment.speed_max} needs {needed}: preprocess with the same augment settings"
        )
    stored_layout = manifest.get("layout")
    if isinstance(stored_layout, dict) and stored_layout.get("joints") != list(
        cfg.data.joint_layout.joints
    ):
        raise DatasetError(
            f"{dataset.uri}: joint layout {stored_layout.get('name')!r}, but the config's "
            f"data.layout is {cfg.data.joint_layout.name!r}"
        )


def dataset_identity(cfg: Config, fingerprints: dict[str, str]) -> dict[str, Any]:
    """What must match for an existing dataset to count as the one a run would make."""
    model = cfg.to_dict()["model"]
    # Where the inputs are is not what they are: their fingerprints say that.
    data = {k: v for k, v in cfg.to_dict()["data"].items() if k != "sources"}
    relevant = {
        "model": {key: model[key] for key in _WINDOW_MODEL_KEYS},
        "data": data,
        "train_window_size": stored_window_size(cfg.model.window_size, cfg.augment),
    }
    return {"schema_version": SCHEMA_VERSION, "config": relevant, "sources": fingerprints}


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Readable ``key: old -> new`` lines between two JSON-like values."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                lines.append(f"{where}: added")
            elif key not in new:
                lines.append(f"{where}: gone")
            else:
                lines.extend(_differences(old[key], new[key], where))
        return lines
    return [] if old == new else [f"{prefix}: {old!r} -> {new!r}"]


def _foreign_files(output: Location) -> list[str]:
    """Files in ``output`` that a dataset of ours would not hold, hidden ones included (a
    commit replaces the folder as a whole: a ``.git`` there would go too)."""
    return [rel for rel, _ in all_files(output) if rel.split("/", 1)[0] not in _OWN_TOP_LEVEL]


def check_replaceable(
    output: Location, identity: dict[str, Any], on_error: str, overwrite: bool
) -> dict[str, Any] | None:
    """None to go ahead and write ``output``, or its manifest when it is already up to date.

    Raises:
        DatasetError: the output holds something else and ``overwrite`` is off.
    """
    try:
        existing = load_manifest(output)
    except DatasetError:
        if not overwrite:
            raise
        existing = None
    if existing is not None:
        same = existing.get("identity") == identity
        # An output made with --on-error skip from bad input does not satisfy a run that must
        # fail on bad input: go on, and the run fails as it should.
        if same and (on_error == "skip" or not existing.get("errors")):
            return existing
        old = dict(existing.get("identity") or {})
        if same or overwrite:
            return None
        if {**old, "schema_version": SCHEMA_VERSION} == identity:
            # Same inputs and config, written by an older version of this code: regenerating
            # loses nothing.
            log.info(
                "%s: written with schema %s; regenerating", output.uri, old.get("schema_version")
            )
            return None
        changes = _differences(old, identity)
        listed = "; ".join(changes[:6]) + (
            f"; ... {len(changes) - 6} more" if len(changes) > 6 else ""
        )
        raise DatasetError(
            f"{output.uri}: holds a dataset made from other inputs or another config ({listed}); "
            "pass --overwrite to replace it"
        )
    foreign = _foreign_files(output)
    if foreign and not overwrite:
        raise DatasetError(
            f"{output.uri}: exists and holds files that are not a hanet dataset (e.g. "
            f"{foreign[0]}); refusing to replace it (pass --overwrite, or pick another folder)"
        )
    return None


def evaluation_sequences(cfg: Config, data: Location) -> tuple[list[Sequence], list[Sequence]]:
    """``(test, validation)`` sequences from a preprocessed dataset, a published-layout root or
    one sequence-Parquet file (then everything is test data and there is no validation split).

    Raises:
        ReadError: Nothing readable, or no labelled test sequence.
    """
    skipped: list[str] = []
    if is_file(data):
        test, val = read_sequence_parquet(data), []
    elif exists(data.join("manifest.json")) or exists(data.join("sequences")):
        test, val = load_split(data, "test"), load_split(data, "val")
    else:
        test, val = _read_published(cfg, data, skipped)
    test = [seq for seq in test if seq.gt is not None]
    val = [seq for seq in val if seq.gt is not None]
    if not test:
        # The per-sequence warnings scroll by; the one line that ends the run says why.
        why = f" ({len(skipped)} skipped; the first: {skipped[0]})" if skipped else ""
        raise ReadError(f"{data.uri}: no test sequence with ground truth{why}")
    if not val:
        log.warning(
            "%s: no validation sequences; the classic filters are tuned on the test sequences",
            data.uri,
        )
    return test, val


def _read_published(
    cfg: Config, root: Location, errors: list[str]
) -> tuple[list[Sequence], list[Sequence]]:
    """The test and validation sequences under a published-layout root; the sequences that
    cannot be read are logged and appended to ``errors``."""
    data = cfg.data
    test: list[Sequence] = []
    val: list[Sequence] = []
    for pair in find_published_pairs(root, data.dataset, data.estimator):
        sequences = read_published_pair(
            pair, data.joint_layout, data.representation, data.fps, errors=errors
        )
        for seq in sequences:
            split = seq.split = assign_split(seq, data.val_fraction, data.seed)
            if split == "test":
                test.append(seq)
            elif split == "val":
                val.append(seq)
    for message in errors:
        log.warning("skipped: %s", message)
    return test, val
