"""HANet's online-mutual-learning loss, with validity masks.

Per coordinate channel ``c`` (not per joint), with F the final poses, R the refined key-frame
poses, G the ground truth and K the key frames::

    Ls_c   = sum_{valid (b,t)}      |F - G|_c / N
    Lt_c   = sum_{K & valid (b,t)}  |R - G|_c / N
    Loml_c = sum_{K & real (b,t)}   |F - R|_c / N
    L_c    = lambda * Ls_c + w * Lt_c + w * Loml_c
    total  = sum_c L_c + mean of the k largest L_c,   k = 2 * floor(C / 4)  (>= 1)

Optionally (``accel_weight`` > 0, not in the published loss) ``L_c`` gains
``accel_weight * La_c`` with ``La_c = sum |A(F) - A(G)|_c / N`` over the frames whose
second difference ``A(x)_t = x_{t-1} - 2 x_t + x_{t+1}`` has supervision at all three frames: it
penalises jitter directly, which the position terms reward only weakly when the estimator's
error is dominated by slowly varying offsets.

Optionally (``position`` set, for causal refinement with a look-ahead) ``L_c`` gains
``position_weight * Lp_c`` with ``Lp_c = sum_b |F - G|_{b,p,c} / (C * n_p)``, the final-pose
error at the one window position ``p`` a causal refiner outputs, over the ``n_p`` windows
whose frame ``p`` is real: it puts the position that has the least context on one side on the
same footing as all the others together.

Normalisation. The released code divides every term, key-frame sums included, by
``B * C * T``, the count of all elements. Here ``N = C * n_real``, where ``n_real`` is the
number of real (non-padding) frames in the batch, the same for every channel and every term.
With every frame real this is exactly ``B * C * T``, so the published numbers are reproduced;
padding frames drop out of both numerator and denominator. Missing ground truth (``valid`` False
for a coordinate of a real frame) removes the element from the sums but not from ``N``, i.e. it
counts as zero error, as padding did in the released code; a channel with no valid element
contributes 0. Summing ``Ls_c`` over channels gives the mean absolute error per element, and the
key-frame terms stay down-weighted by the key-frame fraction (about 1/N), as published.

Mutual learning. ``mutual="symmetric"`` is the released behaviour: plain ``|F - R|`` with
gradient into both branches (its teacher selection compares two symmetric terms, a no-op).
``mutual="teacher"`` stops the gradient through the better branch of each channel: if the final
poses' mean error on their supervised elements is larger than the refined poses' mean error on
theirs, F learns from ``R.detach()``, otherwise R learns from ``F.detach()``. The comparison uses
per-element means rather than ``Ls_c`` vs ``Lt_c`` as scaled above, because those sums cover
different frame counts (all frames vs key frames) and would make F the student almost always.
A channel lacking supervision on either branch keeps the symmetric term.

Reference: Jin et al., "Kinematic-aware Hierarchical Attention Network for Human Pose Estimation
in Videos", WACV 2023.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

MutualMode = Literal["symmetric", "teacher"]


class LossOutput(NamedTuple):
    """Loss terms; the components are summed over channels before weighting.

    Attributes:
        total: ``lambda * final_l1 + w * (refined_l1 + mutual_l1) + ohkm``; backpropagate this.
        final_l1: ``sum_c Ls_c``.
        refined_l1: ``sum_c Lt_c``.
        mutual_l1: ``sum_c Loml_c``.
        ohkm: mean of the k largest weighted channel losses ``L_c``.
        accel_l1: ``sum_c La_c`` (0 unless ``accel_weight`` > 0).
        position_l1: ``sum_c Lp_c`` (0 unless ``position`` is set).
    """

    total: torch.Tensor
    final_l1: torch.Tensor
    refined_l1: torch.Tensor
    mutual_l1: torch.Tensor
    ohkm: torch.Tensor
    accel_l1: torch.Tensor
    position_l1: torch.Tensor | None = None


def ohkm_k(channels: int) -> int:
    """Channels counted twice by online hard keypoint mining, ``2 * floor(C / 4)``, at least 1."""
    return min(channels, max(1, 2 * (channels // 4)))


def _frame_mask(mask: torch.Tensor, batch: int, frames: int, name: str) -> torch.Tensor:
    """Broadcast a ``[T]`` or ``[B, T]`` mask to ``[B, T, 1]`` bool."""
    mask = mask.to(torch.bool)
    if mask.dim() == 1:
        mask = mask.unsqueeze(0)
    if mask.dim() != 2 or mask.shape[-1] != frames or mask.shape[0] not in (1, batch):
        raise ValueError(f"{name} must be [T] or [B, T] with T={frames}, got {tuple(mask.shape)}")
    return mask.expand(batch, frames).unsqueeze(-1)


def _masked_abs(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``|a - b|`` where ``mask``, exactly 0 elsewhere.

    The inputs are zeroed before subtracting, not the difference after: garbage (NaN, inf) in
    masked positions would otherwise leak NaN into the gradient through ``0 * sign(nan)``.
    """
    zero = torch.zeros((), dtype=a.dtype, device=a.device)
    return (torch.where(mask, a, zero) - torch.where(mask, b, zero)).abs()


