"""HANet: kinematic-aware hierarchical attention network for refining pose sequences.

Paper: K.-M. Jin, B.-S. Lim, G.-H. Lee, T.-K. Kang, S.-W. Lee, "Kinematic-aware Hierarchical
Attention Network for Human Pose Estimation in Videos", WACV 2023 (arXiv:2211.15868).
Official code: https://github.com/KyungMinJin/HANet

Code lineage: the released HANet builds on DeciWatch (Zeng et al., ECCV 2022,
https://github.com/cure-lab/DeciWatch), which supplies the key-frame sampling, the DETR-style
encoder/decoder with query/key-only positional codes and the interpolate-then-denoise decoder.
This is an independent reimplementation of the architecture as released (see
``docs/hanet-reference.md`` §1), device- and dtype-agnostic, with a stateless ``forward``.

Data flow for a window x (B, T, C), key frames every N frames:
    x̃, prev, next, flow          key frames and their ±1 neighbours (:mod:`hanet.kinematics`)
    encoder                      5 one-layer stages of width H·2^i, attending to key frames only
    F = mean_i Linear(e_i)       multi-scale fusion
    P' = Linear(F) + x̃           refined key frames        -> ``refined``
    I  = lerp(P'[::N])           coarse sequence
    decoder(Conv1d(I), memory=Linear([F, v-, v+, acc]))
    P_s = Linear(dec) + I        final poses               -> ``final``

Symbols in the Shape sections: B batch, T frames, C coordinates (``C = J * D``), H hidden width.
"""

from __future__ import annotations

import math
import os
from typing import IO, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from hanet.config import ModelConfig
from hanet.kinematics import (
    flow,
    interpolate_key_frames,
    key_frame_mask,
    key_frame_neighbours,
    mask_frames,
    squared_acceleration,
    velocities,
)

__all__ = ["HANet", "HANetOutput", "count_parameters", "sinusoid_table"]


def sinusoid_table(length: int, dim: int) -> torch.Tensor:
    """Sinusoidal positional code over a window, as released with HANet/DeciWatch.

    Frame t sits at angle ``p_t = t / (T - 1 + 1e-6) * 2π``; channel pair ``(2i, 2i + 1)`` holds
    ``(sin, cos)(p_t / 10000^(2i / (D / 2)))`` for ``i < D / 2``.

    Args:
        length: T, frames.
        dim: D, channels; must be even.

    Shape:
        Output: (T, D)
    """
    if dim % 2:
        raise ValueError(f"positional code width must be even, got {dim}")
    half = dim // 2
    position = torch.arange(length, dtype=torch.float32) / (length - 1 + 1e-6) * (2 * math.pi)
    # Exponent 2i / (D/2), not DETR's 2*floor(i/2) / D: this reproduces the released table.
    divisor = 10000.0 ** (2 * torch.arange(half, dtype=torch.float32) / half)  # (D/2,)
    angles = position[:, None] / divisor  # (T, D/2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)  # (T, D), interleaved


