"""HANet loss: values, normalisation, masks and mutual-learning gradients."""

import pytest
import torch

from hanet.losses import hanet_loss, ohkm_k


def _hand_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    # B=1, T=3, C=2, key frames t=0 and t=2, ground truth all zero.
    final = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    refined = torch.tensor([[[0.0, 1.0], [10.0, 10.0], [4.0, 4.0]]])
    target = torch.zeros(1, 3, 2)
    key = torch.tensor([True, False, True])
    return final, refined, target, key


def test_hand_computed_values() -> None:
    final, refined, target, key = _hand_case()
    out = hanet_loss(final, refined, target, key, torch.ones(1, 3, dtype=torch.bool))
    # N = B*C*T = 6.  Ls = (9, 12)/6, Lt = (0+4, 1+4)/6, Loml = (1+1, 1+2)/6.
    # L_c = 5*Ls + Lt + Loml = (8.5, 11.3333); OHKM with k=1 is the larger one.
    assert out.final_l1.item() == pytest.approx(21 / 6)
    assert out.refined_l1.item() == pytest.approx(9 / 6)
    assert out.mutual_l1.item() == pytest.approx(5 / 6)
    assert out.ohkm.item() == pytest.approx(10 + 8 / 6)
    assert out.total.item() == pytest.approx(8.5 + (10 + 8 / 6) * 2)


def _released_reference(final, refined, target, key, lam=5.0, w=1.0):
    """The released definition: every term summed per channel and divided by B*C*T."""
    b, t, c = final.shape
    s = key.view(1, t, 1).float()
    norm = b * c * t
    ls = (final - target).abs().sum((0, 1)) / norm
    lt = (s * (refined - target).abs()).sum((0, 1)) / norm
    lm = (s * (final - refined).abs()).sum((0, 1)) / norm
    per = lam * ls + w * lt + w * lm
    return per.sum() + per.topk(2 * (c // 4)).values.mean()


def test_matches_released_definition_when_everything_is_valid() -> None:
    g = torch.Generator().manual_seed(0)
    final, refined, target = (torch.randn(2, 11, 30, generator=g) for _ in range(3))
    key = torch.arange(11) % 10 == 0
    for mutual in ("symmetric", "teacher"):
        out = hanet_loss(
            final, refined, target, key, torch.ones(2, 11, dtype=torch.bool), mutual=mutual
        )
        expected = _released_reference(final, refined, target, key)
        torch.testing.assert_close(out.total, expected)


def test_ohkm_k() -> None:
    assert ohkm_k(30) == 14
    assert ohkm_k(42) == 20
    assert ohkm_k(3) == 1 and ohkm_k(1) == 1


def test_padding_and_garbage_change_nothing() -> None:
    final, refined, target, key = _hand_case()
    clean = hanet_loss(final, refined, target, key, torch.ones(1, 3, dtype=torch.bool))

    # Append two padding frames (one a key frame) holding garbage in all three tensors.
    garbage = torch.tensor([[[float("nan"), 1e6], [-1e6, float("inf")]]])
    final_p = torch.cat([final, garbage], 1).requires_grad_()
    refined_p = torch.cat([refined, garbage], 1).requires_grad_()
    target_p = torch.cat([target, garbage], 1)
    key_p = torch.tensor([True, False, True, False, True])
    valid = torch.tensor([[True, True, True, False, False]])
    out = hanet_loss(final_p, refined_p, target_p, key_p, valid)
    for got, want in zip(out, clean):
        torch.testing.assert_close(got, want)
    out.total.backward()
    assert torch.all(final_p.grad[:, 3:] == 0) and torch.all(refined_p.grad[:, 3:] == 0)
    assert torch.isfinite(final_p.grad).all() and torch.isfinite(refined_p.grad).all()


def test_unlabelled_coordinates_are_not_supervised() -> None:
    final, refined, target, key = _hand_case()
    final = final.clone().requires_grad_()
    valid = torch.ones(1, 3, 2, dtype=torch.bool)
    valid[:, :, 1] = False  # channel 1 has no ground truth anywhere
    target = target.clone()
    target[..., 1] = float("nan")
    out = hanet_loss(final, refined, target, key, valid)
    # Frames are still real: N stays 6, the mutual term still covers channel 1.
    assert out.final_l1.item() == pytest.approx(9 / 6)
    assert out.refined_l1.item() == pytest.approx(4 / 6)
    assert out.mutual_l1.item() == pytest.approx(5 / 6)
    out.total.backward()
    assert final.grad[0, 1, 1] == 0  # non-key frame, channel 1: neither supervised nor mutual
    assert torch.isfinite(final.grad).all()


def test_everything_invalid_gives_zero_not_nan() -> None:
    final, refined, target, key = _hand_case()
    out = hanet_loss(final, refined, target, key, torch.zeros(1, 3, dtype=torch.bool))
    assert all(term.item() == 0 for term in out)


def _mutual_grads(mutual: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # Channel 0: final is worse than refined (final should learn);
    # channel 1: refined is worse (refined should learn).
    final = torch.tensor([[[3.0, 0.5], [3.0, 0.5], [3.0, 0.5]]], requires_grad=True)
    refined = torch.tensor([[[1.0, 2.0], [9.0, 9.0], [1.0, 2.0]]], requires_grad=True)
    target = torch.zeros(1, 3, 2)
    key = torch.tensor([True, False, True])
    out = hanet_loss(final, refined, target, key, torch.ones(1, 3, dtype=torch.bool), mutual=mutual)
    out.mutual_l1.backward()
    return out.mutual_l1.detach(), final.grad, refined.grad


def test_symmetric_mutual_term_pulls_both_branches() -> None:
    _, g_final, g_refined = _mutual_grads("symmetric")
    key_frames = [0, 2]
    assert torch.all(g_final[0, key_frames] != 0) and torch.all(g_refined[0, key_frames] != 0)
    assert torch.all(g_final[0, 1] == 0) and torch.all(g_refined[0, 1] == 0)  # not a key frame


def test_teacher_mutual_term_stops_gradient_into_the_teacher() -> None:
    value_sym, _, _ = _mutual_grads("symmetric")
    value, g_final, g_refined = _mutual_grads("teacher")
    torch.testing.assert_close(value, value_sym)  # same value, different gradient paths
    key_frames = [0, 2]
    # Channel 0: refined is the teacher.
    assert torch.all(g_final[0, key_frames, 0] != 0) and torch.all(g_refined[..., 0] == 0)
    # Channel 1: final is the teacher.
    assert torch.all(g_refined[0, key_frames, 1] != 0) and torch.all(g_final[..., 1] == 0)


def test_rejects_bad_shapes_and_modes() -> None:
    final, refined, target, key = _hand_case()
    valid = torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="mutual"):
        hanet_loss(final, refined, target, key, valid, mutual="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key_mask"):
        hanet_loss(final, refined, target, key[:2], valid)
    with pytest.raises(ValueError, match="shape"):
        hanet_loss(final, refined[:, :2], target, key, valid)


def test_optional_acceleration_term() -> None:
    final = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 6.0]]])  # second difference (4, 0)
    target = torch.zeros(1, 3, 2)
    key = torch.tensor([True, False, True])
    valid = torch.ones(1, 3, dtype=torch.bool)
    published = hanet_loss(final, final, target, key, valid)
    assert published.accel_l1.item() == 0.0
    out = hanet_loss(final, final, target, key, valid, accel_weight=2.0)
    assert out.accel_l1.item() == pytest.approx(4 / 6)  # N = B * C * T = 6
    # Channel 0 gains 2 * 4/6 and is also the OHKM channel (k = 1).
    assert out.total.item() == pytest.approx(published.total.item() + 2 * (2 * 4 / 6))
    # A frame without ground truth breaks the only triple: nothing to compare.
    gap = torch.tensor([[True, False, True]])
    assert hanet_loss(final, final, target, key, gap, accel_weight=2.0).accel_l1.item() == 0.0


