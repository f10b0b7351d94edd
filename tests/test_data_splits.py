"""hanet.data.splits: validation carved by clip, and leakage detection."""

from __future__ import annotations

import itertools
from pathlib import Path, PurePosixPath

from posedata import seq2d

from hanet.data.splits import clip_folders, find_leaks
from hanet.formats.published import (
    find_published_pairs,
    read_published_pair,
)
from hanet.io.location import parse_location


def test_leak_detection_by_clip_folder() -> None:
    train = [seq2d(3, "t1", frame_names=["run/clip1/1.png", "run/clip1/2.png", "run/clip1/3.png"])]
    test = [
        seq2d(3, "s1", frame_names=["run/clip1/4.png", "run/clip1/5.png", "run/clip1/6.png"]),
        seq2d(3, "s2", frame_names=["run/clip2/1.png", "run/clip2/2.png", "run/clip2/3.png"]),
        seq2d(3, "s3", frame_names=None),
    ]
    assert find_leaks(train, test) == ["run/clip1"]
    assert find_leaks(train, test[1:]) == []


def test_sample_has_no_leak(sample_dir: Path) -> None:
    root = parse_location(sample_dir)
    pairs = {p.split: p for p in find_published_pairs(root, "mocap2d", "simplebaseline")}
    train = read_published_pair(pairs["train"], "jhmdb", "2D")
    test = read_published_pair(pairs["test"], "jhmdb", "2D")
    assert find_leaks(train, test) == []
    assert find_leaks(train, train[:3]) != []


def test_clip_folders_are_the_frame_names_parents_whatever_their_form() -> None:
    # Every name of up to four parts from plain, dot, empty and hidden parts, relative or
    # absolute: the folder found is pathlib's parent of the name.
    parts = ["a", "b", ".", "..", "", "c.jpg", ".x"]
    names = [
        lead + "/".join(combo)
        for k in range(1, 5)
        for combo in itertools.product(parts, repeat=k)
        for lead in ("", "/", "//")
    ]
    names = [name for name in names if name]
    seq = seq2d(len(names), frame_names=names)
    assert clip_folders(seq) == {str(PurePosixPath(n).parent) for n in names} - {"."}
    # Alone and among plain names, so that the path for plain names is taken where it can be.
    for name in names:
        alone = seq2d(2, frame_names=[name, "clip/0001.png"])
        assert clip_folders(alone) == {str(PurePosixPath(name).parent), "clip"} - {"."}, name
