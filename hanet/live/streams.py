"""The streams one replica holds: their states, when each was last heard from, expiry.

Pure Python: the service (:mod:`hanet.live.service`) asks it for a stream's state, and drops
the streams that went silent for longer than ``serve.idle_timeout_s``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from hanet.config import Config
from hanet.live.api import BadRequest
from hanet.refiner import RefineError
from hanet.streaming import StreamState

__all__ = ["StreamTable"]


class StreamTable:
    """Stream id -> :class:`~hanet.streaming.StreamState`, least recently heard from first.

    Args:
        config: the model's configuration (with its ``serve`` section).
        lookahead: k for every stream.
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(
        self, config: Config, lookahead: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config, self.lookahead, self.clock = config, lookahead, clock
        self.idle_timeout = config.serve.idle_timeout_s
        self.limit = config.serve.max_streams
        self._streams: OrderedDict[str, tuple[StreamState, float]] = OrderedDict()
        self.expired = 0

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, stream_id: str) -> bool:
        return stream_id in self._streams

    def get(self, stream_id: str, image_size: tuple[int, int] | None = None) -> StreamState:
        """The stream's state, a new one for an id not seen (or expired); marks it heard from.

        Raises:
            BadRequest: 503 when the replica holds ``serve.max_streams`` already; 400 when the
                model needs an image size and the stream's first request gave none.
        """
        self.expire()
        entry = self._streams.pop(stream_id, None)
        if entry is None:
            if len(self._streams) >= self.limit:
                raise BadRequest(f"this replica holds {self.limit} streams already", 503)
            try:
                state = StreamState(self.config, self.lookahead, image_size)
            except RefineError as err:
                raise BadRequest(str(err)) from None
        else:
            state = entry[0]
        self._streams[stream_id] = (state, self.clock())
        return state

    def pop(self, stream_id: str) -> StreamState:
        """Remove a stream (to flush it).

        Raises:
            BadRequest: 404 for a stream that does not exist (never seen, ended or expired).
        """
        self.expire()
        entry = self._streams.pop(stream_id, None)
        if entry is None:
            raise BadRequest(f"no stream {stream_id!r} (never started, ended, or expired)", 404)
        return entry[0]

    def expire(self) -> int:
        """Drop the streams silent for longer than the idle timeout; how many went."""
        deadline = self.clock() - self.idle_timeout
        gone = 0
        while self._streams:
            stream_id, (_, seen) = next(iter(self._streams.items()))
            if seen > deadline:
                break
            del self._streams[stream_id]
            gone += 1
        self.expired += gone
        return gone
