"""Ray's own view of this test session's processes, through its state API, as an operator
would look (other Ray instances may run on the same machine: always name ours)."""

from __future__ import annotations

import ray
from ray.util.state import list_actors


def live_actors(class_name_part: str) -> list[dict]:
    """The ALIVE actors of the connected Ray instance whose class name contains the text."""
    alive = list_actors(
        address=ray.get_runtime_context().gcs_address,
        filters=[("state", "=", "ALIVE")],
        limit=10_000,
    )
    return [actor for actor in alive if class_name_part in actor["class_name"]]
