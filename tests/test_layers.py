"""TODO docstring"""

from __future__ import annotations

import math

import pytest
import torch

from hanet.layers import sinusoid_table


def test_sinusoid_table():
    table = sinusoid_table(11, 8)
    assert table.shape == (11, 8)
    assert torch.allclose(table[0], torch.tensor([0.0, 1.0] * 4))  # sin 0, cos 0 interleaved
    angle = 10 / (10 + 1e-6) * 2 * math.pi / 10000 ** (2 * 1 / 4)  # frame 10, frequency 1
    assert table[10, 2].item() == pytest.approx(math.sin(angle), abs=1e-6)
    assert table[10, 3].item() == pytest.approx(math.cos(angle), abs=1e-6)