def _second_difference(x: torch.Tensor) -> torch.Tensor:
    """``x[t-1] - 2 x[t] + x[t+1]`` along time: ``[B, T, C]`` -> ``[B, T-2, C]``."""
    return x[:, :-2] - 2 * x[:, 1:-1] + x[:, 2:]


def hanet_loss(
    final: torch.Tensor,
    refined: torch.Tensor,
    target: torch.Tensor,
    key_mask: torch.Tensor,
    valid: torch.Tensor,
    loss_lambda: float = 5.0,
    loss_w: float = 1.0,
    mutual: MutualMode = "symmetric",
    frame_valid: torch.Tensor | None = None,
    accel_weight: float = 0.0,
    position: int | None = None,
    position_weight: float = 0.0,
) -> LossOutput:
    """HANet loss: supervised L1 on both branches, mutual L1 on key frames, plus OHKM.

    See the module docstring for the exact formula and normalisation.

    Args:
        final: final (decoder) poses F.
        refined: refined key-frame poses R (only key frames are used).
        target: ground truth G; may hold NaN where ``valid`` is False.
        key_mask: True at key frames.
        valid: True where ground truth exists (False on padding and unlabelled frames or
            coordinates).
        loss_lambda: weight of the final-pose term, lambda (5.0 in the published config).
        loss_w: weight of the refined and mutual terms, w.
        mutual: "symmetric" (released code) or "teacher" (stop-gradient through the better
            branch per channel).
        frame_valid: True at real (non-padding) frames; they define the normaliser and where the
            mutual term, which needs no ground truth, applies. Defaults to ``valid`` reduced with
            any() over channels. Supervision is restricted to real frames.
        accel_weight: weight of the optional acceleration term (0 = the published loss).
        position: the window position of the optional output-position term (None = off).
        position_weight: its weight.

    Returns:
        The total loss and its components, all scalars.

    Shape:
        final, refined, target: ``[B, T, C]``; key_mask: ``[T]`` or ``[B, T]``;
        valid: ``[B, T]`` or ``[B, T, C]``; frame_valid: ``[B, T]``.
    """
    if final.shape != refined.shape or final.shape != target.shape or final.dim() != 3:
        raise ValueError(
            f"final, refined and target must share one [B, T, C] shape, got "
            f"{tuple(final.shape)}, {tuple(refined.shape)}, {tuple(target.shape)}"
        )
    if mutual not in ("symmetric", "teacher"):
        raise ValueError(f"mutual must be 'symmetric' or 'teacher', got {mutual!r}")
    batch, frames, channels = final.shape
    # Sums of many small L1 terms lose precision in half precision; accumulate in float32.
    dtype = torch.promote_types(final.dtype, torch.float32)
    final, refined, target = final.to(dtype), refined.to(dtype), target.to(dtype)

    valid = valid.to(torch.bool)
    if valid.dim() == 2:
        valid = valid.unsqueeze(-1)
    if (
        valid.dim() != 3
        or valid.shape[:2] != (batch, frames)
        or valid.shape[2] not in (1, channels)
    ):
        raise ValueError(f"valid must be [B, T] or [B, T, C], got {tuple(valid.shape)}")
    valid = valid.expand(batch, frames, channels)
    if frame_valid is None:
        real = valid.any(dim=-1, keepdim=True)  # [B, T, 1]
    else:
        real = _frame_mask(frame_valid, batch, frames, "frame_valid")
    key = _frame_mask(key_mask, batch, frames, "key_mask")

    supervised = valid & real  # [B, T, C]
    norm = (real.sum() * channels).clamp(min=1).to(dtype)

    err_final = _masked_abs(final, target, supervised)  # [B, T, C]
    err_refined = _masked_abs(refined, target, supervised & key)
    ls = err_final.sum(dim=(0, 1)) / norm  # [C]
    lt = err_refined.sum(dim=(0, 1)) / norm

    mutual_mask = (key & real).expand(batch, frames, channels)
    if mutual == "symmetric":
        loml = _masked_abs(final, refined, mutual_mask).sum(dim=(0, 1)) / norm
    else:
        with torch.no_grad():
            n_final = supervised.sum(dim=(0, 1))
            n_refined = (supervised & key).sum(dim=(0, 1))
            comparable = (n_final > 0) & (n_refined > 0)
            mean_final = err_final.sum(dim=(0, 1)) / n_final.clamp(min=1)
            mean_refined = err_refined.sum(dim=(0, 1)) / n_refined.clamp(min=1)
            final_is_student = comparable & (mean_final > mean_refined)  # [C]
            refined_is_student = comparable & ~final_is_student
        to_refined = _masked_abs(final, refined.detach(), mutual_mask).sum(dim=(0, 1))
        to_final = _masked_abs(final.detach(), refined, mutual_mask).sum(dim=(0, 1))
        both = _masked_abs(final, refined, mutual_mask).sum(dim=(0, 1))
        # All three have the same value; only the gradient path differs per channel.
        loml = (
            torch.where(
                final_is_student, to_refined, torch.where(refined_is_student, to_final, both)
            )
            / norm
        )

    per_channel = loss_lambda * ls + loss_w * lt + loss_w * loml  # [C]
    la = torch.zeros_like(ls)
    if accel_weight > 0 and frames >= 3:
        triple = supervised[:, :-2] & supervised[:, 1:-1] & supervised[:, 2:]  # [B, T-2, C]
        err_accel = _masked_abs(_second_difference(final), _second_difference(target), triple)
        la = err_accel.sum(dim=(0, 1)) / norm
        per_channel = per_channel + accel_weight * la
    lp = torch.zeros_like(ls)
    if position is not None:
        count = (real[:, position].sum() * channels).clamp(min=1).to(dtype)
        lp = err_final[:, position].sum(dim=0) / count
        per_channel = per_channel + position_weight * lp
    ohkm = per_channel.topk(ohkm_k(channels)).values.mean()
    return LossOutput(
        total=per_channel.sum() + ohkm,
        final_l1=ls.sum(),
        refined_l1=lt.sum(),
        mutual_l1=loml.sum(),
        ohkm=ohkm,
        accel_l1=la.sum(),
        position_l1=lp.sum(),
    )


