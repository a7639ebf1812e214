"""The training loop end to end on the embedded digits: run directory, eval, debug tools,
accumulation, and the one-line errors a user sees for bad input."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
import yaml
from training_helpers import SPLITTABLE, make_image_masks, merged, write_recipe

from dlcc.cli import main
from dlcc.runs import BestTracker, History, RunDirError
from dlcc.runs.commands import evaluate_run
from dlcc.training import loop
from dlcc.training.checkpoint import CheckpointError, load_checkpoint
from dlcc.training.config import config_from_dict, load_recipe
from dlcc.training.debug import find_learning_rate, overfit_one_batch
from dlcc.training.loop import EpochContext, TrainingDiverged, train
from dlcc.training.schedules import cosine_with_warmup
from dlcc.training.state import RunState
from dlcc.training.tasks import ClassificationTask


def _quiet(config):
    config.train.progress = False
    return config


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One finished run of the mnist_cnn smoke recipe, shared by the read-only tests."""
    run_dir = tmp_path_factory.mktemp("runs") / "smoke"
    config = _quiet(load_recipe("mnist_cnn_smoke"))
    metrics = train(config, run_dir)
    return run_dir, metrics


def test_a_run_directory_holds_config_metrics_history_plots_and_checkpoints(smoke_run):
    run_dir, metrics = smoke_run
    for name in (
        "config.yaml",
        "metrics.json",
        "history.json",
        "run.json",
        "metrics.csv",
        "history.png",
        "confusion_matrix.png",
        "misclassified.png",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    history = json.loads((run_dir / "history.json").read_text())["columns"]
    assert history["epoch"] == [1, 2, 3, 4, 5, 6]
    assert history["train_loss"][-1] < history["train_loss"][0]
    # 8x8 digits, a tiny CNN and six quick epochs: far above chance (0.1); 0.91 when written.
    assert metrics["test_accuracy"] > 0.8
    assert list((run_dir / "checkpoints").glob("*.part")) == []


def test_eval_reproduces_the_test_accuracy_of_the_run(smoke_run):
    run_dir, metrics = smoke_run
    result = evaluate_run(run_dir)
    assert result["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert result["samples"] == 360 and result["kind"] == "torch"
    assert (run_dir / "eval_test_best.json").is_file()


def test_checkpoints_load_with_weights_only_and_hold_the_full_state(smoke_run):
    run_dir, _ = smoke_run
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["epoch"] == 6 and state["model_name"] == "small_cnn"
    for key in ("model", "optimizer", "scheduler", "scaler", "rng", "history", "tracker", "config"):
        assert key in state


def test_a_finished_run_is_not_overwritten(smoke_run):
    run_dir, _ = smoke_run
    with pytest.raises(RunDirError, match=r"already holds a finished run"):
        train(_quiet(load_recipe("mnist_cnn_smoke")), run_dir)


def test_a_run_directory_of_another_config_is_refused(smoke_run):
    run_dir, _ = smoke_run
    with pytest.raises(RunDirError, match=r"other settings \(train.epochs: 6 -> 7"):
        train(_quiet(load_recipe("mnist_cnn_smoke", ["train.epochs=7"])), run_dir)


def test_a_corrupted_checkpoint_gives_one_clear_line(smoke_run, tmp_path, capsys):
    run_dir, _ = smoke_run
    broken = tmp_path / "broken"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    good = (run_dir / "checkpoints" / "best.pt").read_bytes()
    (broken / "checkpoints" / "best.pt").write_bytes(good[: len(good) // 2])
    assert main(["eval", str(broken)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("dlcc: error: ") and "not a readable checkpoint" in error
    assert error.count("\n") == 1 and "Traceback" not in error


def test_a_checkpoint_of_another_model_is_refused(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    config = (run_dir / "config.yaml").read_text()
    (other / "config.yaml").write_text(config.replace("- 16\n    - 32", "- 16\n    - 64"))
    (other / "checkpoints" / "best.pt").write_bytes((run_dir / "checkpoints/best.pt").read_bytes())
    with pytest.raises(CheckpointError, match=r"does not fit this small_cnn.*shape differs"):
        evaluate_run(other)
    as_mlp = yaml.safe_load(config)
    as_mlp["model"] = {"name": "mlp", "options": {}}
    (other / "config.yaml").write_text(yaml.safe_dump(as_mlp))
    with pytest.raises(CheckpointError, match=r"holds weights for model 'small_cnn'.*'mlp'"):
        evaluate_run(other)


def test_a_checkpoint_with_pickled_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "dlcc-checkpoint-v1", "model": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"not a readable checkpoint"):
        load_checkpoint(path)


def test_gradient_accumulation_equals_the_large_batch(tmp_path):
    whole = config_from_dict(SPLITTABLE)
    accumulated = config_from_dict(
        merged(SPLITTABLE, data={"batch_size": 32}, train={"accumulate": 2})
    )
    train(whole, tmp_path / "whole")
    train(accumulated, tmp_path / "accumulated")
    a = load_checkpoint(tmp_path / "whole/checkpoints/last.pt")["model"]
    b = load_checkpoint(tmp_path / "accumulated/checkpoints/last.pt")["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("clip", [0.01, 1e6])
def test_gradient_clipping_brings_the_global_norm_to_the_limit(clip):
    """The optimiser sees gradients of global norm min(norm, clip); the oracle is the norm
    of a plain backward pass."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    inputs, targets = torch.randn(32, 12) * 3, torch.randint(0, 3, (32,))
    reference = torch.nn.functional.cross_entropy(model(inputs), targets)
    gradients = torch.autograd.grad(reference, list(model.parameters()))
    true_norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in gradients])).item()
    assert true_norm > 0.01  # so the small limit really clips

    seen = []
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    step = optimizer.step

    def recording_step(*args, **kwargs):
        norms = [p.grad.norm() for p in model.parameters()]
        seen.append(torch.linalg.vector_norm(torch.stack(norms)).item())
        return step(*args, **kwargs)

    optimizer.step = recording_step
    context = EpochContext(
        task=ClassificationTask(3),
        optimizer=optimizer,
        scheduler=None,
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        device=torch.device("cpu"),
        grad_clip=clip,
    )
    state = RunState(History(["epoch"]), BestTracker("val_accuracy", "max"))
    loop.train_one_epoch(model, [(inputs, targets)], context, state)
    assert seen == [pytest.approx(min(true_norm, clip), rel=1e-5)]


def test_a_nan_loss_stops_with_the_step_and_the_last_good_checkpoint(tmp_path, monkeypatch):
    # The loss turns NaN in the second epoch (20 batches per epoch): epoch 1 was good.
    calls = itertools.count()
    finite_loss = ClassificationTask.loss

    def loss_turning_nan(self, outputs, targets):
        loss = finite_loss(self, outputs, targets)
        return loss * math.nan if next(calls) >= 25 else loss

    monkeypatch.setattr(ClassificationTask, "loss", loss_turning_nan)
    config = config_from_dict(merged(SPLITTABLE, train={"epochs": 3}))
    last = tmp_path / "diverged" / "checkpoints" / "last.pt"
    with pytest.raises(TrainingDiverged) as raised:
        train(config, tmp_path / "diverged")
    message = str(raised.value)
    assert "loss became nan at epoch 2, step 25 (lr 0.05)" in message, message
    assert f"last good checkpoint: {last} (epoch 1)" in message
    kept = load_checkpoint(last)  # still there, readable, and the end of the good epoch
    assert kept["epoch"] == 1 and kept["step"] == 20
    assert all(torch.isfinite(value).all() for value in kept["model"].values())
    assert not (tmp_path / "diverged" / "metrics.json").exists()


def test_overfit_one_batch_reaches_full_accuracy():
    config = _quiet(
        load_recipe("mnist_cnn_smoke", ["data.batch_size=16", "train.overfit_steps=60"])
    )
    result = overfit_one_batch(config)
    assert result["passed"], result
    assert result["final_loss"] < result["first_loss"] / 10


def test_the_learning_rate_finder_writes_its_plot_and_a_sane_suggestion(tmp_path):
    config = _quiet(load_recipe("mnist_cnn_smoke"))
    result = find_learning_rate(config, tmp_path, steps=60)
    assert (tmp_path / "lr_finder.png").is_file() and (tmp_path / "lr_finder.json").is_file()
    assert 1e-6 <= result["suggested_lr"] <= 1.0
    assert len(result["lr"]) <= 60 and result["lr"] == sorted(result["lr"])


def test_cosine_with_warmup_rises_then_decays_to_zero():
    values = [cosine_with_warmup(step, 10, 100) for step in range(101)]
    assert values[0] < values[5] < values[9] <= 1.0
    assert values[10] == pytest.approx(1.0)
    assert values[55] == pytest.approx(0.5, abs=1e-6)
    assert values[100] == pytest.approx(0.0, abs=1e-12)
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(values[10:]))


def test_onecycle_is_stepped_per_batch(smoke_run):
    run_dir, _ = smoke_run
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    # 1,257 digits / 64 = 20 batches per epoch, one scheduler step each.
    assert state["step"] == 6 * 20
    assert state["scheduler"]["last_epoch"] == 6 * 20
    assert math.isclose(state["history"]["columns"]["lr"][-1], 0.03 / 25 / 1e4, rel_tol=1e-3)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--set", "train.epochz=3"], "unknown key 'epochz'"),
        (["--set", "train.epochs=many"], "expected an integer, got str 'many'"),
        (["--set", "data.dataset=cifar10", "--data-dir", "{empty}"], "cifar10"),
        (["--device", "cuda"], "no CUDA GPU is visible"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(arguments, expected, tmp_path, capsys):
    empty = tmp_path / "no-data"
    empty.mkdir()
    arguments = [argument.replace("{empty}", str(empty)) for argument in arguments]
    if "cuda" in arguments and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    status = main(["train", "mnist_cnn_smoke", "--out", str(tmp_path / "run"), *arguments])
    error = capsys.readouterr().err
    assert status == 2
    assert error.startswith("dlcc: error: ") and expected in error
    assert error.count("\n") == 1, error


def test_the_training_command_writes_a_run(tmp_path, capsys):
    path = write_recipe(tmp_path, merged(SPLITTABLE, train={"epochs": 1}))
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "run"), "--checkpoint", "last"]) == 0


def test_without_a_validation_split_the_last_epoch_is_kept_and_json_stays_strict(tmp_path):
    config = config_from_dict(merged(SPLITTABLE, data={"val_size": 0}, train={"epochs": 2}))
    metrics = train(config, tmp_path / "run")

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    saved = json.loads((tmp_path / "run/metrics.json").read_text(), parse_constant=refuse)
    history = json.loads((tmp_path / "run/history.json").read_text(), parse_constant=refuse)
    assert saved["best_value"] is None and saved["best_epoch"] == 2
    assert saved["test_checkpoint"] == "last"
    assert history["columns"]["val_accuracy"] == [None, None]
    assert metrics["test_accuracy"] > 0.5


def test_the_segmentation_smoke_recipe_trains_evaluates_and_overfits(tmp_path, capsys):
    pairs = make_image_masks(tmp_path / "pairs", count=60, size=24)
    run = tmp_path / "run"
    data = ["--set", f"data.path={pairs}"]
    assert main(["train", "segmentation_smoke", *data, "--out", str(run), "--no-progress"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "segmentation" and metrics["monitor"] == "val_dice"
    # Bright discs on noise: 8 epochs of a 2-layer FCN find them (0.96 when written).
    assert metrics["test_dice"] > 0.9 and 0 < metrics["test_iou"] <= metrics["test_dice"]
    for name in ("segmentation_panel.png", "per_image_scores.json", "history.png"):
        assert (run / name).is_file(), name
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    assert json.loads(capsys.readouterr().out)["dice"] == pytest.approx(metrics["test_dice"])
    status = main(
        ["train", "segmentation_smoke", *data, "--out", str(tmp_path / "o"), "--overfit-batch"]
    )
    assert status == 0 and "dice" in capsys.readouterr().out


def test_image_masks_without_a_path_or_with_unpaired_files_is_one_line(tmp_path, capsys):
    assert main(["train", "segmentation_smoke", "--out", str(tmp_path / "a")]) == 2
    assert "needs data.path" in capsys.readouterr().err
    pairs = make_image_masks(tmp_path / "pairs", count=4)
    (pairs / "masks" / "0.png").unlink()
    status = main(["train", "segmentation_smoke", "--set", f"data.path={pairs}", "--out",
                   str(tmp_path / "b")])  # fmt: skip
    error = capsys.readouterr().err
    assert status == 2 and "have no mask of the same name" in error and "0.png" in error
    assert not (tmp_path / "b").exists()


def test_two_folders_named_on_the_command_line_train_and_one_alone_is_refused(tmp_path, capsys):
    pairs = make_image_masks(tmp_path / "pairs", count=12, size=16)
    folders = ["--set", f"data.images={pairs / 'images'}", "--set", f"data.masks={pairs / 'masks'}"]
    once = ["--set", "train.epochs=1", "--no-progress"]
    run = tmp_path / "run"
    assert main(["train", "segmentation_smoke", *folders, *once, "--out", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["test_samples"] > 0
    alone = ["--set", f"data.images={pairs / 'images'}"]
    assert main(["train", "segmentation_smoke", *alone, *once, "--out", str(tmp_path / "b")]) == 2
    assert "data.images and data.masks go together" in capsys.readouterr().err