def test_optional_output_position_term() -> None:
    final = torch.tensor([[[1.0, 20.0], [3.0, 40.0], [9.0, 60.0]]] * 2)
    target = torch.zeros(2, 3, 2)
    key = torch.tensor([True, False, True])
    valid = torch.ones(2, 3, dtype=torch.bool)
    published = hanet_loss(final, final, target, key, valid)
    assert published.position_l1.item() == 0.0
    out = hanet_loss(final, final, target, key, valid, position=1, position_weight=3.0)
    # Frame 1 of both windows: |3| + |40| per window over C * n_p = 2 * 2 elements.
    assert out.position_l1.item() == pytest.approx((3 + 40) * 2 / 4)
    # Channel 1, the larger, is the OHKM channel (k = 1) and counts twice.
    gain = 3.0 * (3 * 2 / 4) + 2 * 3.0 * (40 * 2 / 4)
    assert out.total.item() == pytest.approx(published.total.item() + gain)


def test_causal_acceleration_term() -> None:
    from hanet.losses import causal_accel_l1

    target = torch.arange(6.0).reshape(1, 6, 1) ** 2  # second difference 2 everywhere
    valid = torch.ones(1, 6, dtype=torch.bool)
    position = 4
    # The three windows' outputs at `position` are frames 4, 3, 2 of the truth: no error.
    exact = torch.stack([target, torch.roll(target, 1, 1), torch.roll(target, 2, 1)])
    assert causal_accel_l1(exact, target, valid, position).item() == 0.0
    # Output frame 3 off by 1: the second difference is off by 2.
    off = exact.clone()
    off[1, 0, position] += 1.0
    assert causal_accel_l1(off, target, valid, position).item() == pytest.approx(2.0)
    # Unsupervised frames drop out; too early a position has no triple.
    valid[0, 3] = False
    assert causal_accel_l1(off, target, valid, position).item() == 0.0
    assert causal_accel_l1(off, target, valid, 1).item() == 0.0
