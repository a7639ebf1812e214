"""Self-attention and the pre-LayerNorm Transformer block, shared by every Transformer here:
the character model (`dlcc.models.charlm.CharGPT`, causal) and the ECG beat detector
(`dlcc.models.ecg`, bidirectional).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def self_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = True,
    dropout: float = 0.0,
    training: bool = False,
) -> torch.Tensor:
    """Scaled dot-product attention; when `causal`, position t attends to positions <= t only.

    Args:
        q, k, v: (B, nh, T, hs): queries, keys and values of nh heads of size hs.
        causal: mask the future (a language model); False: every position sees all.
        dropout: probability of dropping an attention weight (only when `training`).

    Returns:
        (B, nh, T, hs): for each position, the attention-weighted mean of the values at
        the positions it may see, weights ``softmax(q k^T / sqrt(hs))`` over those.
    """
    # BEGIN SOLUTION self_attention: softmax(q k^T / sqrt(hs)), the future masked when causal, @ v
    T, head_size = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(head_size)  # (B, nh, T, T)
    if causal:
        future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)  # j > t
        scores = scores.masked_fill(future, float("-inf"))
    # at least float32 for the softmax (under bf16 autocast), float64 stays float64
    wide = torch.promote_types(scores.dtype, torch.float32)
    weights = torch.softmax(scores.to(wide), dim=-1).to(q.dtype)  # (B, nh, T, T), rows sum to 1
    weights = nn.functional.dropout(weights, dropout, training=training)
    return weights @ v  # (B, nh, T, hs)
    # END SOLUTION
    # BEGIN PROMPT
    # scores = q @ k^T / sqrt(hs), (B, nh, T, T): row t holds position t's score for every j.
    # When causal, set the scores of the future (j > t) to -inf (torch.triu(..., 1) gives
    # that mask; masked_fill applies it), so the softmax gives them weight 0.
    # weights = the softmax of scores over the last axis, computed in at least float32
    # (torch.promote_types(scores.dtype, torch.float32)), then back to q.dtype.
    # Drop weights with nn.functional.dropout(weights, dropout, training=training).
    # Return weights @ v, (B, nh, T, hs).
    # END PROMPT


class SelfAttention(nn.Module):
    """Multi-head self-attention: project to q, k, v, attend per head, project back.

    (B, T, D) -> (B, T, D); `causal` masks the future."""

    def __init__(self, dim: int, heads: int, dropout: float, causal: bool = True):
        super().__init__()
        self.heads, self.dropout, self.causal = heads, dropout, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)  # 3 x (B, T, D)
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        y = self_attention(
            q, k, v, causal=self.causal, dropout=self.dropout, training=self.training
        )
        y = y.transpose(1, 2).reshape(B, T, D)  # (B, T, D): the heads side by side
        return self.residual_dropout(self.proj(y))


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, dropout: float, causal: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, dropout, causal)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def sinusoidal_positions(context: int, dim: int) -> torch.Tensor:
    """(context, dim): sin on even, cos on odd features, wavelengths 2pi .. 10000 * 2pi."""
    position = torch.arange(context, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(1e4) / dim))
    table = torch.zeros(context, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


def causal_self_attention(q, k, v, *, dropout: float = 0.0, training: bool = False):
    """`self_attention` with the future masked: what a language model uses."""
    return self_attention(q, k, v, causal=True, dropout=dropout, training=training)
