"""The language_model task on the one loop: token streams and windows, sampling, and the
smoke recipe trained through `dlcc train` into a run directory, then `dlcc text sample`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlcc.cli import main
from dlcc.errors import DlccError
from dlcc.models import CharRNN
from dlcc.numpy_nn.sequence import draw_token
from dlcc.training.sequence import IGNORE, CarriedState, TokenStreams, TokenWindows
from dlcc.training.tasks.language_model import LanguageModelTask, sample_text


def test_stream_batches_are_consecutive_chunks_of_every_stream():
    ids = np.arange(101)  # 100 (input, target) pairs
    streams = TokenStreams(ids, streams=4, seq_len=5)  # 25 per stream: 5 whole chunks
    assert len(streams) == 20 and streams.sequential
    for chunk in range(5):
        inputs, targets = streams.__getitems__(list(range(chunk * 4, chunk * 4 + 4)))
        for stream in range(4):
            start = stream * 25 + chunk * 5
            assert inputs[stream].tolist() == list(range(start, start + 5))
            assert targets[stream].tolist() == list(range(start + 1, start + 6))


@pytest.mark.parametrize("make", [
    lambda ids: TokenStreams(ids, streams=3, seq_len=4, pad=True),
    lambda ids: TokenWindows(ids, seq_len=7, pad=True),
])  # fmt: skip
def test_padded_evaluation_data_predict_every_character_once(make):
    ids = np.arange(51)
    data = make(ids)
    inputs, targets = data.__getitems__(list(range(len(data))))
    real = targets != IGNORE
    assert sorted(targets[real].tolist()) == list(range(1, 51))
    assert torch.equal(inputs[real] + 1, targets[real])


def test_draw_token_top_k_1_is_greedy_and_top_k_keeps_only_the_likeliest():
    logits = np.array([0.1, 2.0, 1.9, -1.0])
    rng = np.random.default_rng(0)
    assert {draw_token(logits, temperature=5.0, top_k=1, rng=rng) for _ in range(20)} == {1}
    drawn = {draw_token(logits, temperature=50.0, top_k=2, rng=rng) for _ in range(200)}
    assert drawn == {1, 2}


def test_sampling_is_seeded_greedy_with_top_k_1_and_checks_its_settings():
    torch.manual_seed(0)
    model = CarriedState(CharRNN(5, embedding=8, hidden=8))
    vocab = list("abcde")

    def draw(seed, **options):
        return sample_text(model, vocab, "ab", 30, rng=np.random.default_rng(seed), **options)

    assert draw(1) == draw(1) and draw(1) != draw(2)
    assert draw(1, top_k=1) == draw(2, top_k=1, temperature=3.0)
    # greedy by hand: feed the argmax back in
    ids, state, text = torch.tensor([[0, 1]]), None, "ab"
    for _ in range(30):
        logits, state = model.net(ids, state)
        ids = logits[:, -1:].argmax(-1)
        text += vocab[int(ids)]
    assert draw(0, top_k=1) == text
    for options, message in [
        ({"temperature": 0.0}, "--temperature must be > 0"),
        ({"top_k": 0}, "--top-k must be >= 1"),
    ]:
        with pytest.raises(DlccError, match=message):
            draw(0, **options)
    with pytest.raises(DlccError, match="character 'z' is not in the model's vocabulary"):
        sample_text(model, vocab, "az", 5, rng=np.random.default_rng(0))


def test_the_loss_ignores_padding_and_bits_are_nats_over_ln2():
    task = LanguageModelTask(vocab_size=4)
    outputs = torch.randn(2, 3, 4)
    targets = torch.tensor([[0, 1, 2], [3, IGNORE, IGNORE]])
    real = targets != IGNORE
    expected = torch.nn.functional.cross_entropy(outputs[real], targets[real])
    torch.testing.assert_close(task.loss(outputs, targets), expected)
    assert task.count(targets) == 4
    bits = task.metrics(sync=False)["bits_per_char"]
    bits.update(outputs, targets)
    torch.testing.assert_close(bits.compute().float(), expected / np.log(2))


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    """The LSTM smoke recipe on the generated copy task, through `dlcc train`."""
    run = tmp_path_factory.mktemp("lm") / "run"
    assert main(["train", "shakespeare_lstm_smoke", "--out", str(run), "--no-progress"]) == 0
    return run


def test_the_smoke_recipe_trains_into_a_run_directory_and_learns_the_copy(copy_run):
    files = ["config.yaml", "history.json", "metrics.json", "run.json", "vocab.json"]
    files += ["samples.txt", "history.png", "checkpoints/last.pt", "checkpoints/best.pt"]
    for name in files:
        assert (copy_run / name).is_file(), name
    metrics = json.loads((copy_run / "metrics.json").read_text())
    assert metrics["task"] == "language_model" and metrics["monitor"] == "val_loss"
    assert metrics["test_samples"] == 1599  # the whole validation text: 1,600 characters
    # Unpredictable letters alone cost 0.52 nats/char; a model that cannot copy, >= 0.78.
    assert metrics["test_loss"] < 0.62, metrics
    assert metrics["test_bits_per_char"] == pytest.approx(metrics["test_loss"] / np.log(2))
    columns = json.loads((copy_run / "history.json").read_text())["columns"]
    assert {"val_bits_per_char", "train_accuracy"} <= set(columns)
    assert json.loads((copy_run / "vocab.json").read_text())["vocab"] == list("\n>abcd")


def test_dlcc_text_sample_prints_a_reproducible_sample(copy_run, capsys):
    argv = ["text", "sample", str(copy_run), "--prime", "abc>", "--length", "40"]
    assert main([*argv, "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert main([*argv, "--seed", "3"]) == 0
    assert capsys.readouterr().out == first and first.startswith("abc>")
    greedy = ["text", "sample", str(copy_run), "--prime", "\\nabc>", "--top-k", "1"]
    assert main([*greedy, "--length", "8", "--checkpoint", "last"]) == 0
    assert capsys.readouterr().out.startswith("\nabc>abc\n")  # greedy copies the letters


@pytest.mark.parametrize("extra, message", [
    (["--prime", "xyz"], "character 'x' is not in the model's vocabulary"),
    (["--temperature", "0"], "--temperature must be > 0"),
    (["--top-k", "0"], "--top-k must be >= 1"),
    (["--length", "0"], "--length must be >= 1"),
])  # fmt: skip
def test_dlcc_text_sample_refuses_bad_input_in_one_line(copy_run, capsys, extra, message):
    assert main(["text", "sample", str(copy_run), *extra]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_dlcc_text_sample_refuses_what_is_not_a_language_model_run(tmp_path, capsys):
    assert main(["text", "sample", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    run = tmp_path / "digits"
    run.mkdir()
    (run / "config.yaml").write_text("kind: torch\ntask:\n  name: classification\n")
    assert main(["text", "sample", str(run)]) == 2
    error = capsys.readouterr().err
    assert "not a language model" in error and error.count("\n") == 1


def test_a_time_budget_stops_the_run_after_the_epoch_that_spends_it(tmp_path, capsys):
    run = tmp_path / "budget"
    argv = ["train", "shakespeare_gpt_smoke", "--out", str(run), "--no-progress"]
    assert main([*argv, "--set", "train.time_budget=0.001"]) == 0
    assert "time budget of 0.001s spent after epoch 1: stopping" in capsys.readouterr().out
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1
    assert main([*argv, "--set", "train.time_budget=0"]) == 2
    assert "train.time_budget: expected seconds > 0" in capsys.readouterr().err


def test_sequential_data_refuse_ddp_and_too_short_a_text_in_one_line():
    from dlcc.training.config import ConfigError
    from dlcc.training.data import train_sampler

    streams = TokenStreams(np.arange(101), streams=4, seq_len=5)
    assert list(train_sampler(streams, seed=0)) == list(range(20))  # in order, every epoch
    with pytest.raises(ConfigError, match="its streams are not sharded across ranks"):
        train_sampler(streams, seed=0, rank=0, world_size=2)
    with pytest.raises(ConfigError, match="too short for 4 streams of 50 characters"):
        TokenStreams(np.arange(101), streams=4, seq_len=50)


def test_dlcc_text_sample_reads_a_numpy_char_lstm_run_too(tmp_path, capsys):
    run = tmp_path / "numpy"
    argv = ["numpy", "train", "--model", "char_lstm", "--dataset", "copy", "--epochs", "1"]
    assert main([*argv, "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    sample = ["text", "sample", str(run), "--prime", "ab", "--length", "20", "--top-k", "2"]
    assert main(sample) == 0
    assert capsys.readouterr().out.startswith("ab")
    assert main(["numpy", "sample", str(run), "--n", "20", "--top-k", "0"]) == 2
    assert "--top-k must be >= 1" in capsys.readouterr().err


class _Clock:
    """time.perf_counter for the loop: 1 s per call, so epoch lengths do not depend on the
    machine (the epochs' seconds are read back from history.json, not assumed)."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1.0
        return self.now


def test_fit_budget_lays_the_schedule_out_over_the_epochs_that_fit(tmp_path, monkeypatch, capsys):
    import dlcc.training.loop as loop

    monkeypatch.setattr(loop, "time", _Clock())
    run = tmp_path / "fit"
    argv = ["train", "shakespeare_gpt_smoke", "--out", str(run), "--no-progress"]
    settings = ["train.epochs=8", "train.time_budget=3.5", "train.fit_budget=true"]
    assert main([*argv, *[arg for s in settings for arg in ("--set", s)]]) == 0
    out = capsys.readouterr().out
    history = json.loads((run / "history.json").read_text())["columns"]
    seconds = history["seconds"]
    assert len(seconds) < 8, "the budget should have cut the run short"
    assert len(seconds) == loop.epochs_within_budget(seconds, 3.5, 8)
    assert "the lr schedule now spans them" in out
    # the one-cycle schedule reached its end on the last step: the final, smallest lr
    # (recipe: lr 0.003, torch's defaults div_factor 25, final_div_factor 1e4)
    assert history["lr"][-1] == pytest.approx(0.003 / 25 / 1e4, rel=1e-6)


def test_fit_budget_needs_a_budget_and_the_epoch_count_follows_the_pace(tmp_path, capsys):
    from dlcc.training.schedules import epochs_within_budget

    assert epochs_within_budget([], 100.0, 6) == 6  # no pace yet: as planned
    assert epochs_within_budget([30.0], 100.0, 6) == 3  # 30 + 2 * 30 <= 100 < 30 + 3 * 30
    assert epochs_within_budget([10.0], 100.0, 6) == 6  # never more than train.epochs
    assert epochs_within_budget([30.0, 60.0], 100.0, 6) == 2  # slower: none more fit
    assert epochs_within_budget([120.0], 100.0, 6) == 1  # the epochs done stay done
    argv = ["train", "shakespeare_gpt_smoke", "--out", str(tmp_path / "r"), "--no-progress"]
    assert main([*argv, "--set", "train.fit_budget=true"]) == 2
    assert "train.time_budget, which is not set" in capsys.readouterr().err
    assert not (tmp_path / "r" / "checkpoints").exists()


@pytest.mark.parametrize("name", ["onecycle", "cosine"])
def test_a_refitted_schedule_is_where_a_fresh_one_over_the_new_length_would_be(name):
    import torch

    from dlcc.training.config import ScheduleConfig
    from dlcc.training.schedules import build_scheduler, refit_scheduler

    def optimiser():
        return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=0.01)

    schedule = ScheduleConfig(name=name)
    moved = optimiser()
    build_scheduler(moved, schedule, 0.01, 100, 10)  # the plan it had
    refit_scheduler(moved, schedule, 0.01, 60, 10, 25)
    oracle = optimiser()
    fresh = build_scheduler(oracle, schedule, 0.01, 60, 10)
    for _ in range(25):
        oracle.step()
        fresh.step()
    assert moved.param_groups[0]["lr"] == pytest.approx(oracle.param_groups[0]["lr"], rel=1e-12)
    assert moved.param_groups[0]["betas"] == pytest.approx(oracle.param_groups[0]["betas"])
