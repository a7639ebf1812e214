"""Overhead of dlcc's training loop, against a minimal hand-written loop and Lightning.

The same model (SmallCNN, MNIST-sized), the same data (the first N MNIST training images
when present, else random MNIST-shaped tensors, said in the output), the same optimiser
(AdamW, constant lr) and batch size, in the same process. The three contenders take
turns, round after round, so a slow phase of this noisy machine hits them all alike:

  minimal   for x, y in batches: zero_grad, forward, cross-entropy, backward, step
  dlcc      dlcc.training.loop.train_one_epoch (the task, NaN check, metrics, accumulation)
  lightning lightning.Trainer(max_epochs=1).fit on a LightningModule with the same step

Reported: images per second (median over rounds) and each ratio to the minimal loop.
With --ddp, also the images per second of `dlcc train` under torchrun with 2 processes
vs 1 process (CPU, gloo), from the runs' own history.json.

    python benchmarks/bench_training.py --json benchmarks/results/training.json [--ddp]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dlcc.models import build_model
from dlcc.runs import BestTracker, History
from dlcc.training.config import config_from_dict
from dlcc.training.data import ArrayDataset, ShardedShuffleSampler, make_loader
from dlcc.training.loop import EpochContext, train_one_epoch
from dlcc.training.state import RunState
from dlcc.training.tasks import ClassificationTask

WIDTHS = [32, 64, 128]


def load_images(count: int):
    """(images, labels, source): real MNIST if DLCC_DATA_DIR has it, else random tensors."""
    try:
        from dlcc.data import load_dataset

        data = load_dataset("mnist", val_size=0)
        return data.x_train[:count], data.y_train[:count], f"MNIST, first {count} images"
    except Exception:  # no data here: the overhead comparison does not depend on the pixels
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(count, 1, 28, 28, generator=generator).numpy()
        labels = torch.randint(0, 10, (count,), generator=generator).numpy()
        return images, labels, f"random MNIST-shaped tensors ({count})"


def fresh_model_and_optimizer(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("small_cnn", (1, 28, 28), 10, widths=WIDTHS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return model, optimizer


def run_minimal(loader) -> float:
    model, optimizer = fresh_model_and_optimizer()
    model.train()
    start = time.perf_counter()
    for images, labels in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def run_dlcc(loader, config) -> float:
    """The loop with its task indirection: ClassificationTask's loss and torchmetrics accuracy."""
    model, optimizer = fresh_model_and_optimizer()
    context = EpochContext(
        task=ClassificationTask(10, label_smoothing=config.train.label_smoothing),
        optimizer=optimizer,
        scheduler=None,
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        device=torch.device("cpu"),
        accumulate=config.train.accumulate,
    )
    state = RunState(History(["epoch"]), BestTracker("val_accuracy", "max"))
    start = time.perf_counter()
    train_one_epoch(model, loader, context, state)
    return time.perf_counter() - start


def make_lightning_runner():
    try:
        import lightning as L
    except ImportError:
        return None
    import logging

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)  # its banner and tips, every fit()

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model, self.optimizer = fresh_model_and_optimizer()

        def training_step(self, batch, batch_index):
            images, labels = batch
            return F.cross_entropy(self.model(images), labels)

        def configure_optimizers(self):
            return self.optimizer

    def run(loader) -> float:
        trainer = L.Trainer(
            max_epochs=1,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        module = Module()
        start = time.perf_counter()
        trainer.fit(module, loader)
        return time.perf_counter() - start

    return run


def bench_loops(images_count: int, batch_size: int, rounds: int) -> dict:
    images, labels, source = load_images(images_count)
    dataset = ArrayDataset(images, labels)
    loader = make_loader(dataset, batch_size, ShardedShuffleSampler(len(dataset), seed=0))
    config = config_from_dict({"train": {"progress": False}})
    contenders = {"minimal": run_minimal, "dlcc": lambda data: run_dlcc(data, config)}
    lightning_run = make_lightning_runner()
    if lightning_run is not None:
        contenders["lightning"] = lightning_run
    for run in contenders.values():  # warm-up turn: allocator, thread pools, imports
        run(loader)
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for round_index in range(rounds):
        for name, run in contenders.items():
            seconds[name].append(run(loader))
            time.sleep(0.05)
        print(
            f"round {round_index + 1}/{rounds}: "
            + ", ".join(f"{name} {values[-1]:.2f}s" for name, values in seconds.items()),
            flush=True,
        )
    images_per_second = {
        name: len(dataset) / statistics.median(values) for name, values in seconds.items()
    }
    ratios = {name: rate / images_per_second["minimal"] for name, rate in images_per_second.items()}
    return {
        "data": source,
        "images": len(dataset),
        "batch_size": batch_size,
        "rounds": rounds,
        "seconds": seconds,
        "images_per_second": images_per_second,
        "ratio_to_minimal": ratios,
        "lightning_installed": lightning_run is not None,
    }


def bench_ddp(epochs: int) -> dict:
    """`dlcc train` on 1 process vs torchrun with 2 processes; images/s of the last epochs."""
    recipe = {
        "data": {"dataset": "mnist", "batch_size": 128, "val_size": 0.9},
        "model": {"name": "small_cnn", "options": {"widths": WIDTHS}},
        "optim": {"name": "adamw", "lr": 0.003},
        "train": {"epochs": epochs, "progress": False},
    }
    folder = Path(tempfile.mkdtemp(prefix="dlcc-bench-ddp-"))
    try:
        recipe_path = folder / "recipe.yaml"
        import yaml

        recipe_path.write_text(yaml.safe_dump(recipe))
        torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
        results = {}
        for name, prefix, threads in [
            ("1 process x 2 threads", [sys.executable, "-m", "dlcc"], "2"),
            (
                "2 processes x 1 thread",
                [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "dlcc"],
                "1",
            ),
        ]:
            out = folder / name.replace(" ", "_")
            environment = dict(os.environ, OMP_NUM_THREADS=threads)
            subprocess.run(
                [*prefix, "train", str(recipe_path), "--out", str(out)],
                check=True,
                env=environment,
                stdout=subprocess.DEVNULL,
            )
            speeds = json.loads((out / "history.json").read_text())["columns"]["samples_per_second"]
            results[name] = statistics.median(speeds[1:] or speeds)
        names = list(results)
        return {
            "images_per_second": results,
            "speedup": results[names[1]] / results[names[0]],
            "train_images": "10% of MNIST train (5,500)",
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ddp", action="store_true", help="also time 2-process DDP on CPU")
    parser.add_argument("--ddp-epochs", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "loops": bench_loops(args.images, args.batch_size, args.rounds),
    }
    loops = result["loops"]
    print(f"\ndata: {loops['data']}, batch {loops['batch_size']}, {loops['rounds']} rounds")
    for name, rate in loops["images_per_second"].items():
        print(f"  {name:<10} {rate:8.0f} img/s   {loops['ratio_to_minimal'][name]:.3f}x minimal")
    if "lightning" in loops["images_per_second"]:
        ratio = loops["images_per_second"]["dlcc"] / loops["images_per_second"]["lightning"]
        loops["dlcc_over_lightning"] = ratio
        print(f"  dlcc / lightning: {ratio:.3f}x")
    if args.ddp:
        result["ddp"] = bench_ddp(args.ddp_epochs)
        for name, rate in result["ddp"]["images_per_second"].items():
            print(f"  DDP {name:<24} {rate:8.0f} img/s")
        print(f"  2-process speed-up: {result['ddp']['speedup']:.2f}x")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
