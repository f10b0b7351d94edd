"""Refining whole objects without Ray (hanet.object_refiner): packing windows across objects,
isolating bad objects, checking refined poses and recording how far they moved."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from posedata import TINY_MODEL, parquet_bytes

from hanet.config import Config, from_dict
from hanet.formats.parquet import read_sequence_parquet
from hanet.io.location import Location, parse_location
from hanet.io.storage import (
    exists,
    read_bytes,
    write_bytes_atomic,
)
from hanet.model import HANet
from hanet.object_refiner import ObjectRefiner
from hanet.records import (
    done_record_location,
)
from hanet.refiner import Refiner


def _worker(model: HANet, cfg: Config, source: Location, output: Location) -> ObjectRefiner:
    return ObjectRefiner(Refiner(model, cfg, device="cpu"), cfg, source, output, "parquet", "id")


def _nothing_written(output: Location, rel: str) -> bool:
    out_rel = rel.rsplit(".", 1)[0] + ".parquet"
    return not exists(output.join(out_rel)) and not exists(done_record_location(output, rel))


def test_bad_objects_are_isolated_and_nothing_bad_is_written(
    tmp_path: Path, sample_sequences
) -> None:
    # Zero heads: an untrained model that returns its (interpolated) input, as a trained one
    # returns something close to it, whatever the units.
    cfg = from_dict(TINY_MODEL).replace(["model.head_init=zero"])
    model = HANet(cfg.model)
    source, output = parse_location(tmp_path / "in"), parse_location(tmp_path / "out")
    write_bytes_atomic(source.join("good.parquet"), parquet_bytes(sample_sequences[:1]))
    absurd = dataclasses.replace(sample_sequences[1], pred=sample_sequences[1].pred.copy())
    absurd.pred[6, 9] = (2e7, 10.0)  # joint 9: r_knee
    write_bytes_atomic(source.join("absurd.parquet"), parquet_bytes([absurd]))
    fractions = dataclasses.replace(sample_sequences[2], pred=sample_sequences[2].pred / 320)
    write_bytes_atomic(source.join("fractions.parquet"), parquet_bytes([fractions]))
    worker = _worker(model, cfg, source, output)

    good = worker.process("good.parquet", "good.parquet")
    assert (good["status"], good["error"], good["warning"], good["retries"]) == (
        "written",
        "",
        "",
        0,
    )
    row = worker.process("absurd.parquet", "absurd.parquet")
    assert row["status"] == "error" and _nothing_written(output, "absurd.parquet")
    assert row["error"].startswith(
        f"ReadError: {source.join('absurd.parquet').uri}: sequence '{absurd.sequence_id}': "
        "poses: frame 6, joint 9 (r_knee) at (2e+07, 10) is implausible"
    )
    row = worker.process("fractions.parquet", "fractions.parquet")
    assert row["status"] == "written" and "rather than pixels" in row["warning"]


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        # A run that diverged saves NaN weights, with a valid checksum.
        (lambda net: net.final_head.bias.data.fill_(float("nan")), "refined poses are not finite"),
        # Finite but absurd: what a model far outside its training data may return.
        (lambda net: net.final_head.bias.data.fill_(1e6), "is implausible"),
    ],
)
def test_nan_or_absurd_refinements_go_to_the_errors_not_the_output(
    tmp_path: Path, sample_sequences, damage, says
) -> None:
    cfg = from_dict(TINY_MODEL)
    model = HANet(cfg.model)
    damage(model)
    source, output = parse_location(tmp_path / "in"), parse_location(tmp_path / "out")
    write_bytes_atomic(source.join("a.parquet"), parquet_bytes(sample_sequences[:2]))
    row = _worker(model, cfg, source, output).process("a.parquet", "a.parquet")
    assert row["status"] == "error" and says in row["error"], row["error"]
    assert row["error"].startswith("RefinedPoseError: ") and "frame 0, joint 0" in row["error"]
    assert _nothing_written(output, "a.parquet")


def test_packed_objects_equal_one_at_a_time_and_record_their_displacement(
    tmp_path: Path, refiner: Refiner, sample_sequences
) -> None:
    cfg = refiner.config
    source = parse_location(tmp_path / "in")
    # Five objects of one or two sequences; a pack of 7 windows spans object boundaries.
    names = []
    for i in range(5):
        names.append(f"o{i}.parquet")
        write_bytes_atomic(
            source.join(names[-1]), parquet_bytes(sample_sequences[i : i + 1 + i % 2])
        )
    write_bytes_atomic(source.join("broken.parquet"), b"PAR1 not parquet")
    items = [(name, name) for name in [*names[:2], "broken.parquet", *names[2:]]]
    small = Refiner(refiner.model, cfg.replace(["refine.batch_windows=7"]), device="cpu")
    packed = ObjectRefiner(small, cfg, source, parse_location(tmp_path / "packed"), "parquet", "id")
    single = _worker(refiner.model, cfg, source, parse_location(tmp_path / "single"))
    passes: list[int] = []  # windows per forward pass
    run_windows = small.run_windows
    small.run_windows = lambda windows: passes.append(len(windows)) or run_windows(windows)

    rows = packed.process_many(items)
    # Whole batches of 7, objects split across them where need be; only the last is part-filled.
    assert len(passes) > 2 and all(count % 7 == 0 for count in passes[:-1]), passes
    assert [row["input"] for row in rows] == [rel for rel, _ in items]
    assert [row["status"] for row in rows] == ["written"] * 2 + ["error"] + ["written"] * 3
    assert rows[2]["error"].startswith("ReadError: ") and "broken.parquet" in rows[2]["error"]
    for name, row in zip(names, [*rows[:2], *rows[3:]]):
        alone = single.process(name, name)
        assert alone["frames"] == row["frames"] and alone["sequences"] == row["sequences"]
        got = read_sequence_parquet(parse_location(tmp_path / "packed").join(name))
        want = read_sequence_parquet(parse_location(tmp_path / "single").join(name))
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.pred, b.pred, atol=1e-5)
        # How far the poses moved, in body sizes, by hand from the input and the output.
        inputs = read_sequence_parquet(source.join(name))
        moved = [
            np.linalg.norm(out.pred.astype(np.float64) - seq.pred, axis=-1)[seq.observed()].mean()
            / _body_size(seq)
            * seq.num_frames
            for seq, out in zip(inputs, got)
        ]
        expected = sum(moved) / sum(seq.num_frames for seq in inputs)
        assert row["displacement"] == pytest.approx(expected, rel=1e-6)
        record = json.loads(
            read_bytes(done_record_location(parse_location(tmp_path / "packed"), name))
        )
        assert record["displacement"] == pytest.approx(expected, rel=1e-5)
    # The rows' seconds share the call's time by frames: they add up to it.
    assert rows[2]["seconds"] == 0.0 and all(row["seconds"] > 0 for row in rows if row["frames"])
    again = packed.process_many(items)
    assert [row["status"] for row in again] == ["skipped"] * 2 + ["error"] + ["skipped"] * 3
    assert [row["displacement"] for row in again if row["status"] == "skipped"] == pytest.approx(
        [row["displacement"] for row in rows if row["status"] == "written"], rel=1e-5
    )


def test_a_failed_forward_pass_fails_the_objects_with_windows_in_it_and_no_other(
    tmp_path: Path, refiner: Refiner, sample_sequences
) -> None:
    cfg = refiner.config
    source, output = parse_location(tmp_path / "in"), parse_location(tmp_path / "out")
    names = [f"o{i}.parquet" for i in range(5)]
    for i, name in enumerate(names):
        write_bytes_atomic(source.join(name), parquet_bytes(sample_sequences[i : i + 1 + i % 2]))
    small = Refiner(refiner.model, cfg.replace(["refine.batch_windows=7"]), device="cpu")
    passes: list[int] = []
    run_windows = small.run_windows

    def second_pass_fails(windows: np.ndarray) -> np.ndarray:
        passes.append(len(windows))
        if len(passes) == 2:
            raise RuntimeError("out of memory (injected)")
        return run_windows(windows)

    small.run_windows = second_pass_fails
    worker = ObjectRefiner(small, cfg, source, output, "parquet", "id")
    rows = worker.process_many([(name, name) for name in names])
    # Which objects had windows in the second pass (objects' windows run in their order).
    counts = [len(small.cut_many(read_sequence_parquet(source.join(n))).starts) for n in names]
    ends = np.cumsum(counts)
    failed_pass = (passes[0], passes[0] + passes[1])
    hit = [b < failed_pass[1] and e > failed_pass[0] for b, e in zip(ends - counts, ends)]
    assert any(hit) and not all(hit), (counts, passes)
    for name, row, failed in zip(names, rows, hit):
        if failed:
            assert row["status"] == "error", row
            assert "out of memory (injected)" in row["error"] and name in row["error"]
            assert _nothing_written(output, name)
        else:
            assert row["status"] == "written", row
    small.run_windows = run_windows  # a rerun refines exactly the failed ones
    again = worker.process_many([(name, name) for name in names])
    assert [row["status"] for row in again] == ["written" if f else "skipped" for f in hit]


def _body_size(seq) -> float:
    """The median over frames of the median distance of observed joints from the frame's
    median joint (the body size of hanet.data.plausibility), with numpy's nanmedian."""
    observed = np.where(seq.observed()[..., None], seq.pred.astype(np.float64), np.nan)
    centres = np.nanmedian(observed, axis=1, keepdims=True)
    spreads = np.nanmedian(np.linalg.norm(observed - centres, axis=-1), axis=1)
    return float(np.median(spreads[np.isfinite(spreads) & (spreads > 0)]))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name an fd")
