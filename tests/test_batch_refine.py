"""Batch refinement (hanet.batch_refine, pipelines/refine.py) and pipelines/evaluate.py.

A tiny random-weight checkpoint is enough: the tests check that the distributed job produces
exactly what the library refiner produces, handles every input format and bad objects, and
resumes without losing or duplicating anything; not that the refinement is good.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
import pytest
import torch
from posedata import IMAGE_SIZE, parquet_bytes, pipeline
from rayprocs import live_actors
from s3server import S3Server, S3ServerError, start_seaweedfs

from hanet.batch_refine import CALLS_PER_ACTOR, plan_calls, run_refine
from hanet.checkpoint import CheckpointError
from hanet.data.schema import Sequence
from hanet.formats.dispatch import read_any
from hanet.formats.keypoint_json import read_keypoint_json
from hanet.formats.parquet import read_sequence_parquet
from hanet.formats.safe_npz import load_npz
from hanet.io.errors import EndpointUnreachable
from hanet.io.location import Location, parse_location
from hanet.io.storage import (
    all_files,
    delete_tree,
    exists,
    fingerprint,
    hidden_sibling,
    list_files,
    read_bytes,
    write_bytes_atomic,
)
from hanet.records import (
    DONE_DIR,
    ERRORS_FILE,
    MANIFEST_FILE,
    done_record_location,
    sha256,
)
from hanet.refiner import Refiner

REPO = Path(__file__).resolve().parent.parent
BUCKET = "hanet-refine-tests"
GOOD = ["json/clip.json", "npz/cam1.npz", "videos/a.parquet", "videos/b.parquet"]
CORRUPT = "npz/broken.npz"


# ----------------------------------------------------------------------------------------------
# Fixtures: a tiny checkpoint, sample sequences, a mixed corpus


def _detections_npz(sequences: list[Sequence]) -> bytes:
    """Published-style detections: one [T, J*2] entry per sequence; one joint marked -1."""
    entries = np.empty(len(sequences), dtype=object)
    for i, seq in enumerate(sequences):
        poses = seq.pred.copy()
        if i == 0:
            poses[4, 2] = -1.0  # the published convention for a missing 2D joint
        entries[i] = poses.reshape(seq.num_frames, -1)
    buffer = io.BytesIO()
    np.savez(buffer, joints_2d=entries)
    return buffer.getvalue()


def _keypoint_json(tracks: list[Sequence], frames: int = 24, joints: int | None = None) -> bytes:
    """COCO keypoint results for two tracks; track 2 is absent from frame 5, track 1 has a
    zero-score joint at frame 7 and a lower-scoring duplicate at frame 0."""
    detections = []
    for track, seq in enumerate(tracks, start=1):
        for frame in range(frames):
            if track == 2 and frame == 5:
                continue
            xy = seq.pred[frame]
            if joints is not None:  # another layout: pad the 15 joints up to `joints`
                xy = np.concatenate([xy, np.repeat(xy[:1], joints - len(xy), axis=0)])
            scores = np.full(len(xy), 0.9)
            if track == 1 and frame == 7:
                scores[3] = 0.0
            keypoints = np.concatenate([xy, scores[:, None]], axis=1).reshape(-1)
            det = {"image_id": frame, "track_id": track, "category_id": 1, "score": 0.8}
            detections.append({**det, "keypoints": [float(v) for v in keypoints]})
            if track == 1 and frame == 0:
                worse = {**det, "score": 0.1, "keypoints": [0.0] * len(keypoints)}
                detections.append(worse)
    return json.dumps(detections).encode()


def _make_corpus(root: Location, seqs: list[Sequence]) -> None:
    write_bytes_atomic(root.join("videos/a.parquet"), parquet_bytes(seqs[0:2]))
    write_bytes_atomic(root.join("videos/b.parquet"), parquet_bytes(seqs[2:3]))
    detections = _detections_npz(seqs[3:5])
    write_bytes_atomic(root.join("npz/cam1.npz"), detections)
    write_bytes_atomic(root.join(CORRUPT), detections[: len(detections) // 2])
    write_bytes_atomic(root.join("json/clip.json"), _keypoint_json(seqs[1:3]))


def _expected(refiner: Refiner, location: Location) -> dict[str, Sequence]:
    """What the library refiner makes of each sequence of one input object, one at a time."""
    inputs = read_any(location, "jhmdb", "2D", 30.0, IMAGE_SIZE)
    return {seq.sequence_id: (seq, refiner.refine(seq)) for seq in inputs}


def _check_equal(refiner: Refiner, source: Location, output: Location, rel: str) -> int:
    """Outputs equal the library's refinement; missing joints stay marked. Returns the number
    of missing joints seen."""
    expected = _expected(refiner, source.join(rel))
    out_rel = rel.rsplit(".", 1)[0] + ".parquet"
    got = {seq.sequence_id: seq for seq in read_sequence_parquet(output.join(out_rel))}
    assert sorted(got) == sorted(expected), rel
    missing = 0
    for seq_id, (original, want) in expected.items():
        np.testing.assert_allclose(
            got[seq_id].pred, want.pred, rtol=1e-4, atol=1e-4, err_msg=seq_id
        )
        np.testing.assert_array_equal(got[seq_id].joint_mask, original.joint_mask)
        assert got[seq_id].frame_names == original.frame_names
        missing += int((~got[seq_id].joint_mask).sum())
    return missing


def _snapshot(root: Location) -> dict[str, tuple[int, float]]:
    """Every object below ``root`` (bookkeeping included) with its size and mtime, except the
    per-run summary files, which every run rewrites."""
    fs = root.filesystem()
    found = {}
    for info in fs.get_file_info(pafs.FileSelector(root.path, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(root.path) + 1 :]
        if rel not in (ERRORS_FILE, MANIFEST_FILE):
            found[rel] = (info.size, info.mtime.timestamp())
    return found


def _outputs(root: Location) -> list[str]:
    return [loc.relative_to(root) for loc in list_files(root)]


# ----------------------------------------------------------------------------------------------
# Without Ray


@pytest.mark.parametrize(
    ("count", "workers", "batch_objects"),
    [(2025, 2, 16), (507, 2, 8), (11, 2, 16), (1, 4, 16), (64, 1, 16), (65, 2, 16), (3, 8, 2)],
)
def test_calls_hold_every_object_once_in_order_and_as_even_as_the_count_allows(
    count: int, workers: int, batch_objects: int
) -> None:
    items = [
        {"input": f"in/{i:04d}.parquet", "output": f"out/{i:04d}.parquet"} for i in range(count)
    ]
    calls = plan_calls(items, workers, batch_objects)
    assert [rel for call in calls for rel in call["inputs"]] == [i["input"] for i in items]
    assert [rel for call in calls for rel in call["outputs"]] == [i["output"] for i in items]
    sizes = [len(call["inputs"]) for call in calls]
    assert max(sizes) <= batch_objects
    assert max(sizes) - min(sizes) <= 1  # no call of a remnant or two
    # A small job still spreads over the pool; a large one fills its calls.
    assert len(calls) >= min(count, workers * CALLS_PER_ACTOR)
    if count >= workers * CALLS_PER_ACTOR * batch_objects:
        assert min(sizes) >= batch_objects - 1
    assert plan_calls([], workers, batch_objects) == []


def test_a_bad_checkpoint_fails_the_job_before_anything_starts(
    tmp_path: Path, checkpoint: Path, sample_sequences
) -> None:
    source = parse_location(tmp_path / "in")
    write_bytes_atomic(source.join("a.parquet"), parquet_bytes(sample_sequences[:1]))
    output = parse_location(tmp_path / "out")
    data = read_bytes(checkpoint)
    state = torch.load(io.BytesIO(data), weights_only=True)
    weights = max(state["model"].values(), key=lambda t: t.numel()).numpy().tobytes()
    at = data.find(weights) + len(weights) // 2
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(data[:at] + bytes(32) + data[at + 32 :])
    state["config"]["model"]["hidden_dim"] = 32  # a config its weights do not fit
    misfit = tmp_path / "misfit.pt"
    torch.save(state, misfit)
    for path, says in [(damaged, "do not match the checksum"), (misfit, "do not fit the stored")]:
        with pytest.raises(CheckpointError) as err:
            run_refine(parse_location(path), source, output)  # raises before Ray is used
        assert str(err.value).startswith(f"{path}: the weights ") and says in str(err.value)
        assert "\n" not in str(err.value)
    assert not exists(output)


# ----------------------------------------------------------------------------------------------
# The Ray Data job


@pytest.mark.ray
@pytest.mark.s3
@pytest.mark.slow
def test_refine_s3_mixed_formats_errors_rerun_and_resume(
    ray_session, s3_server, checkpoint: Path, refiner: Refiner, sample_sequences
) -> None:
    s3_server.make_bucket(BUCKET)
    prefix = f"s3://{BUCKET}/{uuid.uuid4().hex[:10]}"
    env = s3_server.env()
    source = parse_location(f"{prefix}/corpus", env=env)
    output = parse_location(f"{prefix}/refined", env=env)
    _make_corpus(source, sample_sequences)
    inputs_before = {rel: fingerprint(source.join(rel)) for rel in GOOD + [CORRUPT]}

    ckpt = parse_location(checkpoint)
    summary = run_refine(ckpt, source, output, workers=2, output_format="parquet")

    assert (summary.objects, summary.written, summary.skipped) == (5, 4, 0)
    assert summary.frames > 0 and summary.frames_per_s > 0
    assert _outputs(output) == sorted(rel.rsplit(".", 1)[0] + ".parquet" for rel in GOOD)
    errors = json.loads(read_bytes(output.join(ERRORS_FILE)))
    assert [e["object"] for e in errors] == [source.join(CORRUPT).uri]
    assert "broken.npz" in errors[0]["reason"] and "npz" in errors[0]["reason"]
    manifest = json.loads(read_bytes(output.join(MANIFEST_FILE)))
    assert (manifest["objects"], manifest["errors"], manifest["frames"]) == (5, 1, summary.frames)
    missing = sum(_check_equal(refiner, source, output, rel) for rel in GOOD)
    assert missing > 0  # the npz's -1 joint, the JSON's zero score and absent frame
    assert {rel: fingerprint(source.join(rel)) for rel in inputs_before} == inputs_before

    # A rerun refines nothing and writes nothing but the run summary.
    before = _snapshot(output)
    time.sleep(1.1)  # S3 mtimes have one-second resolution
    again = run_refine(ckpt, source, output, workers=2, output_format="parquet")
    assert (again.written, again.skipped, len(again.errors), again.frames) == (0, 4, 1, 0)
    assert _snapshot(output) == before

    # Interrupted after three objects, and killed between an output and its done-record: the
    # rerun completes with exactly one output per input.
    resumed = parse_location(f"{prefix}/resumed", env=env)
    first = run_refine(ckpt, source, resumed, workers=2, output_format="parquet", limit=3)
    assert (first.objects, first.written, len(first.errors)) == (3, 2, 1)  # clip, broken, cam1
    delete_tree(done_record_location(resumed, GOOD[0]))
    second = run_refine(ckpt, source, resumed, workers=2, output_format="parquet")
    assert (second.written, second.skipped, len(second.errors)) == (3, 1, 1)
    assert _outputs(resumed) == _outputs(output)
    done = [loc.relative_to(resumed.join(DONE_DIR)) for loc in _all(resumed.join(DONE_DIR))]
    assert sorted(done) == sorted(rel + ".json" for rel in GOOD)
    for rel in GOOD:
        assert read_bytes(resumed.join(rel.rsplit(".", 1)[0] + ".parquet")) == read_bytes(
            output.join(rel.rsplit(".", 1)[0] + ".parquet")
        )


def _all(root: Location) -> list[Location]:
    """Files below ``root`` including the ones list_files hides (``_done/...``)."""
    infos = root.filesystem().get_file_info(pafs.FileSelector(root.path, recursive=True))
    return [
        root.join(info.path[len(root.path) + 1 :])
        for info in infos
        if info.type == pafs.FileType.File
    ]


@pytest.mark.ray
def test_refine_cli_local_same_format_and_layout_mismatch(
    ray_session, tmp_path: Path, checkpoint: Path, refiner: Refiner, sample_sequences
) -> None:
    refine = pipeline("refine").refine

    source = parse_location(tmp_path / "corpus")
    _make_corpus(source, sample_sequences)
    coco17 = source.join("json/people17.json")
    write_bytes_atomic(coco17, _keypoint_json(sample_sequences[:2], frames=10, joints=17))
    output = tmp_path / "refined"

    summary = refine(
        checkpoint=str(checkpoint),
        input=str(source),
        output=str(output),
        workers=1,
        gpu=False,
        set_=["refine.batch_windows=32"],
        format_="same",
    )
    assert (summary["objects"], summary["written"], summary["errors"]) == (6, 4, 2)
    out = parse_location(output)
    assert _outputs(out) == sorted(GOOD)
    reasons = {e["object"]: e["reason"] for e in json.loads((output / ERRORS_FILE).read_text())}
    assert set(reasons) == {source.join(CORRUPT).uri, coco17.uri}
    assert "people17.json" in reasons[coco17.uri] and "17 keypoints" in reasons[coco17.uri]

    # npz in, npz out: refined where observed, the -1 marker kept where missing.
    expected = _expected(refiner, source.join("npz/cam1.npz"))
    stored = load_npz(out.join("npz/cam1.npz"))["joints_2d"]
    for i, (original, want) in enumerate(expected.values()):
        poses = np.asarray(stored[i]).reshape(want.pred.shape)
        observed = original.joint_mask
        # Windows packed with other objects' windows: float32 sums in another order.
        np.testing.assert_allclose(poses[observed], want.pred[observed], rtol=1e-4, atol=1e-4)
        assert (poses[~observed] == -1).all() and (~observed).sum() == (i == 0)
    again = read_any(out.join("npz/cam1.npz"), "jhmdb", "2D", 30.0, IMAGE_SIZE)
    assert [s.sequence_id for s in again] == list(expected)

    # JSON in, JSON out: one detection per track and frame, refined x, y, original scores.
    expected = _expected(refiner, source.join("json/clip.json"))
    refined_json = read_keypoint_json(out.join("json/clip.json"), "jhmdb", 30.0, IMAGE_SIZE)
    assert len(json.loads((output / "json/clip.json").read_text())) == 24 + 23
    for seq in refined_json:
        original, want = expected[seq.sequence_id]
        np.testing.assert_array_equal(seq.joint_mask, original.joint_mask)
        observed = original.joint_mask
        np.testing.assert_allclose(seq.pred[observed], want.pred[observed], atol=1e-4)
        np.testing.assert_array_equal(seq.confidence, original.confidence)

    # Parquet stays Parquet.
    _check_equal(refiner, source, out, "videos/a.parquet")

    # Switching to Parquet output refines again and replaces the same-format outputs: still
    # exactly one output per input.
    again = run_refine(parse_location(checkpoint), source, out, workers=1, output_format="parquet")
    assert (again.written, again.skipped) == (4, 0)
    assert _outputs(out) == sorted(rel.rsplit(".", 1)[0] + ".parquet" for rel in GOOD)


# ----------------------------------------------------------------------------------------------
# pipelines/evaluate.py


# ----------------------------------------------------------------------------------------------
# Faults injected for real: the object store restarted or stopped, the driver killed

CORPUS_SIZE = 30  # objects; enough that a fault lands while the job is still running


@pytest.fixture(scope="module")
def chaos_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A loopback S3 server of its own, which these tests restart and stop (the session's
    shared one stays up)."""
    try:
        server = start_seaweedfs(tmp_path_factory.mktemp("chaos-seaweedfs"))
    except S3ServerError as err:
        pytest.skip(str(err))
    server.make_bucket(BUCKET)
    try:
        yield server
    finally:
        server.stop()


