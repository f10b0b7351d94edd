"""The transformer building blocks of HANet: the positional code and the encoder and decoder
layers whose positional code goes to queries and keys only (DETR style, as released with
HANet/DeciWatch); :mod:`hanet.model` composes them.

Symbols in the Shape sections: B batch, T frames, and the token width of each layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DecoderLayer", "EncoderLayer", "FeedForward", "sinusoid_table"]


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
    # On the CPU whatever the default device (see HANet's self_mask): the table is a buffer
    # and follows its module to the device.
    steps = torch.arange(length, dtype=torch.float32, device="cpu")
    position = steps / (length - 1 + 1e-6) * (2 * math.pi)
    # Exponent 2i / (D/2), not DETR's 2*floor(i/2) / D: this reproduces the released table.
    channels = torch.arange(half, dtype=torch.float32, device="cpu")
    divisor = 10000.0 ** (2 * channels / half)  # (D/2,)
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
