"""The R-peak detectors of dlcc.models.ecg: shapes, causality, and streaming == offline."""

import pytest
import torch

from dlcc.models.common import ModelError
from dlcc.models.ecg import BODIES, BeatNet

STREAMING = ("conv", "lstm", "gru")


def small(body, causal=False, **kw):
    torch.manual_seed(0)
    return BeatNet(body=body, width=8, hidden=8, layers=2, causal=causal, heads=2, **kw).eval()


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("length", [1, 7, 64, 251])
def test_output_has_the_input_length(body, causal, length):
    out = small(body, causal)(torch.randn(2, 1, length))
    assert out.shape == (2, 1, length)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("body", BODIES)
def test_causal_model_sees_no_later_step(body):
    """Outputs up to sample t do not change when samples after t's 4-sample step change."""
    model = small(body, causal=True)
    x = torch.randn(1, 1, 200)
    y = x.clone()
    y[:, :, 120:] = torch.randn(1, 1, 80) * 5
    a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :, :120], b[:, :, :120])
    assert not torch.allclose(a[:, :, 120:], b[:, :, 120:])


@pytest.mark.parametrize("body", BODIES)
def test_bidirectional_model_does_look_ahead(body):
    model = small(body, causal=False)
    x = torch.randn(1, 1, 200)
    y = x.clone()
    y[:, :, 125:] += 5
    assert not torch.allclose(model(x)[:, :, 100:120], model(y)[:, :, 100:120])


@pytest.mark.parametrize("body", STREAMING)
def test_stream_chunk_by_chunk_equals_the_whole_signal(body):
    model = small(body, causal=True)
    # BN's running statistics away from the defaults, so the test sees them used
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 1, 400)
    whole = model(x)
    state, parts, start = None, [], 0
    for size in (4, 8, 100, 36, 4, 248):
        logits, state = model.stream(x[:, :, start : start + size], state)
        parts.append(logits)
        start += size
    assert start == 400
    torch.testing.assert_close(torch.cat(parts, dim=2), whole, rtol=1e-5, atol=1e-5)


def test_transformer_positions_and_their_limits():
    for positions in ("sinusoidal", "learned"):
        model = BeatNet(body="transformer", width=8, layers=1, heads=2, positions=positions)
        assert model(torch.randn(1, 1, 100)).shape == (1, 1, 100)
    with pytest.raises(ModelError, match="exceed"):
        small("transformer")(torch.zeros(1, 1, 4 * 1025))
    with pytest.raises(ModelError, match="divide"):
        BeatNet(body="transformer", width=10, heads=4)
    with pytest.raises(ModelError, match="can stream"):
        small("transformer", causal=True).stream(torch.zeros(1, 1, 8))


def test_stream_refuses_what_it_cannot_do():
    with pytest.raises(ModelError, match="only a causal"):
        small("gru", causal=False).stream(torch.zeros(1, 1, 8))
    with pytest.raises(ModelError, match="multiple of 4"):
        small("gru", causal=True).stream(torch.zeros(1, 1, 6))
    with pytest.raises(ModelError, match="eval"):
        small("gru", causal=True).train().stream(torch.zeros(1, 1, 8))


def test_bad_options_and_inputs_are_named():
    with pytest.raises(ModelError, match="body"):
        BeatNet(body="rnn")
    with pytest.raises(ModelError, match="num_classes"):
        BeatNet(num_classes=2)
    with pytest.raises(ModelError, match=r"\(N, 1, T\)"):
        small("conv")(torch.zeros(2, 3, 10))


def test_head_bias_sets_the_starting_output():
    model = BeatNet(body="conv", width=4, layers=1, head_bias=-2.0)
    torch.nn.init.zeros_(model.head.weight)
    assert torch.allclose(model(torch.randn(1, 1, 16)), torch.full((1, 1, 16), -2.0))
