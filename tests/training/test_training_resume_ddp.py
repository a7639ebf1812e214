"""Real processes: a run killed with SIGKILL resumes to the same weights, and two DDP
processes (gloo, CPU) train to the same weights as one process on the same global batch,
for classification and segmentation. (test_training_resume_exact.py checks the best
checkpoint, early stopping and metrics.json after a resume.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
import torch
from training_helpers import SEGMENTATION, SPLITTABLE, make_image_masks, merged, write_recipe

from dlcc.training.checkpoint import load_checkpoint

QUIET = dict(stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)


def _weights(run_dir):
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(tmp_path):
    # A small CNN with BatchNorm, dropout and augmentation: every source of randomness.
    recipe = write_recipe(
        tmp_path,
        {
            "data": {
                "dataset": "digits",
                "batch_size": 32,
                "augment": [{"random_crop": {"padding": 1}}, "hflip"],
            },
            "model": {"name": "small_cnn", "options": {"widths": [8, 16], "dropout": 0.2}},
            "optim": {"name": "adamw", "lr": 0.01, "weight_decay": 0.0005},
            "schedule": {"name": "onecycle"},
            "train": {"epochs": 12, "deterministic": True, "threads": 1, "progress": False},
        },
    )
    command = [sys.executable, "-m", "dlcc", "train", str(recipe), "--no-progress", "--out"]
    subprocess.run([*command, str(tmp_path / "whole")], check=True, **QUIET)

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [*command, str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not (killed / "checkpoints" / "last.pt").exists() and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.005)
    finally:
        process.kill()  # SIGKILL: no cleanup handler runs
        process.wait()
    interrupted_after = load_checkpoint(killed / "checkpoints" / "last.pt")["epoch"]
    assert interrupted_after < 12 and not (killed / "metrics.json").exists()

    result = subprocess.run(
        [*command, str(killed)], check=True, text=True, capture_output=True, timeout=300
    )
    assert f"resuming {killed} after epoch" in result.stdout
    whole, resumed = _weights(tmp_path / "whole"), _weights(killed)
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), f"{key} differs after resume"


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_two_ddp_processes_equal_one_process_on_the_same_global_batch(task, tmp_path):
    if task == "classification":
        recipe = write_recipe(tmp_path, merged(SPLITTABLE, train={"epochs": 2}))
        metric = "accuracy"
    else:
        pairs = make_image_masks(tmp_path / "pairs")
        recipe = merged(SEGMENTATION, data={"path": str(pairs)}, train={"epochs": 2})
        recipe = write_recipe(tmp_path, recipe)
        metric = "dice"
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun is installed with torch"
    subprocess.run(
        [sys.executable, "-m", "dlcc", "train", str(recipe), "--out", str(tmp_path / "single")],
        check=True,
        **QUIET,
    )
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "dlcc",
            "train",
            str(recipe),
            "--out",
            str(tmp_path / "ddp"),
        ],
        env=environment,
        text=True,
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    single, ddp = _weights(tmp_path / "single"), _weights(tmp_path / "ddp")
    for key in single:
        torch.testing.assert_close(single[key], ddp[key], rtol=1e-5, atol=1e-6)
    # Only rank 0 wrote: one metrics file, and the DDP run's reduced metrics match.
    single_metrics = load_checkpoint(tmp_path / "single/checkpoints/last.pt")["history"]
    ddp_metrics = load_checkpoint(tmp_path / "ddp/checkpoints/last.pt")["history"]
    single_metrics, ddp_metrics = single_metrics["columns"], ddp_metrics["columns"]
    for column in (f"val_{metric}", f"train_{metric}", "val_loss"):
        assert ddp_metrics[column] == pytest.approx(single_metrics[column], rel=1e-5), column
    assert ddp_metrics["train_loss"] == pytest.approx(single_metrics["train_loss"], rel=1e-5)
