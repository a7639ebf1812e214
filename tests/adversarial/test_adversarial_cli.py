"""Adversarial training through the loop (task.options.adversarial) and ``dlcc attack`` on
real tiny runs: robustness gained, the files written, and the one-line refusals."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
import yaml
from adversarial_helpers import digits_pixels, train_mlp

from dlcc.cli import main
from dlcc.training.config import ConfigError, load_recipe
from dlcc.training.loop import train
from dlcc.training.tasks import build_task
from dlcc.training.tasks.classification import ClassificationTask

OUTPUTS = ("robustness.json", "robustness.png", "adversarial_examples.png")


def _quiet(config):
    config.train.progress = False
    config.train.threads = 1
    config.train.device = "cpu"
    return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"plain": run dir, "adversarial": run dir}: the two digits smoke recipes, trained."""
    root = tmp_path_factory.mktemp("attack")
    folders = {"plain": root / "plain", "adversarial": root / "adversarial"}
    train(_quiet(load_recipe("mnist_cnn_smoke")), folders["plain"])
    train(_quiet(load_recipe("mnist_cnn_adv_smoke")), folders["adversarial"])
    return folders


def _attack(run_dir, out, *extra) -> int:
    return main(["attack", str(run_dir), "--out", str(out), "--device", "cpu", *extra])


class OnStandardised(torch.nn.Module):
    """A pixel model as the loop holds it: taking inputs standardised with (0.3, 0.4)."""

    def __init__(self, pixel_model: torch.nn.Module) -> None:
        super().__init__()
        self.pixel_model = pixel_model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.pixel_model(inputs * 0.4 + 0.3)


def test_the_adversarial_step_attacks_each_batch_within_the_ball():
    pixels, labels = digits_pixels("train")
    pixels, labels = pixels[:200], labels[:200]
    model = train_mlp(pixels, labels, steps=30)
    task = ClassificationTask(
        10, adversarial={"attack": "fgsm_rs", "eps": 0.1}, pixel_mean=[0.3], pixel_std=[0.4]
    )
    step = task.adversary(OnStandardised(model))
    attacked, targets = step((pixels - 0.3) / 0.4, labels, torch.Generator().manual_seed(0))
    assert targets is labels
    attacked_pixels = attacked * 0.4 + 0.3
    moved = (attacked_pixels - pixels).abs()
    assert moved.max() <= 0.1 + 1e-5 and moved.max() > 0.09
    assert attacked_pixels.min() >= -1e-6 and attacked_pixels.max() <= 1 + 1e-6
    clean_loss = torch.nn.functional.cross_entropy(model(pixels), labels)
    attacked_loss = torch.nn.functional.cross_entropy(model(attacked_pixels), labels)
    assert attacked_loss > clean_loss + 0.1
    assert ClassificationTask(10).adversary(OnStandardised(model)) is None


def test_build_task_hands_the_data_standardisation_to_adversarial_training():
    config = load_recipe("mnist_cnn_adv_smoke")
    data = type("Data", (), {"classes": list("0123456789"), "mean": [0.3], "std": [0.37]})
    task = build_task(config, data)
    assert task.adversarial.name == "fgsm_rs" and task.adversarial.eps == 0.1
    assert (task.pixel_mean, task.pixel_std) == ([0.3], [0.37])
    config.task.options = {"adversarial": {"attack": "fgsm_rs", "eps": 3}}
    with pytest.raises(ConfigError, match=r"task.options for classification: eps: expected"):
        build_task(config, data)


def test_adversarial_training_makes_the_model_more_robust(runs, tmp_path):
    accuracy = {}
    for name, run_dir in runs.items():
        assert _attack(run_dir, tmp_path / name, "--eps", "0,0.1", "--steps", "10") == 0
        report = json.loads((tmp_path / name / "robustness.json").read_text())
        accuracy[name] = report["pgd"][1]["accuracy"]
        # eps 0 is the clean test accuracy, which the trainer measured on its own
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert report["fgsm"][0]["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
        assert report["pgd"][1]["accuracy"] <= report["fgsm"][1]["accuracy"]
    assert accuracy["adversarial"] > accuracy["plain"] + 0.1


def test_attack_writes_its_three_files(runs, tmp_path):
    out = tmp_path / "out"
    status = _attack(runs["plain"], out, "--eps", "0,0.05,0.2", "--steps", "3", "--limit", "40")
    assert status == 0
    assert all((out / name).is_file() for name in OUTPUTS)
    report = json.loads((out / "robustness.json").read_text())
    assert report["eps"] == [0.0, 0.05, 0.2] and report["samples"] == 40
    assert [row["steps"] for row in report["pgd"]] == [3, 3, 3]
    assert not list(out.glob(".*.part"))


@pytest.mark.parametrize(
    ("eps", "message"),
    [
        ("0,abc", r"--eps: expected comma-separated numbers"),
        ("0,1.5", r"--eps 1.5: expected a number in \[0, 1\] in pixel units"),
        ("-0.1", r"--eps -0.1: expected a number in \[0, 1\]"),
    ],
)
def test_bad_eps_values_are_refused_before_anything_is_written(
    runs, tmp_path, capsys, eps, message
):
    status = _attack(runs["plain"], tmp_path / "out", f"--eps={eps}")
    error = capsys.readouterr().err
    assert status == 2
    assert len(error.strip().splitlines()) == 1 and re.search(message, error)
    assert not (tmp_path / "out").exists()


def test_a_run_without_a_checkpoint_or_of_another_task_is_refused(runs, tmp_path, capsys):
    bare = tmp_path / "bare"
    shutil.copytree(runs["plain"], bare)
    shutil.rmtree(bare / "checkpoints")
    assert _attack(bare, tmp_path / "out") == 2
    assert "best.pt does not exist" in capsys.readouterr().err

    other = tmp_path / "other"
    shutil.copytree(runs["plain"], other)
    document = yaml.safe_load((other / "config.yaml").read_text())
    document["task"] = "segmentation"
    (other / "config.yaml").write_text(yaml.safe_dump(document))
    assert _attack(other, tmp_path / "out") == 2
    assert "is a segmentation run; `dlcc attack` needs a classification run" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()
