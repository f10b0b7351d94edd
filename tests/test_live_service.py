"""The live service on a real local Ray Serve: concurrent streams over HTTP and WebSocket on
two replicas give exactly what StreamRefiner gives, bad requests answer 4xx, silent streams
expire."""

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from websockets.sync.client import connect

from hanet.live.router import stream_key
from hanet.streaming import StreamRefiner

pytestmark = [pytest.mark.ray, pytest.mark.slow]

LOOKAHEAD = 2
IDLE_S = 3.0
ATOL = 2e-3  # batched vs single-window float32 rounding (as in test_streaming)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(ray_session, checkpoint: Path):
    from ray import serve

    from hanet.live.service import build_app

    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    overrides = [f"refine.lookahead={LOOKAHEAD}", f"serve.idle_timeout_s={IDLE_S}"]
    try:
        serve.run(build_app(str(checkpoint), overrides, replicas=2), name="live", route_prefix="/")
        yield f"127.0.0.1:{port}"
    finally:
        serve.shutdown()


def _frames(seed: int, count: int = 13) -> np.ndarray:
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 3, (count, 15, 2)), axis=0) + rng.uniform(50, 250, (15, 2))
    poses = walk.astype(np.float32)
    poses[4:6, 2] = np.nan  # a joint lost for two frames
    return poses


def _expected(checkpoint: Path, poses: np.ndarray) -> np.ndarray:
    stream = StreamRefiner.from_checkpoint(checkpoint, lookahead=LOOKAHEAD, device="cpu")
    out = [f for pose in poses for f in stream.push(pose)] + stream.flush()
    return np.stack(out)


def _joints(pose: np.ndarray) -> list:
    return [None if np.isnan(p).any() else p.tolist() for p in pose.astype(np.float64)]


def _http_stream(base: str, stream_id: str, poses: np.ndarray) -> list[dict]:
    got, url = [], f"http://{base}/v1/streams/{stream_id}"
    with requests.Session() as http:
        for t in range(0, len(poses), 3):
            if t % 2:  # several frames in one request
                body = {"frames": [{"keypoints": _joints(p)} for p in poses[t : t + 3]]}
            else:
                body = {"keypoints": _joints(poses[t])}
                if t + 1 < len(poses):
                    got += http.post(f"{url}/frames", json=body).json()["frames"]
                    body = {"frames": [{"keypoints": _joints(p)} for p in poses[t + 1 : t + 3]]}
            answer = http.post(f"{url}/frames", json=body)
            assert answer.status_code == 200, answer.text
            got += answer.json()["frames"]
        end = http.delete(url).json()
    assert end["ended"] is True
    return got + end["frames"]


def _ws_stream(base: str, stream_id: str, poses: np.ndarray) -> list[dict]:
    got = []
    with connect(f"ws://{base}/v1/streams/{stream_id}/ws") as ws:
        for pose in poses:
            ws.send(json.dumps({"keypoints": _joints(pose)}))
            got += json.loads(ws.recv())["frames"]
        ws.send(json.dumps({"keypoints": [[1, 2]]}))  # a bad message: answered, socket stays
        assert "expects 15" in json.loads(ws.recv())["error"]
        ws.send(json.dumps({"end": True}))
        got += json.loads(ws.recv())["frames"]
    return got


def _as_array(frames: list[dict]) -> np.ndarray:
    assert [f["index"] for f in frames] == list(range(len(frames)))
    return np.array(
        [[p if p is not None else [np.nan] * 2 for p in f["keypoints"]] for f in frames]
    )


def test_health(service: str) -> None:
    answer = requests.get(f"http://{service}/v1/health")
    assert answer.status_code == 200
    assert answer.json()["lookahead"] == LOOKAHEAD and answer.json()["joints"] == 15


def test_concurrent_streams_equal_the_stream_refiner(service: str, checkpoint: Path) -> None:
    poses = {f"cam-{i}": _frames(i) for i in range(8)}
    expected = {sid: _expected(checkpoint, p) for sid, p in poses.items()}
    with ThreadPoolExecutor(8) as pool:
        jobs = {
            sid: pool.submit(_ws_stream if i % 2 else _http_stream, service, sid, p)
            for i, (sid, p) in enumerate(poses.items())
        }
        results = {sid: job.result(timeout=120) for sid, job in jobs.items()}
    for sid, frames in results.items():
        np.testing.assert_allclose(_as_array(frames), expected[sid], atol=ATOL, err_msg=sid)


def test_bad_requests_answer_4xx_and_the_service_stays_up(service: str) -> None:
    url = f"http://{service}/v1/streams/bad/frames"
    cases = [
        (dict(json={"keypoints": [[1, 2]] * 14}), 422, "14 joints"),
        (dict(json={"keypoints": [["a", 2]] * 15}), 400, "not a number"),
        (dict(data=b'{"keypoints": [[NaN, 1]]}'), 400, "not a finite number"),
        (dict(data=b"not json"), 400, "not JSON"),
        (dict(data=b"[" * 2_000_000), 413, "at most"),
    ]
    for kwargs, status, message in cases:
        answer = requests.post(url, **kwargs)
        assert answer.status_code == status and message in answer.json()["error"], answer.text
    answer = requests.delete(f"http://{service}/v1/streams/never-started")
    assert answer.status_code == 404 and "no stream" in answer.json()["error"]
    answer = requests.post(f"http://{service}/v1/streams/..%2Fx/frames", json={})
    assert 400 <= answer.status_code < 500 and "error" in answer.json()
    assert requests.get(f"http://{service}/v1/health").status_code == 200


def test_silent_streams_expire(service: str) -> None:
    url = f"http://{service}/v1/streams/idle"
    assert requests.post(f"{url}/frames", json={"keypoints": [[5, 5]] * 15}).status_code == 200
    time.sleep(IDLE_S + 2.5)  # the replica sweeps every IDLE_S / 4 seconds
    answer = requests.delete(url)
    assert answer.status_code == 404, answer.text


def test_router_key_is_the_stream_id() -> None:
    assert stream_key("/v1/streams/cam-1/frames") == "cam-1"
    assert stream_key("/v1/streams/cam-1") == "cam-1"
    assert stream_key("/v1/health") is None
