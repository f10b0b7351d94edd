"""Train / validation / test: stable assignment by clip, and leakage detection.

Validation is carved from train by clip, never from test, and a clip always lands on the same
side (a hash of the seed and the clip), so the assignment runs inside parallel tasks without
seeing the other sequences.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import PurePosixPath

from hanet.data.schema import Sequence

__all__ = ["assign_split", "clip_folders", "clip_key", "find_leaks", "is_validation"]


def clip_key(seq: Sequence) -> str:
    """What makes two sequences the same clip: the image folder when names are known (several
    tracks or camera views of one clip share it), else the sequence id."""
    if seq.frame_names:
        parent = str(PurePosixPath(seq.frame_names[0]).parent)
        if parent not in ("", "."):
            return parent
    return seq.sequence_id


def is_validation(seq: Sequence, fraction: float, seed: int) -> bool:
    """Stable train/val assignment by clip: the same clip always lands on the same side,
    without needing to see the other sequences (so it runs inside parallel tasks)."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{clip_key(seq)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def assign_split(seq: Sequence, val_fraction: float, seed: int) -> str:
    """The published files know train and test; validation is carved from train by clip."""
    split = seq.split or "infer"
    if split == "train" and is_validation(seq, val_fraction, seed):
        return "val"
    return split


def clip_folders(seq: Sequence) -> set[str]:
    """The image-name folders of a sequence's frames (every frame's, so a track whose frames
    span several folders counts in each)."""
    names = seq.frame_names or ()
    # A path object per frame name cost more than the rest of preprocessing a frame, and so
    # did a Python check per name: one look at all the names says whether any needs a path
    # object's normalising ("a//b", "./a", "a/"); plain names only lose their last part.
    text = "\n" + "\n".join(names) + "\n"
    if any(mark in text for mark in ("//", "/.", "/\n", "\n.")):
        return {str(PurePosixPath(name).parent) for name in names} - {"."}
    return {head or slash for head, slash, _ in map(_split_last, names)} - {""}


def _split_last(name: str) -> tuple[str, str, str]:
    return name.rpartition("/")


def find_leaks(train: Iterable[Sequence], test: Iterable[Sequence]) -> list[str]:
    """Clips (image-name folders) present in both splits; the published Sub-JHMDB files pool
    three official splits, which puts the same clip in train and test."""
    seen = set().union(*(clip_folders(seq) for seq in train))
    return sorted(set().union(*(clip_folders(seq) for seq in test)) & seen)
