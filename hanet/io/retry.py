"""Trying again while the object store does not answer: a restart or a network blip should
cost a pause, not a failed job. Only :attr:`~hanet.io.errors.StorageError.transient`
failures are retried; the caller's work must be idempotent."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from hanet.io.errors import translate
from hanet.io.location import Location

__all__ = ["retry_unreachable"]

T = TypeVar("T")


def retry_unreachable(
    attempt: Callable[[], T],
    store: Location,
    delays: Sequence[float],
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """``attempt()``, run again after each pause in ``delays`` for as long as it fails because
    ``store``'s endpoint does not answer.

    Args:
        attempt: The work; it must be safe to run again after a failure anywhere in it.
        store: A location on the object store the work uses (names the endpoint).
        delays: Seconds to wait before each new attempt; their number bounds the retries.
        on_retry: Called with the (translated) error and the pause before each new attempt.

    Returns:
        What the first successful attempt returned.

    Raises:
        StorageError: The last failure, translated, when it was a storage failure; any other
            error at once, unchanged.
    """
    for delay in (*delays, None):
        try:
            return attempt()
        except Exception as err:
            storage = translate(err, store)
            if not getattr(storage, "transient", False) or delay is None:
                if storage is err:
                    raise
                raise storage from err
            if on_retry is not None:
                on_retry(storage, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
