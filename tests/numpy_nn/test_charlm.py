"""The character-level LSTM: clipping, truncated BPTT with carried state, the generated copy
task, `dlcc numpy train --model char_lstm`'s run directory, sampling, and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dlcc.cli import main
from dlcc.data.text import copy_positions, corpus_from_text, load_corpus
from dlcc.errors import DataError, DlccError
from dlcc.numpy_nn import Adam, manual_seed
from dlcc.numpy_nn.optim import clip_grad_norm
from dlcc.numpy_nn.sequence import CharLSTM, Streams, evaluate_text, fit_tbptt, sample
from dlcc.numpy_trainer.charlm import sample_run
from dlcc.runs import METRIC_KEYS, read_run

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def shared_dir() -> Path:
    for candidate in (os.environ.get("DLCC_DATA_DIR", "").strip(), SHARED):
        if candidate and (Path(candidate) / "tinyshakespeare" / "input.txt").is_file():
            return Path(candidate)
    pytest.skip("tinyshakespeare not found: set DLCC_DATA_DIR or provide ../shared/datasets")


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    """`dlcc numpy train --model char_lstm --dataset copy` through the CLI (a few seconds)."""
    out = tmp_path_factory.mktemp("charlm") / "run"
    status = main(
        ["numpy", "train", "--model", "char_lstm", "--dataset", "copy", "--no-progress",
         "--out", str(out)]
    )  # fmt: skip
    assert status == 0
    return out


# ---- the library ---------------------------------------------------------------------------


@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(shape).astype(np.float32) for shape in [(3, 4), (5,), (2, 2)]]
    pairs = [(np.zeros_like(g), g.copy()) for g in grads]
    tensors = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for tensor, g in zip(tensors, grads, strict=True):
        tensor.grad = torch.from_numpy(g.copy())
    expected = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
    assert clip_grad_norm(pairs, max_norm) == pytest.approx(expected, rel=1e-5)
    for (_, grad), tensor in zip(pairs, tensors, strict=True):
        np.testing.assert_allclose(grad, tensor.grad.numpy(), rtol=1e-5, atol=1e-7)
        assert grad.dtype == np.float32
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(pairs, 0)


def test_streams_are_contiguous_pieces_of_the_text():
    ids = np.arange(101)
    streams = Streams(ids, batch_size=4, seq_len=5)  # 25 columns a stream, 5 steps a pass
    assert streams.steps_per_pass == 5
    x0, y0 = streams.chunk(0)
    x1, _ = streams.chunk(1)
    np.testing.assert_array_equal(x0[:, 0], [0, 25, 50, 75])  # stream b starts at b * 25
    np.testing.assert_array_equal(y0, x0 + 1)  # the target is the next character
    np.testing.assert_array_equal(x1[:, 0], x0[:, -1] + 1)  # step 1 continues step 0
    assert streams.starts_pass(5) and not streams.starts_pass(4)
    np.testing.assert_array_equal(streams.chunk(5)[0], x0)  # then the next pass
    with pytest.raises(DlccError, match="too short"):
        Streams(np.arange(10), batch_size=4, seq_len=5)


def test_carried_state_reads_the_text_as_one_sequence_and_cuts_the_gradient():
    manual_seed(0)
    model = CharLSTM(7, 5, 8)
    ids = np.random.default_rng(1).integers(0, 7, size=(3, 12))
    whole, _ = model.forward(ids)
    state, pieces = None, []
    for start in (0, 4, 8):
        logits, state = model.forward(ids[:, start : start + 4], state)
        pieces.append(logits)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, rtol=1e-5, atol=1e-6)
    # Backward through the last chunk only: its gradient equals a fresh forward of that
    # chunk from the carried (detached) state.
    _, state = model.forward(ids[:, :8])
    model.zero_grad()
    logits, _ = model.forward(ids[:, 8:], state)
    model.backward(np.ones_like(logits))
    carried = {name: grad.copy() for name, _, grad in model.named_parameters()}
    model.zero_grad()
    logits, _ = model.forward(ids[:, 8:], tuple(part.copy() for part in state))
    model.backward(np.ones_like(logits))
    for name, _, grad in model.named_parameters():
        np.testing.assert_allclose(carried[name], grad, rtol=1e-6)


def test_fit_carries_the_state_across_steps_and_epochs(tmp_path):
    """With lr 0 the weights stay put, so the state in last.npz after 6 steps must be the
    final state of reading the first 6 chunks of every stream as one sequence."""
    ids = np.random.default_rng(2).integers(0, 6, size=2000)
    manual_seed(0)
    model = CharLSTM(6, 4, 8)
    fit_tbptt(
        model, Adam(model.parameters(), lr=0.0), ids, None, epochs=2, batch_size=4, seq_len=10,
        steps_per_epoch=3, checkpoint_dir=tmp_path, progress=False, log=lambda _: None,
    )  # fmt: skip
    saved = np.load(tmp_path / "last.npz")
    assert int(saved["meta.step"]) == 6
    streams = Streams(ids, 4, 10)
    _, (h, c) = model.forward(streams.inputs[:, :60])
    np.testing.assert_allclose(saved["meta.state_h"], h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(saved["meta.state_c"], c, rtol=1e-5, atol=1e-6)


def test_a_resumed_fit_is_the_fit_that_never_stopped(tmp_path):
    corpus = load_corpus("copy")

    def run(folder, epochs, resume=False):
        manual_seed(0)
        model = CharLSTM(len(corpus.vocab), 8, 16)
        history = fit_tbptt(
            model, Adam(model.parameters(), lr=1e-2), corpus.train, corpus.val, epochs=epochs,
            batch_size=8, seq_len=16, steps_per_epoch=7, checkpoint_dir=folder, resume=resume,
            progress=False, log=lambda _: None,
        )  # fmt: skip
        return model, history

    straight, straight_history = run(tmp_path / "a", 3)
    run(tmp_path / "b", 1)
    resumed, resumed_history = run(tmp_path / "b", 3, resume=True)
    for key, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value, err_msg=key)
    assert resumed_history.val_loss == straight_history.val_loss
    assert resumed_history.best_epoch == straight_history.best_epoch


def test_sampling_is_seeded_and_follows_the_temperature():
    manual_seed(0)
    model = CharLSTM(10, 4, 16)
    prime = np.array([1, 2, 3])

    def draw(seed, temperature):
        return sample(model, prime, 200, temperature=temperature, rng=np.random.default_rng(seed))

    np.testing.assert_array_equal(draw(0, 1.0), draw(0, 1.0))
    assert not np.array_equal(draw(0, 1.0), draw(1, 1.0))
    # Near zero it is greedy: the most likely next character at every step.
    greedy, state = [], None
    logits, state = model.forward(prime[None])
    for _ in range(20):
        greedy.append(int(logits[0, -1].argmax()))
        logits, state = model.forward(np.array([[greedy[-1]]]), state)
    np.testing.assert_array_equal(draw(3, 1e-4)[:20], greedy)
    # Hotter is more random: more distinct characters than the cold draw.
    assert len(set(draw(0, 5.0).tolist())) > len(set(draw(0, 0.05).tolist()))
    with pytest.raises(DlccError, match="temperature"):
        draw(0, 0.0)


# ---- the trainer and its run directory -----------------------------------------------------


def test_the_copy_task_learns_in_seconds(copy_run):
    """After 150 steps the model copies: almost every copied letter is predicted."""
    from dlcc.numpy_trainer.charlm import _load_char_run

    model, vocab, _ = _load_char_run(read_run(copy_run), "best")
    corpus = load_corpus("copy")
    assert vocab == corpus.vocab
    logits, _ = model.forward(corpus.val[None, :-1])
    predicted = logits.argmax(axis=-1)[0]
    copied = copy_positions(len(corpus.val))[1:]  # targets that are copied letters
    accuracy = np.mean(predicted[copied] == corpus.val[1:][copied])
    assert accuracy > 0.95, accuracy
    metrics = json.loads((copy_run / "metrics.json").read_text())
    assert metrics["test_loss"] < 0.7  # ln 4 * 3/8 = 0.52 is the floor; chance is ln 6 = 1.79


def test_the_run_directory_follows_the_one_contract(copy_run, capsys):
    for name in ("config.yaml", "history.json", "metrics.json", "run.json", "vocab.json",
                 "samples.txt", "history.png"):  # fmt: skip
        assert (copy_run / name).is_file(), name
    assert (copy_run / "checkpoints" / "last.npz").is_file()
    assert (copy_run / "checkpoints" / "best.npz").is_file()
    config = yaml.safe_load((copy_run / "config.yaml").read_text())
    assert config["kind"] == "numpy" and config["task"] == "language_model"
    metrics = json.loads((copy_run / "metrics.json").read_text())
    assert set(METRIC_KEYS) <= set(metrics)
    assert metrics["monitor"] == "val_loss" and metrics["mode"] == "min"
    assert metrics["epochs"] == 3 and metrics["test_checkpoint"] == "best"
    history = json.loads((copy_run / "history.json").read_text())
    assert set(history) == {"columns", "best_epoch", "stopped_early"}
    for column in ("epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds",
                   "samples_per_second"):  # fmt: skip
        assert len(history["columns"][column]) == 3, column
    assert metrics["best_value"] == min(history["columns"]["val_loss"])
    capsys.readouterr()
    assert main(["eval", str(copy_run)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "language_model" and report["epoch"] == metrics["best_epoch"]
    assert report["loss"] == pytest.approx(metrics["test_loss"])
    # A finished run is never overwritten.
    status = main(["numpy", "train", "--model", "char_lstm", "--dataset", "copy",
                   "--no-progress", "--out", str(copy_run)])  # fmt: skip
    assert status == 2 and "finished run" in capsys.readouterr().err


def test_dlcc_numpy_sample_is_deterministic(copy_run, capsys):
    first = sample_run(copy_run, n=60, temperature=0.8, prime="ab", seed=3)
    assert first == sample_run(copy_run, n=60, temperature=0.8, prime="ab", seed=3)
    assert first.startswith("ab") and len(first) == 62
    capsys.readouterr()
    assert main(["numpy", "sample", str(copy_run), "--n", "60", "--prime", "ab",
                 "--seed", "3"]) == 0  # fmt: skip
    assert capsys.readouterr().out == first + "\n"


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--dataset", "nope"], "unknown text dataset 'nope'"),
        (["--dataset", "copy", "--dropout", "0.2"], "--dropout is not a setting"),
        (["--dataset", "copy", "--seq-len", "0"], "--seq-len must be >= 1"),
        (["--dataset", "copy", "--batch-size", "5000"], "too short"),
    ],
)
def test_bad_training_input_is_one_clear_line(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    status = main(["numpy", "train", "--model", "char_lstm", "--no-progress", "--out", str(out),
                   *flags])  # fmt: skip
    error = capsys.readouterr().err
    assert status == 2 and not out.exists()
    assert error.startswith("dlcc: error:") and message in error
    assert error.count("\n") == 1


def test_a_missing_corpus_says_where_to_put_it(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["numpy", "train", "--model", "char_lstm", "--dataset", "tinyshakespeare",
                   "--data-dir", str(tmp_path / "empty"), "--out", str(out)])  # fmt: skip
    error = capsys.readouterr().err
    assert status == 2 and not out.exists() and error.count("\n") == 1
    assert "tinyshakespeare" in error and "input.txt" in error and "dlcc data fetch" in error


def test_bad_sampling_input_is_one_clear_line(copy_run, tmp_path, capsys):
    for argv, message in [
        ([str(copy_run), "--prime", "xyz"], "--prime: character 'x'"),
        ([str(copy_run), "--temperature", "0"], "--temperature must be > 0"),
        ([str(copy_run), "--n", "0"], "--n must be >= 1"),
        ([str(tmp_path)], "not a run directory"),
    ]:
        assert main(["numpy", "sample", *argv]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error


def test_a_text_split_keeps_the_last_tenth_for_validation():
    corpus = corpus_from_text("t", "abcdefghij" * 10)
    assert len(corpus.train) == 90 and len(corpus.val) == 10
    assert corpus.decode(corpus.val) == "abcdefghij"
    with pytest.raises(DataError, match="not in the model's vocabulary"):
        corpus.encode("z")


# ---- the real corpus ------------------------------------------------------------------------


@pytest.mark.shared_data
def test_tinyshakespeare_loads_checked_and_split():
    from dlcc.data import load_dataset, verify_dataset

    folder = shared_dir()
    corpus = load_corpus("tinyshakespeare", folder)
    assert len(corpus.vocab) == 65
    assert len(corpus.train) + len(corpus.val) == 1_115_394
    assert len(corpus.val) == 1_115_394 // 10
    assert verify_dataset("tinyshakespeare", folder).fully_verified
    with pytest.raises(DataError, match="text corpus"):
        load_dataset("tinyshakespeare", folder)
    manual_seed(0)
    model = CharLSTM(65, 8, 16)
    result = evaluate_text(model, corpus.val[:5000])
    assert abs(result.loss - np.log(65)) < 0.5  # an untrained model is near chance
