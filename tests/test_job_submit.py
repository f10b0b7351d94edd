"""`ray job submit` end to end: a real local head with the job server, three pipelines.

The head is started the way a cluster head is (``ray start --head`` with the dashboard, which
hosts the job server) but on private ports and a private temp dir, because other Ray instances
may be running on this machine. It runs under ``--block`` in its own session, so the test stops
exactly its own node: SIGTERM to that ``ray start`` process, then SIGKILL to anything left of its
process tree. ``ray stop`` is never used: it stops every Ray process on the machine.

Each pipeline is submitted with the documented command
``ray job submit --address http://HEAD:8265 --working-dir . -- python pipelines/X.py ...``
(plus ``--no-wait``; the job is then followed with ``JobSubmissionClient``). The job's
``python pipelines/X.py`` runs the uploaded copy of the repository: Ray puts the working dir
first on PYTHONPATH, and ``init_ray`` connects to the head because the job server sets
RAY_ADDRESS. Outputs go to absolute paths under a temp dir: the head is on this machine, so the
jobs see the same filesystem.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.cli]

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RAY_CLI = VENV_BIN / "ray"
SAMPLE_DETECTIONS = REPO / "data" / "sample" / "detected_poses" / "mocap2d" / "simplebaseline"

HEAD_START_TIMEOUT_S = 120
HEAD_START_ATTEMPTS = 3
JOB_TIMEOUT_S = 420

# Kept out of the uploaded working dir (Ray also honours .gitignore, which covers most of them).
UPLOAD_EXCLUDES = [
    ".git",
    ".venv",
    "outputs",
    "runs",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    "__pycache__",
]

# Ports a head needs besides the worker range. Picked below the Linux ephemeral range
# (32768+) so a port picked here is not handed out to some other process's connect().
PORT_FLAGS = [
    "--port",
    "--dashboard-port",
    "--ray-client-server-port",
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-grpc-port",
    "--dashboard-agent-listen-port",
    "--metrics-export-port",
    "--runtime-env-agent-port",
]
WORKER_PORTS = 60


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))  # Ray binds its ports on every interface
        except OSError:
            return False
    return True


def _free_port_block(size: int) -> int:
    """First port of ``size`` consecutive free ports in 21000-32000."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(21000, 32000 - size)
        if all(_bindable(p) for p in range(base, base + size)):
            return base
    raise RuntimeError(f"no {size} consecutive free ports found")


def _client_env(head: bool = False) -> dict[str, str]:
    """The environment every process that starts or talks to the head gets: the same auth
    mode on both sides (token auth would otherwise switch on from ~/.ray/auth_token)."""
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env["RAY_AUTH_MODE"] = "disabled"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # The job entrypoint's `python` must be this venv's interpreter.
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    if head:
        # Stop at once on SIGTERM instead of draining for Serve (nothing to drain here).
        env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    return env


class Head:
    def __init__(self, process: subprocess.Popen, dashboard: str, log: Path, temp_dir: str):
        self.process = process
        self.dashboard = dashboard
        self.log = log
        self.temp_dir = temp_dir

    @property
    def gcs_address(self) -> str:
        """The address `ray start` wrote into its temp dir (what the job server hands jobs)."""
        return (Path(self.temp_dir) / "ray_current_cluster").read_text().strip()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _launch(temp_dir: str, attempt: int) -> Head:
    """`ray start --head --block` on private ports, in a new session, logging to a file."""
    base = _free_port_block(len(PORT_FLAGS) + WORKER_PORTS)
    ports = dict(zip(PORT_FLAGS, range(base, base + len(PORT_FLAGS))))
    worker_min = base + len(PORT_FLAGS)
    command = [
        str(RAY_CLI),
        "start",
        "--head",
        "--block",
        "--num-cpus=4",
        "--object-store-memory=300000000",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
        f"--min-worker-port={worker_min}",
        f"--max-worker-port={worker_min + WORKER_PORTS - 1}",
        *(f"{flag}={port}" for flag, port in ports.items()),
    ]
    log = Path(temp_dir) / f"head-{attempt}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=_client_env(head=True),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Head(process, f"http://127.0.0.1:{ports['--dashboard-port']}", log, temp_dir)


