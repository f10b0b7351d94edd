"""HANet: kinematic-aware hierarchical attention network for refining pose sequences.

Paper: K.-M. Jin, B.-S. Lim, G.-H. Lee, T.-K. Kang, S.-W. Lee, "Kinematic-aware Hierarchical
Attention Network for Human Pose Estimation in Videos", WACV 2023 (arXiv:2211.15868).
Official code: https://github.com/KyungMinJin/HANet

Code lineage: the released HANet builds on DeciWatch (Zeng et al., ECCV 2022,
https://github.com/cure-lab/DeciWatch), which supplies the key-frame sampling, the DETR-style
encoder/decoder with query/key-only positional codes and the interpolate-then-denoise decoder.
This is an independent reimplementation of the architecture as released (the official
``lib/models/HANet.py``), device- and dtype-agnostic, with a stateless ``forward``.

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

from typing import NamedTuple

import torch
from torch import nn

from hanet.config import ModelConfig
from hanet.data.windows import key_frame_mask
from hanet.kinematics import (
    flow,
    interpolate_key_frames,
    key_frame_neighbours,
    mask_frames,
    squared_acceleration,
    velocities,
)
from hanet.layers import DecoderLayer, EncoderLayer, sinusoid_table

__all__ = ["HANet", "HANetOutput", "KinematicMotion", "count_parameters"]


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
        key = torch.from_numpy(key_frame_mask(T, config.interval))
        self.register_buffer("key_mask", key, persistent=False)  # (T,) True at key frames
        # Built on the CPU whatever the default device: a checkpoint's weights are checked
        # against a model built on the meta device (hanet.checkpoint), where a factory such
        # as torch.eye first imports torch's compiler stack (over a second of every refine
        # actor's start-up). Buffers follow the module to its device anyway.
        eye = torch.eye(T, dtype=torch.bool, device="cpu")
        self.register_buffer("self_mask", eye, persistent=False)
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
