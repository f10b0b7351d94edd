"""The streams a replica holds: created on first use, found again, expired when silent."""

import pytest
from posedata import TINY_MODEL

from hanet.config import from_dict
from hanet.live.api import BadRequest
from hanet.live.streams import StreamTable


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _table(clock: Clock, **serve) -> StreamTable:
    raw = {**TINY_MODEL, "serve": {"idle_timeout_s": 10.0, **serve}}
    return StreamTable(from_dict(raw), lookahead=1, clock=clock)


def test_streams_are_kept_while_heard_from_and_expire_when_silent() -> None:
    clock = Clock()
    table = _table(clock)
    a = table.get("a")
    clock.now = 6.0
    table.get("b")
    clock.now = 9.0
    assert table.get("a") is a  # heard from at 0 and 9
    clock.now = 16.5  # b silent since 6, a since 9
    assert table.expire() == 1 and "b" not in table and "a" in table
    with pytest.raises(BadRequest) as err:
        table.pop("b")
    assert err.value.status == 404
    assert table.pop("a") is a and len(table) == 0 and table.expired == 1


def test_limits_and_missing_image_size() -> None:
    clock = Clock()
    table = _table(clock, max_streams=1)
    table.get("a")
    with pytest.raises(BadRequest) as err:
        table.get("b")
    assert err.value.status == 503
    raw = {**TINY_MODEL, "data": {**TINY_MODEL["data"], "image_width": None, "image_height": None}}
    bare = StreamTable(from_dict(raw), lookahead=0, clock=clock)
    with pytest.raises(BadRequest, match="image size") as err:
        bare.get("x")
    assert err.value.status == 400
    assert bare.get("x", image_size=(320, 240)).image_size == (320, 240)
