"""Character-level language models: a stacked LSTM/GRU and a small causal Transformer.

Both map token ids (B, T) int64 to next-token logits (B, T, V), V the vocabulary size.

- `CharRNN` also takes and returns the recurrent state, so a caller can carry it from one
  chunk of text to the next (truncated backpropagation through time; the training loop
  does it with `dlcc.training.sequence.CarriedState`).
- `CharGPT` sees at most `context` tokens and has no state: the token at position t
  attends to positions <= t only (`dlcc.models.attention.self_attention`, causal).

    model = CharRNN(65, cell="lstm", hidden=512, layers=3, dropout=0.25)
    logits, state = model(tokens)              # (B, T) -> (B, T, 65), ((L, B, H), (L, B, H))
    logits, state = model(next_tokens, state)  # continues where the first chunk ended
"""

from __future__ import annotations

import torch
from torch import nn

from dlcc.models.attention import Block, sinusoidal_positions
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
            Block(dim, heads, dropout, causal=True)
            for _ in range(positive_int(layers, "char_gpt layers"))
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
