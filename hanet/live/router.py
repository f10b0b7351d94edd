"""Sticky routing: every request of a stream goes to the replica that holds its state.

A stream's state (its last T frames) lives in one replica's memory. Serve's consistent-hash
router keeps a session on one replica, keyed by a session header; this one takes the key from
the path instead (``/v1/streams/{stream_id}/...``), so clients need nothing but the URL. With
no fallback replicas (``num_fallback_replicas=0``) a busy replica makes a request wait rather
than land where its stream is unknown. When replicas come or go, the ring moves only the
streams of the replicas that changed (those restart with a padded window).
"""

from __future__ import annotations

import re

from ray.serve._private.request_router.common import PendingRequest
from ray.serve.experimental.consistent_hash_router import ConsistentHashRouter

__all__ = ["ROUTER", "ROUTER_KWARGS", "StreamRouter", "stream_key"]

_STREAM_PATH = re.compile(r"/v1/streams/([^/]+)")
ROUTER = "hanet.live.router.StreamRouter"
ROUTER_KWARGS = {"num_fallback_replicas": 0}


def stream_key(route: str) -> str | None:
    """The stream id in a request path, or None for other paths."""
    match = _STREAM_PATH.search(route)
    return match.group(1) if match else None


class StreamRouter(ConsistentHashRouter):
    """Consistent hashing on the stream id in the path (other paths: spread evenly)."""

    def _routing_key(self, pending_request: PendingRequest | None) -> str | None:
        if pending_request is not None:
            key = stream_key(pending_request.metadata.route)
            if key is not None:
                return key
        return super()._routing_key(pending_request)
