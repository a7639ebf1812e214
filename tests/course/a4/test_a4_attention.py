"""Part 2: self-attention (`self_attention` in `dlcc.models.attention`) against
torch.nn.functional.scaled_dot_product_attention, with and without the causal mask, in
float64, and the causal mask's promise: a later token never changes an earlier output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from a4_helpers import check_close, randn

from dlcc.models.attention import self_attention


def qkv(batch, heads, steps, head_size, seed):
    return tuple(randn(batch, heads, steps, head_size, seed=seed + k) for k in range(3))


def check_attention(what, shape, seed, causal):
    q, k, v = qkv(*shape, seed)
    got = self_attention(q, k, v, causal=causal)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    check_close(f"self_attention ({what}, causal={causal})", got, expected, rtol=1e-9, atol=1e-12)


def test_self_attention_matches_torch():
    check_attention("B=2, nh=3, T=5, hs=4", (2, 3, 5, 4), seed=0, causal=False)
    check_attention("B=1, nh=1, T=1, hs=1", (1, 1, 1, 1), seed=3, causal=False)
    check_attention("B=1, nh=2, T=7, hs=8", (1, 2, 7, 8), seed=6, causal=False)
    q, k, v = qkv(2, 2, 4, 3, seed=9)  # large scores: the softmax must not overflow
    got = self_attention(30 * q, 30 * k, v, causal=False)
    expected = F.scaled_dot_product_attention(30 * q, 30 * k, v)
    check_close("self_attention (scores in the hundreds)", got, expected, rtol=1e-9, atol=1e-12)


def test_causal_self_attention_matches_torch():
    check_attention("B=2, nh=3, T=5, hs=4", (2, 3, 5, 4), seed=10, causal=True)
    check_attention("B=1, nh=1, T=1, hs=2", (1, 1, 1, 2), seed=13, causal=True)
    check_attention("B=1, nh=2, T=9, hs=8", (1, 2, 9, 8), seed=16, causal=True)
    q, k, v = (t.float() for t in qkv(2, 2, 6, 4, seed=19))
    got = self_attention(q, k, v, causal=True)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if got.dtype != torch.float32:
        raise AssertionError(f"self_attention of float32 inputs: float32 expected, got {got.dtype}")
    check_close("self_attention (float32, causal)", got, expected, rtol=1e-5, atol=1e-6)


def test_causal_self_attention_ignores_the_future():
    q, k, v = qkv(2, 2, 8, 4, seed=20)
    before = self_attention(q, k, v, causal=True)
    for t in (0, 3, 6):
        later = slice(t + 1, None)
        q2, k2, v2 = q.clone(), k.clone(), v.clone()
        for tensor, seed in ((q2, 30), (k2, 31), (v2, 32)):
            tensor[:, :, later] = 5 * randn(*tensor[:, :, later].shape, seed=seed + t)
        after = self_attention(q2, k2, v2, causal=True)
        check_close(
            f"self_attention (causal): the outputs at positions 0..{t} after changing the "
            f"queries, keys and values after position {t}",
            after[:, :, : t + 1],
            before[:, :, : t + 1],
            rtol=0,
            atol=1e-12,
        )
    # ... and without the mask, a later key does change an earlier output
    k2 = k.clone()
    k2[:, :, -1] += 3.0
    changed = self_attention(q, k2, v, causal=False)[:, :, 0]
    unchanged = self_attention(q, k, v, causal=False)[:, :, 0]
    if torch.allclose(changed, unchanged):
        raise AssertionError(
            "self_attention (causal=False): position 0's output did not change with the last "
            "key; without the mask every position sees all the others"
        )
