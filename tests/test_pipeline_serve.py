"""pipelines/serve.py as a user runs it: a subprocess on the test's Ray that serves until
interrupted, then shuts its application down; a bad --set is one error line."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.ray, pytest.mark.cli, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_until_interrupted(ray_session, checkpoint: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = dict(os.environ, RAY_ADDRESS=ray_session.get_runtime_context().gcs_address)
    command = [sys.executable, str(REPO / "pipelines" / "serve.py"), "--checkpoint"]
    command += [str(checkpoint), "--port", str(port), "--set", "refine.lookahead=1"]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=out)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or the app not yet ready
                time.sleep(0.5)
            assert process.poll() is None, log.read_text()
        answer = requests.post(f"{url}/v1/streams/a/frames", json={"keypoints": [[1, 2]] * 15})
        assert answer.status_code == 200 and answer.json() == {"frames": []}  # k = 1
        ended = requests.delete(f"{url}/v1/streams/a").json()
        assert [f["index"] for f in ended["frames"]] == [0]
        # Replicas may answer before serve.run has returned: interrupt a running service.
        while "serving" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=180) == 0, log.read_text()
    assert "serving" in log.read_text()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/v1/health", timeout=2)


def test_serve_refuses_a_bad_override(checkpoint: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "pipelines" / "serve.py"), "--checkpoint", str(checkpoint)]
        + ["--set", "model.hidden_dim=8"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "error: --set: model.*" in done.stderr
