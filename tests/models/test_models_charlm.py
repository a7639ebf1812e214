"""Character language models: shapes, attention against torch's SDPA, causality, and a
carried recurrent state that equals reading the whole sequence at once."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from dlcc.models import CharGPT, CharRNN, ModelError, build_model, causal_self_attention  # noqa: E402
from dlcc.models.registry import model_options  # noqa: E402
from dlcc.training.sequence import CarriedState, reset_carried_state  # noqa: E402


def tokens(batch, length, vocab=11, seed=0):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_char_rnn_shapes_and_state(cell):
    model = CharRNN(11, cell=cell, embedding=8, hidden=16, layers=3, dropout=0.2)
    logits, state = model(tokens(4, 7))
    assert logits.shape == (4, 7, 11)
    states = state if cell == "lstm" else (state,)
    assert all(part.shape == (3, 4, 16) for part in states)


def test_char_rnn_ties_the_head_to_the_embedding_only_when_widths_match():
    model = CharRNN(11, embedding=16, hidden=16, tie_weights=True)
    assert model.head.weight is model.embedding.weight
    with pytest.raises(ModelError, match="tie_weights needs embedding == hidden"):
        CharRNN(11, embedding=8, hidden=16, tie_weights=True)
    with pytest.raises(ModelError, match="cell expected one of lstm, gru"):
        CharRNN(11, cell="rnn")


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_char_gpt_shapes(positions):
    model = CharGPT(11, context=16, layers=2, heads=2, dim=8, positions=positions)
    assert model(tokens(3, 16)).shape == (3, 16, 11)
    assert model(tokens(3, 5)).shape == (3, 5, 11)  # shorter than the context is fine
    with pytest.raises(ModelError, match="17 tokens exceed its context of 16"):
        model(tokens(1, 17))


def test_causal_self_attention_matches_torch_sdpa_on_random_shapes():
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):
        batch, heads, length, size = (
            int(n) for n in torch.randint(1, 9, (4,), generator=generator)
        )
        q, k, v = torch.randn(
            3, batch, heads, length, size, generator=generator, dtype=torch.float64
        )
        expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        got = causal_self_attention(q, k, v)
        assert got.shape == (batch, heads, length, size)
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_char_gpt_is_causal():
    model = CharGPT(11, context=12, layers=2, heads=2, dim=16).eval()
    ids = tokens(2, 12)
    for t in (0, 5, 10):
        changed = ids.clone()
        changed[:, t + 1] = (changed[:, t + 1] + 1) % 11
        before, after = model(ids), model(changed)
        torch.testing.assert_close(before[:, : t + 1], after[:, : t + 1])
        assert not torch.allclose(before[:, t + 1 :], after[:, t + 1 :])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_state_carried_over_four_chunks_equals_one_forward_over_all(cell):
    torch.manual_seed(0)
    model = CharRNN(11, cell=cell, embedding=8, hidden=16, layers=2, dropout=0.3).eval()
    ids = tokens(3, 40)
    whole, _ = model(ids)
    carried = CarriedState(model)
    chunks = [carried(chunk) for chunk in ids.split(10, dim=1)]
    torch.testing.assert_close(torch.cat(chunks, dim=1), whole, rtol=1e-5, atol=1e-6)
    reset_carried_state(torch.nn.Sequential(carried))  # found inside any wrapper
    torch.testing.assert_close(carried(ids[:, :10]), whole[:, :10], rtol=1e-5, atol=1e-6)


def test_the_carried_state_is_detached_between_batches():
    carried = CarriedState(CharRNN(11, embedding=8, hidden=8))
    carried(tokens(2, 5)).sum().backward()
    assert all(not part.requires_grad for part in carried.state)


def test_the_registry_builds_token_models_from_a_sequence_length():
    gpt = build_model("char_gpt", (32,), 65, layers=1, heads=2, dim=8)
    assert isinstance(gpt, CharGPT) and gpt.context == 32 and gpt.head.out_features == 65
    rnn = build_model("char_rnn", (32,), 65, hidden=8, cell="gru")
    assert isinstance(rnn, CharRNN) and rnn.head.out_features == 65
    assert "context" not in model_options("char_gpt") and "vocab_size" not in model_options(
        "char_rnn"
    )
    with pytest.raises(ModelError, match=r"a token model expects in_shape \(T,\)") as error:
        build_model("char_rnn", (1, 28, 28), 10)
    assert "\n" not in str(error.value)
    with pytest.raises(ModelError, match=r"expected in_shape \(C, H, W\)"):
        build_model("mlp", (32,), 10)
