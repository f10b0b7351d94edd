"""What every pipeline entry point shares: logging, Ray start-up, and one error exit.

The console shows the user's job, not Ray's internals: Ray's own loggers, its workers' output
and Ray Data's progress bars are quiet unless ``--verbose``; the pipelines print one line per
step of their own work. A mistake in what the user gave (any :class:`hanet.errors.UserError`:
a config, a data file, a location or its storage, a checkpoint; or a missing or forbidden local
file) is one ``error: ...`` line and exit status 2, also when it was raised inside a Ray task or
a Ray Train worker; anything else is a bug and keeps its traceback, with a pointer to
``--verbose`` for Ray's own logs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hanet.errors import UserError

__all__ = ["exit_on_user_error", "init_ray", "setup_logging", "user_error"]

# Loggers that report Ray's own machinery; WARNING and above still get through.
_RAY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune", "ray.serve", "filelock")
# The loggers that emit the notices below (filters on a logger see its own records only).
_NOTICE_LOGGERS = (
    "ray.data._internal.progress",
    "ray._private.authentication.authentication_token_setup",
)
USER_ERROR_EXIT = 2
# Besides our own errors, the OS's refusals of a local path the user named (their text names it).
_USER_OS_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)
BUG_HINT = (
    "this is a bug, not a problem with what you gave; run again with --verbose for Ray's own "
    "logs and report it with them"
)


class _DropNotices(logging.Filter):
    """Drops Ray's notices about settings we chose on purpose (bars off while quiet)."""

    NOTICES = ("Progress bars disabled", "Token authentication is enabled")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.NOTICES)


def setup_logging(verbose: bool = False) -> None:
    """Our INFO lines as ``HH:MM:SS message``; Ray's loggers at WARNING unless ``verbose``."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        if verbose
        else "%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    for name in _RAY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    for name in _NOTICE_LOGGERS:
        logger = logging.getLogger(name)
        for existing in [f for f in logger.filters if isinstance(f, _DropNotices)]:
            logger.removeFilter(existing)
        if not verbose:
            logger.addFilter(_DropNotices())


def init_ray(num_cpus: int | None = None, dashboard: bool = False, verbose: bool = False) -> None:
    """Connect to the cluster under ``ray job submit`` (RAY_ADDRESS is set) or start a small
    local instance on a laptop. Environment comes from the job's runtime_env, not from here.
    Tune over Train V2 needs ``dashboard=True`` to release a stopped trial's resources."""
    import ray
    import ray.data

    if not ray.is_initialized():
        # Quiet: Ray's loggers keep our handlers (and their level and notice filter) instead
        # of installing their own, and the workers' output stays in Ray's log files.
        quiet = {"log_to_driver": verbose, "configure_logging": verbose}
        if os.environ.get("RAY_ADDRESS"):
            ray.init(**quiet)
        else:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=dashboard,
                dashboard_host="127.0.0.1",
                object_store_memory=int(os.environ.get("HANET_OBJECT_STORE_BYTES", 400_000_000)),
                **quiet,
            )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = verbose
    context.print_on_execution_start = verbose
    setup_logging(verbose)  # ray.init installs its own handlers on the "ray" loggers


def _wrapped(err: BaseException) -> list[Any]:
    """The errors a Ray wrapper carries: a task's cause, each Train worker's failure, the Train
    controller's, and Python's own chain."""
    inner = [getattr(err, "cause", None), getattr(err, "controller_failure", None)]
    inner += list((getattr(err, "worker_failures", None) or {}).values())
    inner.append(err.__cause__)
    return [e for e in inner if isinstance(e, BaseException) and e is not err]


def _is_ray(err: BaseException) -> bool:
    # RayTaskError(CheckpointError) is a CheckpointError too, but its text is a remote traceback.
    return type(err).__module__.split(".")[0] == "ray"


def user_error(err: BaseException) -> BaseException | None:
    """The user's mistake behind ``err``: itself, or the one a Ray wrapper carries; None for
    a bug."""
    queue, seen = [err], set()
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (UserError, *_USER_OS_ERRORS)) and not _is_ray(current):
            return current
        if _is_ray(current):
            queue.extend(_wrapped(current))
    return None


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn a user's mistake raised inside the block (see :func:`user_error`) into one
    ``error: ...`` line on stderr and exit status 2 (``SystemExit``); bugs propagate with their
    traceback, which ends with a pointer to ``--verbose``."""
    try:
        yield
    except Exception as err:
        mistake = user_error(err)
        if mistake is None:
            if hasattr(err, "add_note"):  # Python >= 3.11: the hint ends the traceback
                err.add_note(BUG_HINT)
            else:
                print(BUG_HINT, file=sys.stderr, flush=True)
            raise
        print(f"error: {mistake}", file=sys.stderr, flush=True)
        raise SystemExit(USER_ERROR_EXIT) from None
