"""The training loop: learning, debugging switches, checkpoints, resume, divergence."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import dlcc.errors
import dlcc.numpy_nn as nn
from dlcc.errors import DlccError
from dlcc.numpy_nn import models
from dlcc.numpy_nn.train import (
    BEST_CHECKPOINT,
    HISTORY_COLUMNS,
    LAST_CHECKPOINT,
    TrainingDiverged,
    evaluate,
    fit,
    l2_penalty_parameters,
    load_checkpoint,
)
from dlcc.runs.history import History


def blobs(n=240, seed=0):
    """Three Gaussian blobs in 2-D, shaped as (N, 1, 1, 2) "images"."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[0, 3], [3, -2], [-3, -2]], dtype=np.float32)
    x = centres[y] + rng.standard_normal((n, 2)).astype(np.float32)
    return x.reshape(n, 1, 1, 2), y


def small_mlp(seed=0, dropout=0.0):
    nn.manual_seed(seed)
    return models.mlp((1, 1, 2), 3, hidden=(16,), dropout=dropout)


def quiet(**kwargs):
    return dict(progress=False, log=lambda message: None, **kwargs)


def test_fit_learns_separable_blobs_and_records_history():
    x, y = blobs()
    model = small_mlp()
    optimizer = nn.Adam(model.parameters(), lr=0.05)
    history = fit(
        model, nn.CrossEntropyLoss(), optimizer, (x, y), blobs(90, seed=1), epochs=8, **quiet()
    )
    assert history.epoch == list(range(1, 9))
    assert history.train_loss[-1] < history.train_loss[0] * 0.5
    assert history.val_accuracy[-1] > 0.9
    assert len(history.val_loss) == len(history.lr) == len(history.seconds) == 8
    result = evaluate(model, nn.CrossEntropyLoss(), *blobs(90, seed=2))
    assert result.accuracy > 0.9 and result.predictions.shape == (90,)