def test_a_call_syncs_every_output_and_record_once_before_it_returns(
    tmp_path: Path, refiner: Refiner, sample_sequences, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, output = parse_location(tmp_path / "in"), parse_location(tmp_path / "out")
    names = [f"o{i}.parquet" for i in range(3)]
    for i, name in enumerate(names):
        write_bytes_atomic(source.join(name), parquet_bytes(sample_sequences[i : i + 1]))
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        # Synced after the whole object is in place: its final name, never a temporary.
        assert not os.path.basename(path).startswith("."), path
        synced.append(path)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    rows = _worker(refiner.model, refiner.config, source, output).process_many(
        [(name, name) for name in names]
    )
    assert [row["status"] for row in rows] == ["written"] * 3
    files = [output.join(name).path for name in names]
    records = [done_record_location(output, name).path for name in names]
    assert sorted(p for p in synced if p.endswith(".parquet")) == sorted(files)
    assert sorted(p for p in synced if p.endswith(".json")) == sorted(records)
    # Each folder once, after its files: the renames.
    folders = [p for p in synced if os.path.isdir(p)]
    assert sorted(folders) == sorted({os.path.dirname(p) for p in files + records})


def _two_objects(tmp_path: Path, sample_sequences) -> tuple[Location, Location, list[str]]:
    """An input folder of two one-clip objects, an output folder, and the objects' names."""
    source, output = parse_location(tmp_path / "in"), parse_location(tmp_path / "out")
    names = ["a.parquet", "b.parquet"]
    for i, name in enumerate(names):
        write_bytes_atomic(source.join(name), parquet_bytes(sample_sequences[i : i + 1]))
    return source, output, names


def test_a_failed_sync_counts_nothing_of_the_call_and_a_rerun_redoes_it(
    tmp_path: Path, refiner: Refiner, sample_sequences, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, output, names = _two_objects(tmp_path, sample_sequences)
    items = [(name, name) for name in names]
    worker = _worker(refiner.model, refiner.config, source, output)

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    rows = worker.process_many(items)
    assert [row["status"] for row in rows] == ["error"] * 2
    for row, name in zip(rows, names):
        assert "could not be synced" in row["error"] and output.join(name).uri in row["error"]
        assert not exists(done_record_location(output, name))  # never trusted by a rerun
    monkeypatch.undo()
    assert [row["status"] for row in worker.process_many(items)] == ["written"] * 2


def test_each_input_is_read_once_for_its_fingerprint_and_its_sequences(
    tmp_path: Path, refiner: Refiner, sample_sequences, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, output, names = _two_objects(tmp_path, sample_sequences)
    opened: list[str] = []
    real = Location.filesystem

    class Counting:
        """The real filesystem, noting every file opened for reading (a GET on S3)."""

        def __init__(self, fs) -> None:
            self.fs = fs

        def open_input_file(self, path: str):
            opened.append(path)
            return self.fs.open_input_file(path)

        def open_input_stream(self, path: str):
            opened.append(path)
            return self.fs.open_input_stream(path)

        def __getattr__(self, name: str):
            return getattr(self.fs, name)

    monkeypatch.setattr(Location, "filesystem", lambda loc: Counting(real(loc)))
    worker = _worker(refiner.model, refiner.config, source, output)
    rows = worker.process_many([(name, name) for name in names])
    assert [row["status"] for row in rows] == ["written"] * 2
    inputs = sorted(source.join(name).path for name in names)
    assert sorted(p for p in opened if p.startswith(source.path)) == inputs
    # A rerun reads each input once more for its fingerprint (and its output to check it).
    opened.clear()
    assert [row["status"] for row in worker.process_many([(n, n) for n in names])] == [
        "skipped"
    ] * 2
    assert sorted(p for p in opened if p.startswith(source.path)) == inputs