def causal_accel_l1(
    finals: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, position: int
) -> torch.Tensor:
    """Acceleration error of what a causal refiner outputs for three consecutive frames.

    A causal refiner reads every frame at the same window position ``p`` of its own window, so
    its output over time is ``y_t = F(window ending at t + k)[p]``: consecutive frames come
    from different windows, and nothing in the per-window loss keeps them consistent. Given
    the final poses of a window and of its copies shifted one and two frames later (edge-padded
    at the start), their outputs at ``p`` are the causal outputs for the window's frames ``p``,
    ``p - 1`` and ``p - 2``; this is ``|A(y) - A(G)|`` at ``p - 1``, averaged over the supervised
    elements (``A`` the second difference).

    Shape:
        finals: ``[3, B, T, C]`` (unshifted, shifted by 1, by 2); target: ``[B, T, C]``;
        valid: ``[B, T, C]`` (or ``[B, T]``); output: a scalar.
    """
    if position < 2:
        return finals.new_zeros(())
    y = finals[:, :, position].to(torch.float32)  # [3, B, C]: frames p, p - 1, p - 2
    predicted = y[2] - 2 * y[1] + y[0]
    g = target[:, position - 2 : position + 1].to(torch.float32)  # [B, 3, C]
    truth = g[:, 0] - 2 * g[:, 1] + g[:, 2]
    valid = valid.to(torch.bool)
    if valid.dim() == 2:
        valid = valid.unsqueeze(-1).expand_as(target)
    known = valid[:, position - 2 : position + 1].all(dim=1)  # [B, C]
    return _masked_abs(predicted, truth, known).sum() / known.sum().clamp(min=1)
