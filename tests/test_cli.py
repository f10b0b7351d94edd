"""hanet.cli: one error line and exit status 2 for a user's mistake, tracebacks for bugs, and
Ray's loggers quiet unless verbose."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ray.exceptions import RayTaskError
from ray.train import WorkerGroupError

from hanet.checkpoint import CheckpointError, load_checkpoint
from hanet.cli import BUG_HINT, exit_on_user_error, setup_logging, user_error
from hanet.config import ConfigError, load_config
from hanet.dataset import DatasetError
from hanet.io.errors import AccessDenied
from hanet.io.location import Location, parse_location
from hanet.io.storage import read_bytes, write_bytes_atomic

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("mistake", "named"),
    [
        (lambda: load_config(None, ["train.nope=1"]), "train.nope: unknown key"),
        (lambda: parse_location("ftp://host/x"), "unsupported scheme 'ftp'"),
        (lambda: read_bytes(parse_location("/nonexistent/file.npz")), "/nonexistent/file.npz"),
        (lambda: (_ for _ in ()).throw(DatasetError("/d: no train split")), "/d: no train split"),
    ],
)
def test_user_errors_are_one_line_and_status_2(mistake, named, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info, exit_on_user_error():
        mistake()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and named in err and err.count("\n") == 1


def _remote(cause: BaseException) -> BaseException:
    """``cause`` as Ray hands it back from a task or actor: a RayTaskError that is also an
    instance of the cause's class, whose text is the remote traceback."""
    return RayTaskError(
        "refine", "Traceback (most recent call last):\n  ...", cause
    ).as_instanceof_cause()


def test_user_errors_raised_inside_ray_are_found_and_shown_without_ray_text(capsys) -> None:
    damaged = CheckpointError("/runs/a/model.pt: the weights do not match the checksum")
    denied = AccessDenied("s3://b/in: access denied by http://127.0.0.1:1")
    train = WorkerGroupError("rank 0 failed", {0: _remote(denied), 1: RuntimeError("peer")})
    for raised, shown in [(_remote(damaged), damaged), (train, denied)]:
        assert isinstance(raised, Exception) and user_error(raised) is shown
        with pytest.raises(SystemExit), exit_on_user_error():
            raise raised
        assert capsys.readouterr().err == f"error: {shown}\n"
    assert user_error(_remote(KeyError("x"))) is None


def test_impossible_local_paths_are_user_errors(tmp_path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_info, exit_on_user_error():
        write_bytes_atomic(parse_location(blocker / "out.parquet"), b"x")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert str(blocker) in err


def test_bugs_keep_their_traceback_and_point_to_verbose() -> None:
    with pytest.raises(KeyError) as err, exit_on_user_error():
        {}["missing"]
    assert BUG_HINT in getattr(err.value, "__notes__", []) and "--verbose" in BUG_HINT
    assert issubclass(ConfigError, ValueError)  # callers catching ValueError still work


def test_ray_loggers_are_quiet_unless_verbose() -> None:
    setup_logging(verbose=False)
    assert logging.getLogger("ray.data").level == logging.WARNING
    assert logging.getLogger("hanet").getEffectiveLevel() == logging.INFO
    setup_logging(verbose=True)
    assert logging.getLogger("ray.train").level == logging.INFO
    setup_logging(verbose=False)


# ----------------------------------------------------------------------------------------------
# The pipelines as users run them: one line, exit status 2, no traceback, no credential


def _damaged_copy(checkpoint: Location, target: Path) -> Path:
    data = read_bytes(checkpoint)
    weights = load_checkpoint(checkpoint)["model"]
    raw = max(weights.values(), key=lambda t: t.numel()).numpy().tobytes()
    at = data.find(raw) + len(raw) // 2
    target.write_bytes(data[:at] + bytes(16) + data[at + 16 :])
    return target


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, str(REPO / "pipelines" / f"{script}.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.cli
def test_a_damaged_checkpoint_is_one_line_before_ray_starts(checkpoint, tmp_path) -> None:
    damaged = _damaged_copy(checkpoint, tmp_path / "model.pt")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.parquet").write_bytes(b"not even parquet")
    code, out, err = _run(
        "refine", "--checkpoint", str(damaged), "--input", str(tmp_path / "in"),
        "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert err == (
        f"error: {damaged}: the weights do not match the checksum stored with them: the file is "
        "damaged (copy or export it again)\n"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.cli
def test_an_override_that_is_not_yaml_is_one_line(tmp_path) -> None:
    code, out, err = _run("train", "--set", "train.lr=[0.1", "--output", str(tmp_path / "run"))
    assert (code, out) == (2, "")
    assert err.startswith("error: --set train.lr=[0.1: the value '[0.1' is not valid YAML (")
    assert err.count("\n") == 1


@pytest.mark.cli
@pytest.mark.s3
def test_wrong_s3_credentials_are_one_line_without_the_secret(
    s3_server, s3_root, checkpoint, tmp_path
) -> None:
    write_bytes_atomic(s3_root.join("in/a.parquet"), b"x")
    env = {**os.environ, **s3_server.env(), "AWS_SECRET_ACCESS_KEY": "wrong-secret-0123456789"}
    code, out, err = _run(
        "refine", "--checkpoint", str(checkpoint.path), "--input", s3_root.join("in").uri,
        "--output", s3_root.join("out").uri, env=env,
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {s3_root.join('in').uri}: access denied by {s3_server.endpoint}")
    assert err.count("\n") == 1
    for secret in ("wrong-secret-0123456789", s3_server.secret_key, s3_server.access_key):
        assert secret not in err