def _corpus(source: Location, seqs: list[Sequence], count: int = CORPUS_SIZE) -> list[str]:
    rels = [f"clips/{i:03d}.parquet" for i in range(count)]
    for i, rel in enumerate(rels):
        write_bytes_atomic(source.join(rel), parquet_bytes([seqs[i % len(seqs)]]))
    return rels


def _done_count(output: Location) -> int:
    try:
        return len(all_files(output.join(DONE_DIR)))
    except OSError:  # the store is down: not yet
        return -1


class When(threading.Thread):
    """Runs ``action`` once ``output`` holds at least ``done`` done-records."""

    def __init__(self, output: Location, done: int, action) -> None:
        super().__init__(daemon=True)
        self.output, self.done, self.action = output, done, action
        self.fired = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            if _done_count(self.output) >= self.done:
                self.action()
                self.fired.set()
                return

    def __enter__(self) -> When:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()


def _refine_actors_gone(timeout: float = 60.0) -> bool:
    """Whether no refine actor is alive (within ``timeout``: a kill takes a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not live_actors("RefineActor"):
            return True
        time.sleep(0.5)
    return False


def _exactly_one_output_each(output: Location, rels: list[str]) -> None:
    """Every input has one output and one done-record whose checksum matches the output's
    bytes; nothing else is there (no temporaries, no duplicates)."""
    outputs = {rel: rel.rsplit(".", 1)[0] + ".parquet" for rel in rels}
    expected = set(outputs.values()) | {f"{DONE_DIR}/{rel}.json" for rel in rels}
    assert {rel for rel, _ in all_files(output)} == expected | {ERRORS_FILE, MANIFEST_FILE}
    for rel, out_rel in outputs.items():
        record = json.loads(read_bytes(done_record_location(output, rel)))
        assert record["output"] == out_rel
        assert record["output_sha256"] == sha256(read_bytes(output.join(out_rel))), rel


@pytest.mark.ray
@pytest.mark.s3
@pytest.mark.chaos
def test_s3_restarted_mid_job_retries_and_completes(
    ray_session, chaos_s3: S3Server, checkpoint: Path, sample_sequences
) -> None:
    prefix = f"s3://{BUCKET}/{uuid.uuid4().hex[:10]}"
    source = parse_location(f"{prefix}/corpus", env=chaos_s3.env())
    output = parse_location(f"{prefix}/refined", env=chaos_s3.env())
    rels = _corpus(source, sample_sequences)
    # A real restart (SIGTERM, two seconds down, started again on the same ports and data)
    # once the first object is complete.
    with When(output, 1, lambda: chaos_s3.restart(down_s=2.0)) as restart:
        summary = run_refine(parse_location(checkpoint), source, output, workers=1)
    assert restart.fired.is_set()
    assert summary.retries >= 1, "the job never met the outage"
    assert (summary.written, summary.skipped, summary.errors) == (CORPUS_SIZE, 0, [])
    _exactly_one_output_each(output, rels)


@pytest.mark.ray
@pytest.mark.s3
@pytest.mark.chaos
def test_s3_stopped_is_one_clear_error_and_a_rerun_after_it_returns_completes(
    ray_session, chaos_s3: S3Server, checkpoint: Path, sample_sequences
) -> None:
    prefix = f"s3://{BUCKET}/{uuid.uuid4().hex[:10]}"
    source = parse_location(f"{prefix}/corpus", env=chaos_s3.env())
    output = parse_location(f"{prefix}/refined", env=chaos_s3.env())
    rels = _corpus(source, sample_sequences)
    ckpt = parse_location(checkpoint)
    try:
        # Stopped mid-job, for longer than the retries last: the job stops with one error.
        with When(output, 1, chaos_s3.stop), pytest.raises(EndpointUnreachable) as err:
            run_refine(ckpt, source, output, workers=1)
        message = str(err.value)
        assert message.startswith(f"{source.uri}/clips/") and "\n" not in message
        assert f"cannot reach the S3 endpoint {chaos_s3.endpoint}" in message
        assert "are complete and kept, a rerun continues from them" in message
        assert chaos_s3.secret_key not in message and chaos_s3.access_key not in message
        assert _refine_actors_gone(), "the stopped job's actors are still at work"
        # Still down: a new run says so at once, before any actor starts.
        with pytest.raises(EndpointUnreachable, match=f"^{source.uri}: cannot reach the S3"):
            run_refine(ckpt, source, output, workers=1)
    finally:
        if chaos_s3.process is None:
            chaos_s3.restart()
    summary = run_refine(ckpt, source, output, workers=1)
    assert summary.skipped >= 1 and summary.written + summary.skipped == CORPUS_SIZE
    assert summary.errors == []
    _exactly_one_output_each(output, rels)


@pytest.mark.ray
@pytest.mark.chaos
def test_driver_killed_mid_job_rerun_gives_exactly_one_output_per_input(
    ray_session, tmp_path: Path, checkpoint: Path, sample_sequences
) -> None:
    source, output = parse_location(tmp_path / "corpus"), parse_location(tmp_path / "refined")
    rels = _corpus(source, sample_sequences)
    env = dict(os.environ, RAY_ADDRESS=ray_session.get_runtime_context().gcs_address)
    command = [
        sys.executable,
        str(REPO / "pipelines" / "refine.py"),
        *("--checkpoint", str(Path(checkpoint.path))),
        *("--input", source.uri, "--output", output.uri, "--workers", "1"),
    ]
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with When(output, 3, lambda: driver.send_signal(signal.SIGKILL)) as kill:
            driver.wait(timeout=300)
        assert kill.fired.is_set() and driver.returncode == -signal.SIGKILL
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    finished = _done_count(output)
    assert 3 <= finished < CORPUS_SIZE, "the driver was not killed mid-job"
    # What a kill between an atomic write and its rename leaves (the kill above may or may
    # not land there): the rerun removes it.
    stale = hidden_sibling(output.join(DONE_DIR, rels[-1] + ".json"), "tmp")
    Path(stale.path).parent.mkdir(parents=True, exist_ok=True)
    Path(stale.path).write_text('{"input": ')
    summary = run_refine(parse_location(checkpoint), source, output, workers=1)
    assert summary.errors == [] and summary.written + summary.skipped == CORPUS_SIZE
    assert summary.skipped >= 3
    _exactly_one_output_each(output, rels)
