"""hanet.data.splits: validation carved by clip, and leakage detection."""

from __future__ import annotations

from pathlib import Path

from posedata import seq2d

from hanet.data.splits import find_leaks
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
