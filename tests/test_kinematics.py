"""TODO docstring"""

from __future__ import annotations

import torch
from posedata import key_frames

from hanet.kinematics import (
    flow,
    interpolate_key_frames,
    key_frame_neighbours,
    mask_frames,
    squared_acceleration,
    velocities,
)


def test_masked_input_and_neighbours():
    x = torch.arange(11, dtype=torch.float32).view(1, 11, 1).expand(2, 11, 3)  # x[t] = t
    key = key_frames(11, 5)
    masked = mask_frames(x, key)
    prev, next_ = key_frame_neighbours(x, key)
    assert masked[0, :, 0].tolist() == [0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 10]
    # Replicate-padded at the window edges, zero at non-key frames.
    assert prev[0, :, 0].tolist() == [0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 9]
    assert next_[0, :, 0].tolist() == [1, 0, 0, 0, 0, 6, 0, 0, 0, 0, 10]
    assert torch.allclose(flow(prev, masked, next_), (prev + masked + next_) / 3)


def test_velocity_and_acceleration():
    prev, cur, nxt = (torch.full((1, 1, 2), v) for v in (1.0, 3.0, 8.0))
    v_minus, v_plus = velocities(prev, cur, nxt)
    assert v_minus.flatten().tolist() == [2.0, 2.0]
    assert v_plus.flatten().tolist() == [5.0, 5.0]
    assert squared_acceleration(v_minus, v_plus).flatten().tolist() == [9.0, 9.0]


def test_interpolate_key_frames_is_linear_between_keys():
    keys = torch.tensor([0.0, 10.0, 4.0]).view(1, 3, 1)
    window = torch.zeros(1, 11, 1)
    window[:, ::5] = keys
    out = interpolate_key_frames(window, 5)[0, :, 0]
    expected = [0, 2, 4, 6, 8, 10, 8.8, 7.6, 6.4, 5.2, 4]
    assert torch.allclose(out, torch.tensor(expected))
