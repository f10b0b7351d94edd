"""HANet model and kinematic features: shapes, key-frame dependence, masks, size, statelessness."""

from __future__ import annotations

import math

import pytest
import torch
from posedata import key_frames

from hanet.config import ModelConfig
from hanet.kinematics import (
    interpolate_key_frames,
    mask_frames,
)
from hanet.model import HANet, HANetOutput, count_parameters

# Unused Linear(4096 -> 8192) after the last stage of the released model: weight + bias.
UNUSED_PROJECTION = 4096 * 8192 + 8192
REFERENCE_PARAMS = 320.46e6  # the released HANet's JHMDB 2D config, as published


def small_config(**overrides) -> ModelConfig:
    base = dict(hidden_dim=16, num_stages=2, num_heads=2, dropout=0.0)
    base.update(overrides)
    return ModelConfig(**base)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- kinematics --------------------------------------------------------------------------------


# --- model -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        small_config(interval=10, num_intervals=1),
        small_config(interval=5, num_intervals=2, width_growth="constant", decoder_kernel=3),
        small_config(num_joints=14, joint_dim=3, interval=5, num_intervals=4, pre_norm=True),
    ],
    ids=["2D-N10Q1", "2D-N5Q2-constant", "3D-N5Q4-prenorm"],
)
def test_forward_shapes_and_finite(config: ModelConfig):
    model = HANet(config)
    assert len(model.projections) == config.num_stages - 1  # the unused last one is not built
    x = torch.randn(3, config.window_size, config.channels)
    out = model(x)
    assert isinstance(out, HANetOutput)
    for y in out:
        assert y.shape == (3, config.window_size, config.channels)
        assert torch.isfinite(y).all()
    out.final.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    ("interval", "num_intervals", "frames"),
    [(10, 1, [0, 1, 9, 10]), (5, 2, [0, 1, 4, 5, 6, 9, 10])],
)
def test_output_depends_on_key_frames_and_their_neighbours(interval, num_intervals, frames):
    config = small_config(interval=interval, num_intervals=num_intervals)
    model = HANet(config).eval()
    for field in HANetOutput._fields:
        x = torch.randn(2, config.window_size, config.channels, requires_grad=True)
        y = getattr(model(x), field)
        (y * torch.randn_like(y)).sum().backward()
        seen = (x.grad.abs().sum(dim=(0, 2)) > 0).nonzero().flatten().tolist()
        print(f"N={interval} Q={num_intervals} {field}: d/dx nonzero at frames {seen}")
        assert seen == frames, field


def test_published_2d_parameter_count():
    config = ModelConfig()  # JHMDB 2D: J=15, D=2, N=10, Q=1, H=256, 5 stages, 4 heads
    with torch.device("meta"):  # shapes only: no 1 GB allocation, no initialisation cost
        model = HANet(config)
    n = count_parameters(model)
    print(f"published 2D config: {n:,} parameters")
    assert abs(n - (REFERENCE_PARAMS - UNUSED_PROJECTION)) < 0.1e6


def test_samples_are_independent():
    model = HANet(small_config(interval=5, num_intervals=2)).eval()
    x = torch.randn(4, 11, 30)
    assert torch.allclose(model(x).final[1:2], model(x[1:2]).final, atol=1e-5)


def test_forward_is_stateless():
    model = HANet(small_config()).eval()
    before = dict(vars(model))
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    x = torch.randn(2, 11, 30)
    with torch.no_grad():
        first, second = model(x), model(x)
    assert torch.equal(first.final, second.final)
    assert torch.equal(first.refined, second.refined)
    assert vars(model).keys() == before.keys()
    assert not [k for k, v in vars(model).items() if isinstance(v, torch.Tensor)]
    assert all(torch.equal(v, buffers[k]) for k, v in model.named_buffers())


@pytest.mark.parametrize("shape", [(2, 10, 30), (2, 11, 28), (11, 30), (2, 11, 30, 1)])
def test_wrong_input_shape_raises(shape):
    model = HANet(small_config())
    with pytest.raises(ValueError, match="expects input of shape"):
        model(torch.randn(*shape))


def test_bf16_autocast_on_cpu():
    model = HANet(small_config(interval=5, num_intervals=2)).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 11, 30))
    assert all(torch.isfinite(y).all() for y in out)


def test_float64_follows_module_dtype():
    model = HANet(small_config()).double()
    out = model(torch.randn(2, 11, 30, dtype=torch.float64))
    assert out.final.dtype == torch.float64


def test_masks_are_bool_buffers_outside_state_dict():
    model = HANet(small_config())
    buffers = dict(model.named_buffers())
    assert buffers["key_mask"].dtype == torch.bool
    assert buffers["self_mask"].dtype == torch.bool
    assert torch.equal(buffers["self_mask"], torch.eye(11, dtype=torch.bool))
    state = model.state_dict()
    assert not set(buffers) & set(state)
    assert all(not k.startswith("pos_") for k in state)


def test_xavier_init_covers_matrices_and_kernels():
    model = HANet(small_config())
    for name, p in model.named_parameters():
        if p.dim() > 1:
            fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(p)
            assert p.abs().max() <= math.sqrt(6 / (fan_in + fan_out)) + 1e-6, name
    # The depthwise kernels too: PyTorch's default would draw them from U(-1, 1).
    assert model.motion.scale_minus.weight.abs().max() < 0.5


# --- options beyond the released model ---------------------------------------------------------


def test_zero_head_init_starts_as_key_frame_interpolation():
    config = small_config(interval=5, num_intervals=2, head_init="zero")
    model = HANet(config).eval()
    x = torch.randn(3, config.window_size, config.channels)
    out = model(x)
    key = key_frames(config.window_size, config.interval)
    expected = interpolate_key_frames(mask_frames(x, key), config.interval)
    assert torch.allclose(out.final, expected, atol=1e-6)
    assert torch.allclose(out.refined[:, key], x[:, key], atol=1e-6)


@pytest.mark.parametrize("interval,num_intervals", [(10, 1), (5, 2), (2, 3)])
def test_centred_input_is_translation_equivariant_and_reads_the_same_frames(
    interval, num_intervals
):
    config = small_config(interval=interval, num_intervals=num_intervals, input_norm="centre")
    model = HANet(config).eval()
    T, C = config.window_size, config.channels
    x = torch.randn(2, T, C, requires_grad=True)
    shift = torch.tensor([7.0, -3.0]).repeat(C // 2)  # per axis, every joint
    moved = model(x + shift)
    still = model(x)
    assert torch.allclose(moved.final - still.final, shift.expand(2, T, C), atol=1e-4)
    assert torch.allclose(moved.refined - still.refined, shift.expand(2, T, C), atol=1e-4)
    still.final.sum().backward()
    read = (x.grad.abs().sum(dim=(0, 2)) > 0).nonzero().flatten().tolist()
    key = key_frames(T, interval)
    expected = sorted(
        {t + d for t in key.nonzero().flatten().tolist() for d in (-1, 0, 1) if 0 <= t + d < T}
    )
    assert read == expected
