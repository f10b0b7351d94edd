"""hanet.state_hash: equal content gives an equal hash; any change of content changes it."""

from __future__ import annotations

import pytest
import torch

from hanet.state_hash import content_hash


def _state() -> dict:
    return {
        "w": torch.arange(12, dtype=torch.float32).reshape(3, 4),
        "groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1]}],
        "step": torch.tensor(3),
        "flag": torch.tensor([True, False]),
        "empty": torch.zeros(0),
    }


def test_equal_content_equal_hash_whatever_the_key_order_or_device_copy() -> None:
    state = _state()
    reordered = dict(reversed(list(state.items())))
    cloned = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
    assert content_hash(state) == content_hash(reordered) == content_hash(cloned)
    assert content_hash(state).startswith("sha256:") and len(content_hash(state)) == 71


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["w"].view(-1)[5].add_(1e-6),  # one value, barely
        lambda s: s.update(w=s["w"].reshape(4, 3)),  # same bytes, another shape
        lambda s: s.update(w=s["w"].double()),  # same values, another dtype
        lambda s: s["groups"][0].update(lr=2e-3),  # a plain value
        lambda s: s.update(extra=torch.zeros(1)),  # a key more
        lambda s: s["flag"].logical_not_(),
    ],
)
def test_any_change_of_content_changes_the_hash(change) -> None:
    state = _state()
    before = content_hash(state)
    change(state)
    assert content_hash(state) != before
