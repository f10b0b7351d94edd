"""hanet.sources: published pairs cut into read tasks sized for the cluster, each sequence
read exactly once, the largest tasks first."""

from __future__ import annotations

from pathlib import Path

import pytest
from posedata import sample_subset

import hanet.sources as sources
from hanet.io.location import parse_location
from hanet.sources import Source, discover_sources, read_source


@pytest.fixture
def layout(sample_dir: Path, tmp_path: Path) -> Path:
    return sample_subset(sample_dir, tmp_path / "in", counts={"train": 100, "test": 30})


def _tasks(cfg, root: Path, slots: int) -> list[dict]:
    return discover_sources(cfg, [Source(parse_location(root), "mocap2d", "simplebaseline")], slots)


def _covered(tasks: list[dict]) -> dict[str, list[int]]:
    """Per pair (by split), the sequence numbers of its tasks, in task order."""
    out: dict[str, list[int]] = {}
    for task in tasks:
        out.setdefault(task["pair"].split, []).extend(task["indices"])
    return out


def test_chunks_follow_the_slots_within_bounds(demo_cfg, layout, monkeypatch):
    monkeypatch.setattr(sources, "CHUNK_SEQUENCES", (8, 32))
    # 2 slots x 3 tasks each for 130 sequences: chunks of at most 22, balanced.
    tasks = _tasks(demo_cfg, layout, slots=2)
    lengths = [len(t["indices"]) for t in tasks]
    assert lengths == [20] * 5 + [15] * 2  # train 100 = 5 x 20, test 30 = 2 x 15, largest first
    assert {split: sorted(i) for split, i in _covered(tasks).items()} == {
        "train": list(range(100)),
        "test": list(range(30)),
    }
    # One slot: chunks of 44 capped at 32; the test pair (30) fits in one task, which is the
    # largest.
    tasks = _tasks(demo_cfg, layout, slots=1)
    assert [(t["pair"].split, t["indices"] and len(t["indices"])) for t in tasks] == [
        ("test", None)
    ] + [("train", 25)] * 4
    # Many slots: chunks of the lower bound (8) at most, balanced within a pair (test: 30 in
    # 4 chunks).
    tasks = _tasks(demo_cfg, layout, slots=64)
    assert sorted(len(t["indices"]) for t in tasks if t["pair"].split == "test") == [7, 7, 8, 8]
    assert {len(t["indices"]) for t in tasks if t["pair"].split == "train"} == {7, 8}


def test_every_sequence_read_once(demo_cfg, layout, monkeypatch):
    monkeypatch.setattr(sources, "CHUNK_SEQUENCES", (8, 32))
    chunked = []
    for task in _tasks(demo_cfg, layout, slots=4):
        seqs, errors = read_source(task, demo_cfg)
        assert not errors
        chunked += [s.sequence_id for s in seqs]
    assert len(chunked) == 130 and len(set(chunked)) == 130
