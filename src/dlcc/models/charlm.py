"""Character-level language models: a stacked LSTM/GRU and a small causal Transformer.

Both map token ids (B, T) int64 to next-token logits (B, T, V), V the vocabulary size.

- `CharRNN` also takes and returns the recurrent state, so a caller can carry it from one
  chunk of text to the next (truncated backpropagation through time; the training loop
  does it with `dlcc.training.sequence.CarriedState`).
- `CharGPT` sees at most `context` tokens and has no state: the token at position t
  attends to positions <= t only (`causal_self_attention`).

    model = CharRNN(65, cell="lstm", hidden=512, layers=3, dropout=0.25)
    logits, state = model(tokens)              # (B, T) -> (B, T, 65), ((L, B, H), (L, B, H))
    logits, state = model(next_tokens, state)  # continues where the first chunk ended
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlcc.models.common import ModelError, dropout_probability, positive_int

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
POSITIONS = ("learned", "sinusoidal")


def check_tokens(tokens: torch.Tensor, vocab_size: int, model_name: str) -> None:
    """A one-line ModelError unless `tokens` is a (B, T) integer tensor of ids < vocab_size."""
    if tokens.ndim != 2 or tokens.dtype not in (torch.int64, torch.int32):
        raise ModelError(
            f"{model_name}: expected token ids (B, T) of dtype int64, received "
            f"{tuple(tokens.shape)} {tokens.dtype}"
        )


class CharRNN(nn.Module):
    """Embedding -> dropout -> stacked LSTM/GRU (dropout between layers) -> dropout -> Linear.

    Args:
        vocab_size: V, the number of distinct tokens.
        cell: "lstm" or "gru".
        embedding: E, the width of a token's embedding.
        hidden: H, the width of each recurrent layer.
        layers: recurrent layers stacked.
        dropout: applied to the embeddings, between recurrent layers and before the head.
        tie_weights: the head reuses the embedding matrix (needs embedding == hidden).
    """

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        embedding: int = 64,
        hidden: int = 256,
        layers: int = 1,
        dropout: float = 0.0,
        tie_weights: bool = False,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ModelError(f"char_rnn: cell expected one of lstm, gru; got {cell!r}")
        vocab_size = positive_int(vocab_size, "char_rnn vocab_size")
        embedding = positive_int(embedding, "char_rnn embedding")
        hidden = positive_int(hidden, "char_rnn hidden")
        layers = positive_int(layers, "char_rnn layers")
        dropout = dropout_probability(dropout, "char_rnn dropout")
        if tie_weights and embedding != hidden:
            raise ModelError(
                f"char_rnn: tie_weights needs embedding == hidden, got {embedding} and {hidden}; "
                "set them equal or tie_weights: false"
            )
        self.vocab_size, self.cell = vocab_size, cell
        self.embedding = nn.Embedding(vocab_size, embedding)
        self.dropout = nn.Dropout(dropout)
        self.rnn = CELLS[cell](
            embedding, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0,
            batch_first=True,
        )  # fmt: skip
        self.head = nn.Linear(hidden, vocab_size)
        if tie_weights:
            self.head.weight = self.embedding.weight

    def forward(self, tokens: torch.Tensor, state=None):
        """tokens (B, T) int64; state None (zeros) or what the previous call returned.

        Returns (logits (B, T, V), state): for an LSTM state is (h, c), each (L, B, H);
        for a GRU it is h (L, B, H).
        """
        check_tokens(tokens, self.vocab_size, "char_rnn")
        x = self.dropout(self.embedding(tokens))  # (B, T, E)
        x, state = self.rnn(x, state)  # (B, T, H)
        return self.head(self.dropout(x)), state  # (B, T, V)


# ---- the Transformer -----------------------------------------------------------------------


def causal_self_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    dropout: float = 0.0,
    training: bool = False,
) -> torch.Tensor:
    """Scaled dot-product attention in which position t attends to positions <= t only.

    Args:
        q, k, v: (B, nh, T, hs): queries, keys and values of nh heads of size hs.
        dropout: probability of dropping an attention weight (only when `training`).

    Returns:
        (B, nh, T, hs): for each position, the attention-weighted mean of the values at
        positions <= t, weights ``softmax(q k^T / sqrt(hs))`` over those positions.

    Its body is one self-contained block, ready to be fenced as a solution region when an
    assignment lists this file (an unlisted fenced file would stop `dlcc course release`).
    """
    T, head_size = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(head_size)  # (B, nh, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)  # j > t
    scores = scores.masked_fill(future, float("-inf"))
    # at least float32 for the softmax (under bf16 autocast), float64 stays float64
    wide = torch.promote_types(scores.dtype, torch.float32)
    weights = torch.softmax(scores.to(wide), dim=-1).to(q.dtype)  # (B, nh, T, T), rows sum to 1
    weights = nn.functional.dropout(weights, dropout, training=training)
    return weights @ v  # (B, nh, T, hs)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: project to q, k, v, attend per head, project back."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)  # 3 x (B, T, D)
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        y = causal_self_attention(q, k, v, dropout=self.dropout, training=self.training)
        y = y.transpose(1, 2).reshape(B, T, D)  # (B, T, D): the heads side by side
        return self.residual_dropout(self.proj(y))


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = CausalSelfAttention(dim, heads, dropout)
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


class CharGPT(nn.Module):
    """A small causal pre-LayerNorm Transformer over characters (GPT-style).

    Args:
        vocab_size: V.
        context: the most tokens it reads at once (T <= context).
        layers: Transformer blocks.
        heads: attention heads per block (dim must divide by it).
        dim: D, the width of the residual stream.
        dropout: on the embeddings, the attention weights and each residual branch.
        positions: "learned" (a (context, D) table) or "sinusoidal" (fixed).
    """

    def __init__(
        self,
        vocab_size: int,
        context: int = 128,
        layers: int = 4,
        heads: int = 4,
        dim: int = 128,
        dropout: float = 0.0,
        positions: str = "learned",
    ):
        super().__init__()
        vocab_size = positive_int(vocab_size, "char_gpt vocab_size")
        context = positive_int(context, "char_gpt context")
        dim, heads = positive_int(dim, "char_gpt dim"), positive_int(heads, "char_gpt heads")
        if dim % heads:
            raise ModelError(f"char_gpt: dim {dim} must divide by heads {heads}")
        if positions not in POSITIONS:
            raise ModelError(
                f"char_gpt: positions expected learned or sinusoidal, got {positions!r}"
            )
        dropout = dropout_probability(dropout, "char_gpt dropout")
        self.vocab_size, self.context = vocab_size, context
        self.token_embedding = nn.Embedding(vocab_size, dim)
        if positions == "learned":
            self.position_embedding = nn.Parameter(torch.zeros(context, dim))
        else:  # not a parameter, and not saved: it is a function of (context, dim)
            self.register_buffer("position_embedding", sinusoidal_positions(context, dim), False)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(dim, heads, dropout) for _ in range(positive_int(layers, "char_gpt layers"))
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)
        self.apply(_init_gpt)
        if positions == "learned":
            nn.init.normal_(self.position_embedding, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) int64, T <= context -> logits (B, T, V)."""
        check_tokens(tokens, self.vocab_size, "char_gpt")
        T = tokens.shape[1]
        if T > self.context:
            raise ModelError(
                f"char_gpt: {T} tokens exceed its context of {self.context}; pass at most "
                f"{self.context} (the last ones)"
            )
        x = self.token_embedding(tokens) + self.position_embedding[:T]  # (B, T, D)
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))  # (B, T, V)


def _init_gpt(module: nn.Module) -> None:
    """GPT-2's initialisation: N(0, 0.02) weights, zero biases."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