def test_overfit_one_batch_drives_the_loss_to_zero():
    """The course's first debugging technique: a correct model memorises one batch."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, 10, 16)  # random labels: only memorisation can fit them
    nn.manual_seed(0)
    model = models.cnn((1, 4, 4), 10, channels=(8,), hidden=32)
    optimizer = nn.Adam(model.parameters(), lr=0.01)
    history = fit(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        (np.concatenate([x, x]), np.concatenate([y, y])),
        epochs=150,
        batch_size=16,
        overfit_one_batch=True,
        **quiet(),
    )
    assert history.train_accuracy[-1] == 1.0
    assert history.train_loss[-1] < 0.05


def test_a_broken_backward_fails_to_overfit_one_batch():
    """...and the switch exposes a model whose gradients are wrong."""

    class WrongReLU(nn.ReLU):
        def backward(self, grad_out):
            return -super().backward(grad_out)  # sign error

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 1, 8)).astype(np.float32)
    y = rng.integers(0, 4, 16)
    nn.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 32), WrongReLU(), nn.Linear(32, 4))
    history = fit(
        model,
        nn.CrossEntropyLoss(),
        nn.Adam(model.parameters(), lr=0.01),
        (x, y),
        epochs=150,
        batch_size=16,
        overfit_one_batch=True,
        **quiet(),
    )
    assert history.train_accuracy[-1] < 1.0


def test_l2_adds_l2_times_weight_to_weight_gradients_only():
    x, y = blobs(32)
    losses = {}
    for l2 in (0.0, 0.5):
        model = small_mlp()
        optimizer = nn.SGD(model.parameters(), lr=0.0)  # lr 0: grads stay for inspection
        # zero_grad happens at the start of each step, so after fit the grads of the
        # last batch (all 32 samples) are still there.
        fit(
            model,
            nn.CrossEntropyLoss(),
            optimizer,
            (x, y),
            epochs=1,
            batch_size=32,
            l2=l2,
            **quiet(),
        )
        losses[l2] = {name: grad.copy() for name, _, grad in model.named_parameters()}
        weights = {name: param for name, param, _ in model.named_parameters()}
    for name in losses[0.0]:
        expected = losses[0.0][name] + (0.5 * weights[name] if name.endswith("weight") else 0)
        np.testing.assert_allclose(losses[0.5][name], expected, rtol=1e-5, atol=1e-6)
    assert [p.ndim for p, _ in l2_penalty_parameters(small_mlp())] == [2, 2]


def test_early_stopping_stops_and_restores_the_best_weights(tmp_path):
    x, y = blobs(120)
    x_val, y_val = blobs(60, seed=5)
    y_val = (y_val + 1) % 3  # wrong labels: the val loss rises as the model learns
    for checkpoint_dir in (tmp_path, None):  # best weights from best.npz, or kept in memory
        model = small_mlp()
        history = fit(
            model,
            nn.CrossEntropyLoss(),
            nn.Adam(model.parameters(), lr=0.05),
            (x, y),
            (x_val, y_val),
            epochs=30,
            early_stopping_patience=2,
            checkpoint_dir=checkpoint_dir,
            **quiet(),
        )
        assert history.stopped_early
        assert len(history.epoch) == history.best_epoch + 2
        restored = evaluate(model, nn.CrossEntropyLoss(), x_val, y_val).loss
        assert restored == pytest.approx(min(history.val_loss), rel=1e-5)


def test_fit_returns_the_runs_history_with_declared_columns():
    x, y = blobs(64)
    model = small_mlp()
    history = fit(
        model, nn.CrossEntropyLoss(), nn.Adam(model.parameters(), lr=0.05), (x, y), epochs=3,
        **quiet(),
    )  # fmt: skip
    assert isinstance(history, History) and list(history.columns) == HISTORY_COLUMNS
    # No validation split: its values are None, and the latest epoch is the best one.
    assert history.val_loss == [None] * 3 and history.val_accuracy == [None] * 3
    assert history.best_epoch == 3 and not history.stopped_early
    assert json.loads(json.dumps(history.to_dict()))["columns"]["val_loss"] == [None] * 3


def test_best_is_the_declared_monitor_and_mode(tmp_path):
    x, y = blobs(120)
    for monitor, mode, pick in [
        ("val_loss", "min", min),
        ("val_accuracy", "max", max),
        ("train_loss", "min", min),
    ]:
        model = small_mlp()
        history = fit(
            model,
            nn.CrossEntropyLoss(),
            nn.Adam(model.parameters(), lr=0.02),
            (x, y),
            blobs(40, seed=6),
            epochs=6,
            monitor=monitor,
            mode=mode,
            checkpoint_dir=tmp_path / monitor,
            **quiet(),
        )
        values = history[monitor]
        assert history.best_epoch == values.index(pick(values)) + 1, monitor
        with np.load(tmp_path / monitor / BEST_CHECKPOINT) as best:
            assert int(best["meta.epoch"]) == history.best_epoch
    with pytest.raises(ValueError, match="monitor must be one of"):
        fit(small_mlp(), nn.CrossEntropyLoss(), nn.SGD(small_mlp().parameters(), lr=0.1),
            (x, y), epochs=1, monitor="lr", **quiet())  # fmt: skip


def test_training_diverged_is_the_one_class_in_dlcc_errors():
    assert TrainingDiverged is dlcc.errors.TrainingDiverged
    assert issubclass(TrainingDiverged, DlccError) and TrainingDiverged.__doc__


def run_training(checkpoint_dir, epochs, resume=False, patience=None, log=None):
    x, y = blobs(200)
    model = small_mlp(dropout=0.3)  # dropout: the library generator must be restored too
    optimizer = nn.SGD(model.parameters(), lr=0.05, momentum=0.9)
    schedule = nn.OneCycleLR(optimizer, max_lr=0.05, total_steps=6 * 7)  # 7 batches/epoch
    x_val, y_val = blobs(50, seed=3)
    if patience is not None:  # wrong labels: the best epoch comes early, then no better
        y_val = (y_val + 1) % 3
    history = fit(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        (x, y),
        (x_val, y_val),
        epochs=epochs,
        batch_size=32,
        scheduler=schedule,
        early_stopping_patience=patience,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        seed=7,
        **quiet(),
    )
    return model, history


def test_resume_after_interruption_ends_with_identical_weights(tmp_path):
    uninterrupted, full_history = run_training(tmp_path / "a", epochs=6)
    run_training(tmp_path / "b", epochs=3)  # "killed" after epoch 3
    resumed, resumed_history = run_training(tmp_path / "b", epochs=6, resume=True)
    for key, value in uninterrupted.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value, err_msg=key)
    assert resumed_history.epoch == full_history.epoch
    assert resumed_history.train_loss == full_history.train_loss
    assert resumed_history.val_loss == full_history.val_loss


def tracker(path):
    with np.load(path) as checkpoint:
        return json.loads(str(checkpoint["meta.best_tracker"]))


def test_resume_restores_the_best_epoch_and_early_stopping_state(tmp_path):
    """Interrupted after its best epoch, while patience is counting: the resumed run
    keeps the same best weights, best epoch and best value, and stops at the same epoch.
    A resume that forgot the best value would call the next epoch the best."""
    whole_model, whole = run_training(tmp_path / "a", epochs=30, patience=3)
    assert whole.stopped_early and 1 <= whole.best_epoch < len(whole) - 1
    interrupted_after = whole.best_epoch + 1  # one epoch without improvement
    # Same settings (epochs=30, so the same schedule), interrupted as a crash would.
    _, partial = run_training(tmp_path / "b", epochs=interrupted_after, patience=3)
    assert tracker(tmp_path / "b" / LAST_CHECKPOINT)["epochs_without_improvement"] == 1
    assert not partial.stopped_early
    resumed_model, resumed = run_training(tmp_path / "b", epochs=30, patience=3, resume=True)

    assert resumed.epoch == whole.epoch and resumed.val_loss == whole.val_loss
    assert resumed.best_epoch == whole.best_epoch and resumed.stopped_early
    assert tracker(tmp_path / "b" / LAST_CHECKPOINT) == tracker(tmp_path / "a" / LAST_CHECKPOINT)
    with (
        np.load(tmp_path / "a" / BEST_CHECKPOINT) as a,
        np.load(tmp_path / "b" / BEST_CHECKPOINT) as b,
    ):
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(b[key], a[key], err_msg=key)
    for key, value in whole_model.state_dict().items():  # both restored the best weights
        np.testing.assert_array_equal(resumed_model.state_dict()[key], value, err_msg=key)


def test_checkpoints_are_written_atomically_and_load_back(tmp_path):
    model, _ = run_training(tmp_path, epochs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz", "last.npz"]
    other = small_mlp(seed=99, dropout=0.3)
    state = load_checkpoint(tmp_path / LAST_CHECKPOINT, other)
    assert state["history"].epoch == [1, 2]
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[key], value)


def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    x, y = blobs(64)
    model = small_mlp()
    fit(model, nn.CrossEntropyLoss(), nn.SGD(model.parameters(), lr=0.01), (x, y), epochs=1,
        checkpoint_dir=tmp_path, **quiet())  # fmt: skip
    good = (tmp_path / LAST_CHECKPOINT).read_bytes()
    x_overflowing = np.full_like(x, 3e38)  # float32 overflow: the logits become inf/nan
    with pytest.raises(
        TrainingDiverged, match=r"loss became (nan|inf) at epoch 2, step 1.*last\.npz"
    ):
        fit(
            model,
            nn.CrossEntropyLoss(),
            nn.SGD(model.parameters(), lr=0.01),
            (x_overflowing, y),
            epochs=3,
            checkpoint_dir=tmp_path,
            resume=True,
            **quiet(),
        )
    assert (tmp_path / LAST_CHECKPOINT).read_bytes() == good


def test_corrupt_or_foreign_checkpoints_give_clear_errors(tmp_path):
    model, _ = run_training(tmp_path, epochs=1)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes((tmp_path / LAST_CHECKPOINT).read_bytes()[:200])
    with pytest.raises(DlccError, match=r"truncated\.npz is unreadable"):
        load_checkpoint(truncated, model)
    with pytest.raises(DlccError, match="does not fit this model"):
        load_checkpoint(tmp_path / LAST_CHECKPOINT, models.mlp((1, 1, 2), 3, hidden=(8,)))
    with pytest.raises(DlccError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.npz", model)
    # A checkpoint must never need pickle: object arrays are refused.
    with zipfile.ZipFile(tmp_path / LAST_CHECKPOINT) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    json.loads(str(np.load(tmp_path / LAST_CHECKPOINT)["meta.history"]))


def test_fit_rejects_mismatched_data():
    model = small_mlp()
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        x, y = np.zeros((10, 1, 1, 2), np.float32), np.zeros(9, int)
        fit(model, nn.CrossEntropyLoss(), nn.SGD(model.parameters(), lr=0.1), (x, y), epochs=1)


BLOCKED = ["tqdm", "yaml", "matplotlib", "torch", "scipy", "sklearn", "threadpoolctl"]


def test_the_library_imports_and_trains_with_numpy_alone():
    """`dlcc.numpy_nn` needs NumPy only: with tqdm, PyYAML, matplotlib, torch, SciPy,
    scikit-learn and threadpoolctl made unimportable, it imports and trains a model."""
    code = textwrap.dedent(
        f"""
        import sys
        BLOCKED = {BLOCKED!r}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is blocked by the test")
                return None

        sys.meta_path.insert(0, Block())
        for name in list(sys.modules):
            if name.split(".")[0] in BLOCKED:
                del sys.modules[name]

        import numpy as np
        import dlcc.numpy_nn as nn
        from dlcc.numpy_nn import models

        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, 64)
        x = (rng.standard_normal((64, 1, 1, 4)) + 2 * y[:, None, None, None]).astype("float32")
        nn.manual_seed(0)
        model = models.mlp((1, 1, 4), 2, hidden=(8,))
        history = nn.fit(model, nn.CrossEntropyLoss(), nn.Adam(model.parameters(), lr=0.05),
                         (x, y), (x, y), epochs=3, batch_size=16, progress=True,
                         log=lambda message: None)
        assert len(history) == 3 and history.best_epoch is not None
        loaded = sorted(n for n in sys.modules if n.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("trained", history.val_accuracy[-1])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "trained" in result.stdout