def _ready(head: Head) -> bool | None:
    """True when the node finished starting and the job server answers; None when the
    `ray start` process died (a start-up timeout on a loaded machine); False: not yet."""
    if head.process.poll() is not None:
        return None
    if "Ray runtime started" not in head.log_tail(100_000):
        return False
    if not (Path(head.temp_dir) / "ray_current_cluster").is_file():
        return False
    try:
        with urllib.request.urlopen(f"{head.dashboard}/api/jobs/", timeout=5) as resp:
            return resp.status == 200 and isinstance(json.loads(resp.read()), list)
    except (OSError, ValueError):
        return False


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc), so the test signals only what it started."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stop(head: Head) -> None:
    """SIGTERM the blocking `ray start`: it tears its own node down (GCS, raylet, dashboard,
    agents; the raylet takes its workers with it). Then SIGKILL whatever is left of that
    process tree. Never `ray stop`, which stops every Ray instance on the machine."""
    tree = _children(head.process.pid)
    if head.process.poll() is None:
        head.process.send_signal(signal.SIGTERM)
        try:
            head.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.process.kill()
            head.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in tree:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def ray_head() -> Iterator[Head]:
    if not sys.platform.startswith("linux"):
        pytest.skip("stops its head through /proc")
    # Short path: Ray's Unix sockets live under the temp dir (108-byte path limit).
    temp_dir = tempfile.mkdtemp(prefix="hjs", dir="/tmp")
    head = None
    try:
        began = time.monotonic()
        for attempt in range(HEAD_START_ATTEMPTS):
            head = _launch(temp_dir, attempt)
            deadline = time.monotonic() + HEAD_START_TIMEOUT_S
            state = _ready(head)
            while state is False and time.monotonic() < deadline:
                time.sleep(1)
                state = _ready(head)
            if state:
                print(f"head: up in {time.monotonic() - began:.0f} s (attempt {attempt + 1})")
                break
            _stop(head)
        else:
            pytest.fail(
                f"local head did not start in {HEAD_START_ATTEMPTS} attempts:\n{head.log_tail()}"
            )
        yield head
    finally:
        if head is not None:
            _stop(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _submit(head: Head, name: str, entrypoint: list[str]) -> str:
    """`ray job submit --address ... --working-dir <repo> -- python pipelines/X.py ...`."""
    submission_id = f"hanet-{name}-{os.getpid()}-{int(time.time())}"
    runtime_env = {
        "excludes": UPLOAD_EXCLUDES,
        "env_vars": {
            "RAY_AUTH_MODE": "disabled",
            "RAY_DEDUP_LOGS": "0",
            # Other Ray instances run on this machine: Ray internals that find "the" cluster by
            # themselves (Train's placement-group cleaner, through the state API) would see
            # several and fail. On a real cluster there is one per node and this is not needed.
            "RAY_ADDRESS": head.gcs_address,
        },
    }
    command = [
        str(RAY_CLI),
        "job",
        "submit",
        "--address",
        head.dashboard,
        "--working-dir",
        str(REPO),
        "--runtime-env-json",
        json.dumps(runtime_env),
        "--submission-id",
        submission_id,
        "--no-wait",
        "--",
        *entrypoint,
    ]
    done = subprocess.run(
        command, cwd=REPO, env=_client_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"ray job submit failed:\n{done.stdout}\n{done.stderr}"
    return submission_id


def _wait_job(head: Head, submission_id: str) -> str:
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(head.dashboard)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    status = client.get_job_status(submission_id)
    while not status.is_terminal() and time.monotonic() < deadline:
        time.sleep(1)
        status = client.get_job_status(submission_id)
    logs = client.get_job_logs(submission_id)
    if status != JobStatus.SUCCEEDED:
        if not status.is_terminal():
            client.stop_job(submission_id)
        info = client.get_job_info(submission_id)
        pytest.fail(
            f"job {submission_id} ended {status} ({info.message}):\n{logs[-6000:]}\n"
            f"--- head ---\n{head.log_tail(2000)}"
        )
    return logs


def _run(head: Head, name: str, entrypoint: list[str]) -> None:
    began = time.monotonic()
    _wait_job(head, _submit(head, name, entrypoint))
    print(f"{name}: submitted and SUCCEEDED in {time.monotonic() - began:.0f} s")


def test_submit_preprocess_train_refine(ray_head: Head, tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    run = tmp_path / "run"
    detections = tmp_path / "detections"
    refined = tmp_path / "refined"
    shutil.copytree(SAMPLE_DETECTIONS, detections)

    # 1. preprocess: the bundled sample (the job's copy of data/sample) -> Parquet windows.
    _run(ray_head, "preprocess", ["python", "pipelines/preprocess.py", "--output", str(dataset)])
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["splits"]["train"]["windows"] > 0
    assert any((dataset / "windows" / "train").glob("*.parquet"))

    # 2. train: a tiny model, one short epoch, one Train worker (DDP is tested elsewhere; here
    # each extra worker only costs start-up time on two shared cores).
    _run(
        ray_head,
        "train",
        [
            "python",
            "pipelines/train.py",
            "--data",
            str(dataset),
            "--output",
            str(run),
            "--workers",
            "1",
            "--set",
            "train.epochs=1",
            "--set",
            "train.max_steps_per_epoch=2",
            "--set",
            "train.warmup_epochs=0",
            "--set",
            "model.hidden_dim=16",
            "--set",
            "model.num_stages=1",
        ],
    )
    assert (run / "model.pt").stat().st_size > 0

    # 3. refine: new detections with the trained model (the sample's images are 320x240 and
    # its detection files do not say so).
    _run(
        ray_head,
        "refine",
        [
            "python",
            "pipelines/refine.py",
            "--checkpoint",
            str(run / "model.pt"),
            "--input",
            str(detections),
            "--output",
            str(refined),
            "--set",
            "data.image_width=320",
            "--set",
            "data.image_height=240",
        ],
    )
    run_manifest = json.loads((refined / "_manifest.json").read_text())
    assert json.loads((refined / "_errors.json").read_text()) == []
    inputs = sorted(p.relative_to(detections) for p in detections.rglob("*.npz"))
    assert run_manifest["objects"] == run_manifest["written"] == len(inputs) > 0
    assert run_manifest["frames"] > 0
    for row in run_manifest["objects_table"]:
        assert (refined / row["output"]).stat().st_size > 0
