"""hanet.cli: one error line and exit status 2 for a user's mistake, tracebacks for bugs, and
Ray's loggers quiet unless verbose."""

from __future__ import annotations

import logging

import pytest
from ray.exceptions import RayTaskError
from ray.train import WorkerGroupError

from hanet.checkpoint import CheckpointError
from hanet.cli import BUG_HINT, exit_on_user_error, setup_logging, user_error
from hanet.config import ConfigError, load_config
from hanet.dataset import DatasetError
from hanet.io.errors import AccessDenied
from hanet.io.location import parse_location
from hanet.io.storage import read_bytes, write_bytes_atomic


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
