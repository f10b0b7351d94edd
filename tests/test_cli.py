"""hanet.cli: one error line and exit status 2 for a user's mistake, tracebacks for bugs, and
Ray's loggers quiet unless verbose."""

from __future__ import annotations

import logging

import pytest

from hanet.cli import exit_on_user_error, setup_logging
from hanet.config import ConfigError, load_config
from hanet.dataset import DatasetError
from hanet.io.location import parse_location
from hanet.io.storage import read_bytes


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


def test_bugs_keep_their_traceback() -> None:
    with pytest.raises(KeyError), exit_on_user_error():
        {}["missing"]
    assert issubclass(ConfigError, ValueError)  # callers catching ValueError still work


def test_ray_loggers_are_quiet_unless_verbose() -> None:
    setup_logging(verbose=False)
    assert logging.getLogger("ray.data").level == logging.WARNING
    assert logging.getLogger("hanet").getEffectiveLevel() == logging.INFO
    setup_logging(verbose=True)
    assert logging.getLogger("ray.train").level == logging.INFO
    setup_logging(verbose=False)
