"""Assignment 4's hidden tests: the same functions on other cases (random LSTM
configurations forward and back, attention dropout and other shapes, the beat loss on
random shapes and weights, peak picking at other rates). Not in the release.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from a4_helpers import brute_force_peaks, check_close, check_peaks, randn
from test_a4_beats import expected_loss, heatmaps_like
from test_a4_lstm import check_forward, check_step_backward

from dlcc.models.attention import self_attention


def test_lstm_forward_random_configurations():
    rng = np.random.default_rng(100)
    for index in range(6):
        input_size, hidden = (int(v) for v in rng.integers(1, 6, 2))
        check_forward(
            f"random configuration {index}: input {input_size}, hidden {hidden}",
            input_size,
            hidden,
            seed=200 + index,
            batch=int(rng.integers(1, 4)),
            steps=int(rng.integers(1, 7)),
            layers=int(rng.integers(1, 3)),
            batch_first=bool(index % 2),
            given_state=bool(index % 3),
        )


def test_lstm_step_backward_random_configurations():
    rng = np.random.default_rng(101)
    for index in range(6):
        input_size, hidden = (int(v) for v in rng.integers(1, 6, 2))
        check_step_backward(
            f"random configuration {index}: input {input_size}, hidden {hidden}",
            input_size,
            hidden,
            seed=300 + index,
            batch=int(rng.integers(1, 4)),
            steps=int(rng.integers(1, 7)),
            final_grad=bool(index % 2),
        )


def test_self_attention_dropout_only_when_training():
    steps, p = 16, 0.5
    q, k = randn(2, 2, steps, steps, seed=400), randn(2, 2, steps, steps, seed=401)
    # With v the identity, the output is the attention weights themselves.
    v = torch.eye(steps, dtype=torch.float64).expand(2, 2, steps, steps).contiguous()
    weights = torch.softmax(q @ k.transpose(-2, -1) / steps**0.5, dim=-1)
    for causal in (False, True):
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        got = self_attention(q, k, v, causal=causal, dropout=p, training=False)
        check_close(
            f"self_attention (dropout={p}, not training, causal={causal}): no dropout",
            got,
            expected,
            rtol=1e-9,
            atol=1e-12,
        )
    dropped = self_attention(q, k, v, causal=False, dropout=p, training=True)
    if not isinstance(dropped, torch.Tensor) or dropped.shape != weights.shape:
        raise AssertionError("self_attention (training, dropout): a (B, nh, T, hs) tensor expected")
    zero = dropped == 0
    kept_right = torch.isclose(dropped, weights / (1 - p), rtol=1e-9, atol=1e-12)
    if not bool((zero | kept_right).all()):
        raise AssertionError(
            "self_attention (training, dropout=0.5): each attention weight should be dropped "
            "(0) or kept and scaled by 1 / (1 - p); drop the weights after the softmax"
        )
    fraction = float(zero.double().mean())
    if not 0.35 < fraction < 0.65:
        raise AssertionError(
            f"self_attention (training, dropout=0.5): {fraction:.0%} of the weights dropped"
        )


def test_self_attention_random_shapes():
    rng = np.random.default_rng(402)
    for index in range(6):
        batch, heads, steps, head_size = (int(v) for v in rng.integers(1, 7, 4))
        q, k, v = (
            randn(batch, heads, steps, head_size, seed=410 + 3 * index + j) for j in range(3)
        )
        causal = bool(index % 2)
        check_close(
            f"self_attention (B={batch}, nh={heads}, T={steps}, hs={head_size}, causal={causal})",
            self_attention(q, k, v, causal=causal),
            F.scaled_dot_product_attention(q, k, v, is_causal=causal),
            rtol=1e-9,
            atol=1e-12,
        )


def test_beat_heatmap_loss_random_shapes_and_weights():
    from dlcc.training.tasks.beats import beat_heatmap_loss

    rng = np.random.default_rng(500)
    for index in range(5):
        shape = (int(rng.integers(1, 5)), 1, int(rng.integers(1, 80)))
        pos_weight = float(rng.uniform(0.5, 30))
        logits, heatmaps = 4 * randn(*shape, seed=510 + index), heatmaps_like(shape, 520 + index)
        check_close(
            f"beat_heatmap_loss ({shape}, pos_weight={pos_weight:.3g})",
            beat_heatmap_loss(logits, heatmaps, pos_weight),
            expected_loss(logits, heatmaps, pos_weight),
            rtol=1e-5,
            atol=1e-7,
        )
    # the weighted mean does not depend on how many copies of a batch there are
    logits, heatmaps = randn(1, 1, 30, seed=530), heatmaps_like((1, 1, 30), 530)
    check_close(
        "beat_heatmap_loss of a batch and of the same batch twice",
        beat_heatmap_loss(logits.repeat(2, 1, 1), heatmaps.repeat(2, 1, 1), 5.0),
        expected_loss(logits, heatmaps, 5.0),
        rtol=1e-5,
        atol=1e-7,
    )


def test_pick_peaks_other_rates_and_thresholds():
    rng = np.random.default_rng(600)
    for index in range(80):
        fs = float(rng.choice([128.0, 360.0, 500.0]))
        n = int(rng.integers(3, 150))
        x = rng.random(n) if index % 2 else rng.integers(0, 5, n) / 4.0
        threshold = float(rng.uniform(-0.5, 1))
        refractory_s = float(rng.uniform(0, 60 / fs))
        check_peaks(
            f"random trace {index}",
            x,
            fs,
            threshold,
            refractory_s,
            brute_force_peaks(x, fs, threshold, refractory_s),
        )
    check_peaks("a constant trace", np.full(50, 0.9), 250.0, 0.5, 0.1, [])
