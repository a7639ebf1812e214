"""The GAN trainer on the embedded digits: the run directory contract, exact resume,
the classifier's figures, refusals, and the sample/evaluate commands."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from dlcc.cli import main
from dlcc.gan import trainer
from dlcc.runs import METRIC_KEYS, RunDirError
from dlcc.training.config import ConfigError, load_recipe

QUIET = ["train.progress=false"]


def smoke(*overrides: str, **options):
    config = load_recipe("gan_smoke", [*QUIET, *overrides])
    config.task.options.update(options)
    return config


def test_dlcc_train_dispatches_a_gan_recipe_and_writes_the_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "gan_smoke", "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(METRIC_KEYS) <= set(metrics)
    assert metrics["kind"] == "torch" and metrics["task"] == "gan"
    assert (metrics["monitor"], metrics["mode"], metrics["best_epoch"]) == ("epoch", "max", 2)
    assert metrics["test_checkpoint"] == "last" and metrics["test_fid"] is None
    history = json.loads((out / "history.json").read_text())
    columns = history["columns"]
    assert list(columns) == ["epoch", "loss_d", "loss_g", "d_real", "d_fake", "lr", "seconds",
                             "samples_per_second"]  # fmt: skip
    assert columns["epoch"] == [1, 2]
    assert all(0 < value < 1 for value in columns["d_real"] + columns["d_fake"])  # probabilities
    config = (out / "config.yaml").read_text()
    assert config.startswith("kind: torch") and "name: gan" in config
    for name in ("run.json", "checkpoints/last.pt", "checkpoints/best.pt", "losses.png",
                 "samples.png", "samples/epoch_001.png", "samples/epoch_002.png"):  # fmt: skip
        assert (out / name).is_file(), name
    with Image.open(out / "samples.gif") as gif:
        assert gif.n_frames == 2  # one frame per epoch
    # the fixed-noise grid: 20 samples, 10 columns (one per class) of 8x8 images, doubled
    with Image.open(out / "samples" / "epoch_001.png") as grid:
        assert grid.size == (2 * (10 * 10 + 2), 2 * (2 * 10 + 2))
    checkpoint = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert {"model", "generator", "discriminator", "optimizer", "optimizer_d"} <= set(checkpoint)
    assert "resum" not in capsys.readouterr().out


def test_a_finished_gan_run_is_not_overwritten(tmp_path):
    config = smoke("train.epochs=1")
    trainer.train_gan(config, tmp_path / "run")
    with pytest.raises(RunDirError, match="already holds a finished run"):
        trainer.train_gan(config, tmp_path / "run")
    with pytest.raises(RunDirError, match="other settings"):
        trainer.train_gan(smoke("train.epochs=2"), tmp_path / "run")


def test_an_interrupted_gan_run_resumes_to_the_same_weights_and_history(tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    trainer.train_gan(smoke("train.epochs=3"), whole)

    broken = tmp_path / "broken"
    real_epoch_line = trainer.epoch_line

    def interrupt_after_epoch_two(history, epochs):  # after epoch 2's checkpoint is on disk
        if len(history) == 2:
            raise KeyboardInterrupt
        return real_epoch_line(history, epochs)

    monkeypatch.setattr(trainer, "epoch_line", interrupt_after_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        trainer.train_gan(smoke("train.epochs=3"), broken)
    assert not (broken / "metrics.json").exists()
    monkeypatch.setattr(trainer, "epoch_line", real_epoch_line)
    trainer.train_gan(smoke("train.epochs=3"), broken)

    a = torch.load(whole / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(broken / "checkpoints" / "last.pt", weights_only=True)
    for key in ("model", "generator", "discriminator"):
        for name, value in a[key].items():
            torch.testing.assert_close(b[key][name], value, rtol=0, atol=0, msg=f"{key}.{name}")
    assert a["step"] == b["step"] and a["epoch"] == b["epoch"] == 3
    for column in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert a["history"]["columns"][column] == b["history"]["columns"][column]
    metrics = json.loads((broken / "metrics.json").read_text())
    assert metrics["train_seconds_this_session"] < metrics["train_seconds"] + 5
    assert metrics["epochs"] == 3


def test_wgan_gp_trains_with_a_layer_norm_critic_and_refuses_batch_norm(tmp_path):
    critic = {"name": "gan_discriminator", "options": {"width": 16, "norm": "layer"}}
    config = smoke("train.epochs=1", loss="wgan_gp", n_critic=2, discriminator=critic)
    metrics = trainer.train_gan(config, tmp_path / "wgan")
    history = json.loads((tmp_path / "wgan" / "history.json").read_text())["columns"]
    assert metrics["epochs"] == 1 and history["loss_g"][0] is not None
    # one critic step a batch (whole batches only), one generator step every second batch
    critic_steps = round(history["samples_per_second"][0] * history["seconds"][0]) // 64
    assert critic_steps > 10
    checkpoint = torch.load(tmp_path / "wgan" / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["step"] == critic_steps // 2
    batch_norm = {"name": "gan_discriminator", "options": {"norm": "batch"}}
    with pytest.raises(ConfigError, match=r"batch-norm critic.*layer or none"):
        trainer.train_gan(smoke(loss="wgan_gp", discriminator=batch_norm), tmp_path / "bn")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"los": "wgan_gp"}, "unknown key 'los'.*did you mean 'loss'"),
        ({"loss": "hinge"}, "expected one of nonsaturating, wgan_gp"),
        ({"n_critic": 0}, r"n_critic: expected an integer >= 1"),
        ({"discriminator": {"nam": "x"}}, "expected {name: gan_discriminator"),
        ({"mode_seeking": -1}, r"mode_seeking: expected a weight >= 0"),
    ],
)
def test_bad_gan_options_are_refused_in_one_line(options, message, tmp_path):
    with pytest.raises(ConfigError, match=message) as error:
        trainer.train_gan(smoke(**options), tmp_path / "run")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_torchrun_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="runs in one process"):
        trainer.train_gan(smoke(), tmp_path / "run")


def test_a_schedule_other_than_none_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"schedule: \{name: none\}"):
        trainer.train_gan(smoke("schedule.name=onecycle"), tmp_path / "run")


def test_with_a_classifier_the_run_records_fid_and_class_accuracy(tmp_path, digits_classifier):
    out = tmp_path / "run"
    config = smoke("train.epochs=1", classifier=str(digits_classifier))
    metrics = trainer.train_gan(config, out)
    chosen = (metrics["monitor"], metrics["mode"], metrics["test_checkpoint"])
    assert chosen == ("fid", "min", "best")
    for name in ("test_fid", "test_class_accuracy", "test_class_entropy", "fid_floor",
                 "test_within_class_distance", "within_class_distance_real"):  # fmt: skip
        assert isinstance(metrics[name], float), name
    # an untrained generator varies less within a class than real digits do
    assert metrics["test_within_class_distance"] < metrics["within_class_distance_real"]
    assert 0 <= metrics["test_class_accuracy"] <= 1
    assert 0 <= metrics["test_class_entropy"] <= torch.log(torch.tensor(10.0)).item() + 1e-9
    assert metrics["fid_floor"] < metrics["test_fid"]  # an untrained GAN is far from real data
    history = json.loads((out / "history.json").read_text())["columns"]
    assert history["fid"][0] == metrics["best_value"]

    report = tmp_path / "figures.json"
    argv = ["gan", "evaluate", str(out), "--classifier", str(digits_classifier), "--n", "200",
            "--out", str(report)]  # fmt: skip
    assert main(argv) == 0
    figures = json.loads(report.read_text())
    assert figures["fid"] == pytest.approx(history["fid"][0])  # same samples, same classifier
    assert figures["fid_floor"] == pytest.approx(metrics["fid_floor"])
    assert figures["within_class_distance"] == pytest.approx(history["within_class_distance"][0])


def test_a_classifier_of_another_task_or_a_missing_one_is_refused(tmp_path, capsys):
    from dlcc.gan.metrics import GanMetricError

    gan = tmp_path / "gan"
    trainer.train_gan(smoke("train.epochs=1"), gan)
    with pytest.raises(GanMetricError, match="is a gan run; measuring samples needs a class"):
        trainer.train_gan(smoke("train.epochs=1", classifier=str(gan)), tmp_path / "other")
    missing = str(tmp_path / "runs" / "mnist_cnn")
    with pytest.raises(ConfigError, match="does not exist: train the classifier first"):
        trainer.train_gan(smoke(classifier=missing), tmp_path / "other")
    assert not (tmp_path / "other").exists()  # refused before the run directory is made
    capsys.readouterr()
    assert main(["eval", str(gan)]) == 2  # dlcc eval points to dlcc gan evaluate
    assert "is a GAN run" in capsys.readouterr().err


def test_train_time_budget_stops_the_gan_between_epochs(tmp_path):
    metrics = trainer.train_gan(smoke("train.epochs=5", "train.time_budget=0.001"), tmp_path / "r")
    assert metrics["epochs"] == 1  # the first epoch always runs; the next would pass the budget


@pytest.fixture(scope="module")
def unconditional_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "uncond"
    torch.set_num_threads(1)
    trainer.train_gan(smoke("train.epochs=1", conditional=False), out)
    return out


def test_gan_sample_writes_a_grid_and_checks_its_options(tmp_path, unconditional_run, capsys):
    grid = tmp_path / "grid.png"
    assert main(["gan", "sample", str(unconditional_run), "--n", "9", "--out", str(grid)]) == 0
    with Image.open(grid) as image:
        assert image.size == (2 * (3 * 10 + 2), 2 * (3 * 10 + 2))  # 3x3 of 8x8, doubled
    capsys.readouterr()
    assert main(["gan", "sample", str(unconditional_run), "--class", "2", "--out", str(grid)]) == 2
    assert "unconditional GAN" in capsys.readouterr().err
    assert main(["gan", "sample", str(unconditional_run), "--n", "0", "--out", str(grid)]) == 2
    assert "--n: expected an integer >= 1" in capsys.readouterr().err


def test_gan_sample_by_class_and_its_errors(tmp_path, digits_classifier, capsys):
    run = tmp_path / "run"
    trainer.train_gan(smoke("train.epochs=1"), run)
    grid = tmp_path / "three.png"
    assert main(["gan", "sample", str(run), "--n", "4", "--class", "3", "--out", str(grid)]) == 0
    assert grid.is_file()
    capsys.readouterr()
    assert main(["gan", "sample", str(run), "--class", "10", "--out", str(grid)]) == 2
    assert "expected a class index 0..9" in capsys.readouterr().err
    assert main(["gan", "sample", str(digits_classifier), "--out", str(grid)]) == 2
    assert "is a classification run, not a GAN run" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.yaml").write_text((run / "config.yaml").read_text())
    assert main(["gan", "sample", str(empty), "--out", str(grid)]) == 2
    assert "has not finished an epoch" in capsys.readouterr().err


def test_the_ema_follows_the_generator_with_a_warm_up():
    model, ema = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        ema.weight.fill_(0.0)
    trainer.update_ema(ema, model, decay=0.999, step=0)  # d = min(0.999, 1/10) = 0.1
    torch.testing.assert_close(ema.weight, torch.full((1, 2), 0.9))
    trainer.update_ema(ema, model, decay=0.5, step=1000)  # d = 0.5
    torch.testing.assert_close(ema.weight, torch.full((1, 2), 0.95))


def test_mode_seeking_pairs_each_label_with_two_noises_and_trains(tmp_path):
    config = smoke("train.epochs=1", mode_seeking=1.0)
    options = trainer.gan_options(config)
    from dlcc.training.data import load_data

    data = load_data(config.data, 0)
    nets = trainer.build_nets(config, options, data.in_shape, len(data.classes), "cpu")
    seen = []  # (labels, noise) of the generator steps (the ones with gradients)
    forward = nets.generator.forward

    def spy(z, labels=None):
        if torch.is_grad_enabled():
            seen.append((labels.clone(), z.clone()))
        return forward(z, labels)

    nets.generator.forward = spy
    real = trainer.to_gan_range(data.train.inputs, data.mean, data.std)
    state = type("State", (), {"step": 0})()
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    result = trainer.train_gan_epoch(
        nets, real, data.train.targets, order, 64, options, state, torch.Generator(), "cpu"
    )
    assert seen and all(torch.isfinite(torch.tensor(result[key])) for key in ("loss_d", "loss_g"))
    for labels, z in seen:
        half = len(labels) // 2
        assert torch.equal(labels[:half], labels[half : 2 * half])  # the same classes
        assert not torch.allclose(z[:half], z[half : 2 * half])  # with other noise
    assert trainer.train_gan(config, tmp_path / "run")["epochs"] == 1