def _attend(
    attn: nn.MultiheadAttention,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    # need_weights=False lets PyTorch use its fused scaled-dot-product kernel.
    out, _ = attn(
        query,
        key,
        value,
        attn_mask=attn_mask,
        key_padding_mask=key_padding_mask,
        need_weights=False,
    )
    return out


class FeedForward(nn.Module):
    """Position-wise MLP, ``Linear -> leaky_relu -> Dropout -> Linear``.

    Args:
        width: input and output channels.
        hidden: inner channels.
        dropout: dropout after the activation.

    Shape:
        Input: (B, T, width); output: (B, T, width)
    """

    def __init__(self, width: int, hidden: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(F.leaky_relu(self.fc1(x))))


class EncoderLayer(nn.Module):
    """Transformer encoder layer whose positional code is added to queries and keys only.

    ``nn.TransformerEncoderLayer`` cannot do this (it would add the code to values too).

    Args:
        width: token channels.
        num_heads: attention heads.
        ffn_dim: inner width of the feed-forward block.
        dropout: dropout on attention weights and on each residual branch.
        pre_norm: LayerNorm before each sub-block (True) or after each residual sum (False).

    Shape:
        x, pos: (B, T, width) and (T, width); attn_mask: (T, T) bool, True = blocked;
        key_padding_mask: (B, T) bool, True = not a key; output: (B, T, width)
    """

    def __init__(
        self,
        width: int,
        num_heads: int,
        ffn_dim: int,
        dropout: float = 0.1,
        pre_norm: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(width, num_heads, dropout=dropout, batch_first=True)
        self.ffn = FeedForward(width, ffn_dim, dropout)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        attn_mask: torch.Tensor,
        key_padding_mask: torch.Tensor,
    ) -> torch.Tensor:
        if self.pre_norm:
            h = self.norm1(x)
            qk = h + pos
            x = x + self.dropout1(_attend(self.self_attn, qk, qk, h, attn_mask, key_padding_mask))
            return x + self.dropout2(self.ffn(self.norm2(x)))
        qk = x + pos
        x = self.norm1(
            x + self.dropout1(_attend(self.self_attn, qk, qk, x, attn_mask, key_padding_mask))
        )
        return self.norm2(x + self.dropout2(self.ffn(x)))


class DecoderLayer(nn.Module):
    """DETR-style decoder layer: self-attention, cross-attention to memory, feed-forward.

    The positional code is added to the self-attention queries/keys, the cross-attention
    queries and the memory keys, never to values.

    Args:
        width: token channels.
        num_heads: attention heads.
        ffn_dim: inner width of the feed-forward block.
        dropout: dropout on attention weights and on each residual branch.
        pre_norm: LayerNorm before each sub-block (True) or after each residual sum (False).

    Shape:
        x, memory: (B, T, width); pos: (T, width);
        memory_key_padding_mask: (B, T) bool, True = not a key; output: (B, T, width)
    """

    def __init__(
        self,
        width: int,
        num_heads: int,
        ffn_dim: int,
        dropout: float = 0.1,
        pre_norm: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(width, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(width, num_heads, dropout=dropout, batch_first=True)
        self.ffn = FeedForward(width, ffn_dim, dropout)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.norm3 = nn.LayerNorm(width)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        pos: torch.Tensor,
        memory_key_padding_mask: torch.Tensor,
    ) -> torch.Tensor:
        mem_key = memory + pos
        mask = memory_key_padding_mask
        if self.pre_norm:
            h = self.norm1(x)
            x = x + self.dropout1(_attend(self.self_attn, h + pos, h + pos, h))
            h = self.norm2(x)
            x = x + self.dropout2(
                _attend(self.cross_attn, h + pos, mem_key, memory, key_padding_mask=mask)
            )
            return x + self.dropout3(self.ffn(self.norm3(x)))
        x = self.norm1(x + self.dropout1(_attend(self.self_attn, x + pos, x + pos, x)))
        x = self.norm2(
            x
            + self.dropout2(
                _attend(self.cross_attn, x + pos, mem_key, memory, key_padding_mask=mask)
            )
        )
        return self.norm3(x + self.dropout3(self.ffn(x)))


class KinematicMotion(nn.Module):
    """Velocity and acceleration features with learned per-channel scales.

    ``v- = a1 ⊙ (x̃ - prev) + b1``, ``v+ = a2 ⊙ (next - x̃) + b2`` and
    ``acc = a3 ⊙ (v+ - v-)^2 + b3``; each affine is a depthwise 1×1 convolution.

    Args:
        channels: C.

    Shape:
        masked, prev, next_: (B, T, C); output: (B, T, 3C), groups ``[v-, v+, acc]``
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale_minus = nn.Conv1d(channels, channels, 1, groups=channels)
        self.scale_plus = nn.Conv1d(channels, channels, 1, groups=channels)
        self.scale_acc = nn.Conv1d(channels, channels, 1, groups=channels)

    def forward(
        self, masked: torch.Tensor, prev: torch.Tensor, next_: torch.Tensor
    ) -> torch.Tensor:
        back, fwd = velocities(prev, masked, next_)
        # Conv1d wants channels first: (B, T, C) -> (B, C, T) and back.
        v_minus = self.scale_minus(back.transpose(1, 2)).transpose(1, 2)
        v_plus = self.scale_plus(fwd.transpose(1, 2)).transpose(1, 2)
        acc = squared_acceleration(v_minus, v_plus)
        acc = self.scale_acc(acc.transpose(1, 2)).transpose(1, 2)
        return torch.cat([v_minus, v_plus, acc], dim=-1)  # (B, T, 3C)


class HANetOutput(NamedTuple):
    """What :class:`HANet` returns; both tensors are (B, T, C).

    Attributes:
        final: P_s, the refined poses at every frame (the model's prediction).
        refined: P', the encoder's refined key frames; only key frames are meaningful.
    """

    final: torch.Tensor
    refined: torch.Tensor


class HANet(nn.Module):
    """Kinematic-aware hierarchical attention network (as released).

    Args:
        config: architecture; window size ``T = N * Q + 1`` and channels ``C = J * D`` come
            from it and the input must match both.

    Shape:
        Input: (B, T, C); outputs ``final`` and ``refined``: (B, T, C)
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        T, C, H = config.window_size, config.channels, config.hidden_dim
        widths = [config.stage_width(i) for i in range(config.num_stages)]

        # Fixed masks and positional tables follow the module across devices and dtypes but are
        # rebuilt from the config, never saved.
        key = key_frame_mask(T, config.interval)
        self.register_buffer("key_mask", key, persistent=False)  # (T,) True at key frames
        self.register_buffer("self_mask", torch.eye(T, dtype=torch.bool), persistent=False)
        for i, width in enumerate(widths):
            self.register_buffer(f"pos_{i}", sinusoid_table(T, width), persistent=False)

        # Encoder: tokens are frames carrying [flow, x̃, prev, next] (4C channels).
        self.token_embed = nn.Linear(4 * C, H)
        self.stages = nn.ModuleList(
            EncoderLayer(w, config.num_heads, 4 * w, config.dropout, config.pre_norm)
            for w in widths
        )
        # The released code also builds a projection after the last stage whose output is
        # discarded (33.6 M parameters at H=256); it is left out here.
        self.projections = nn.ModuleList(
            nn.Linear(w_in, w_out) for w_in, w_out in zip(widths[:-1], widths[1:])
        )
        self.fusion = nn.ModuleList(nn.Linear(w, H) for w in widths)
        self.refine_head = nn.Linear(H, C)

        # Decoder: queries from the interpolated refined key frames, memory from the fused
        # encoder features and the kinematic motion features.
        self.motion = KinematicMotion(C)
        self.query_embed = nn.Conv1d(
            C, H, config.decoder_kernel, padding=config.decoder_kernel // 2
        )
        self.memory_embed = nn.Linear(H + 3 * C, H)
        self.decoder = nn.ModuleList(
            DecoderLayer(H, config.num_heads, 4 * H, config.dropout, config.pre_norm)
            for _ in range(config.num_stages)
        )
        self.decoder_norm = nn.LayerNorm(H)
        self.final_head = nn.Linear(H, C)

        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        if config.head_init == "zero":
            for head in (self.refine_head, self.final_head):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)

    @classmethod
    def from_checkpoint(
        cls,
        path_or_file: str | os.PathLike[str] | IO[bytes],
        map_location: str | torch.device = "cpu",
    ) -> HANet:
        """Rebuild a model from a checkpoint written by :func:`hanet.checkpoint.save_checkpoint`.

        The model is returned in eval mode on ``map_location``.
        """
        from hanet.checkpoint import load_model  # checkpoint imports this module

        model, _ = load_model(path_or_file, map_location=map_location)
        return model

    def _positions(self, stage: int, like: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"pos_{stage}").to(like.dtype)  # (T, width_stage)

    def forward_encoder(self, tokens: torch.Tensor) -> torch.Tensor:
        """Hierarchical encoder and multi-scale fusion.

        Shape:
            tokens: (B, T, 4C); output F: (B, T, H)
        """
        not_key = (~self.key_mask).expand(tokens.shape[0], -1)  # (B, T)
        h = self.token_embed(tokens)  # (B, T, H)
        fused = []
        for i, stage in enumerate(self.stages):
            h = stage(h, self._positions(i, h), self.self_mask, not_key)  # (B, T, H·2^i)
            fused.append(self.fusion[i](h))  # (B, T, H)
            if i < len(self.projections):
                h = self.projections[i](h)  # (B, T, H·2^(i+1))
        return torch.stack(fused).mean(dim=0)

    def forward_decoder(
        self, coarse: torch.Tensor, features: torch.Tensor, motion: torch.Tensor
    ) -> torch.Tensor:
        """Denoise the interpolated sequence against the encoder and motion memory.

        Shape:
            coarse: (B, T, C); features: (B, T, H); motion: (B, T, 3C); output: (B, T, C)
        """
        not_key = (~self.key_mask).expand(coarse.shape[0], -1)  # (B, T)
        # Queries: temporal convolution over the coarse poses, (B, T, C) -> (B, C, T) -> (B, T, H).
        x = self.query_embed(coarse.transpose(1, 2)).transpose(1, 2)
        memory = self.memory_embed(torch.cat([features, motion], dim=-1))  # (B, T, H)
        pos = self._positions(0, x)
        for layer in self.decoder:
            x = layer(x, memory, pos, not_key)
        return self.final_head(self.decoder_norm(x)) + coarse

    def forward(self, x: torch.Tensor) -> HANetOutput:
        """Refine a window of noisy poses.

        Raises:
            ValueError: ``x`` is not (B, T, C) with the configured T and C.
        """
        T, C = self.config.window_size, self.config.channels
        if x.dim() != 3 or x.shape[1] != T or x.shape[2] != C:
            raise ValueError(
                f"HANet expects input of shape (B, T={T}, C={C}) for interval="
                f"{self.config.interval}, num_intervals={self.config.num_intervals}, "
                f"num_joints={self.config.num_joints}, joint_dim={self.config.joint_dim}; "
                f"got {tuple(x.shape)}"
            )
        centre = None
        if self.config.input_norm == "centre":
            # Mean over key frames (so the output still depends only on the frames the model
            # reads) and joints, per coordinate axis.
            B, D = x.shape[0], self.config.joint_dim
            key = self.key_mask.to(x.dtype)[:, None]  # (T, 1); no boolean indexing: no sync
            per_channel = (x * key).sum(dim=1) / key.sum()  # (B, C)
            centre = per_channel.reshape(B, -1, D).mean(dim=1)  # (B, D)
            centre = centre.repeat(1, C // D).unsqueeze(1)  # (B, 1, C), axis order per joint
            x = x - centre
        masked = mask_frames(x, self.key_mask)
        prev, next_ = key_frame_neighbours(x, self.key_mask)
        tokens = torch.cat([flow(prev, masked, next_), masked, prev, next_], dim=-1)  # (B, T, 4C)

        features = self.forward_encoder(tokens)  # (B, T, H)
        refined = self.refine_head(features) + masked  # (B, T, C), meaningful at key frames
        coarse = interpolate_key_frames(refined, self.config.interval)  # (B, T, C)
        final = self.forward_decoder(coarse, features, self.motion(masked, prev, next_))
        if centre is not None:
            final, refined = final + centre, refined + centre
        return HANetOutput(final=final, refined=refined)


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements (trainable or not) in ``model``."""
    return sum(p.numel() for p in model.parameters())
