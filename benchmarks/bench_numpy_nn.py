"""Speed of the NumPy library against PyTorch CPU eager, on the same work, in one run.

Two training steps (forward, backward, SGD-with-momentum update, float32):
- CNN: batch 64 of 1x28x28 -> conv 1->32 3x3 pad 1 -> ReLU -> maxpool 2 -> conv 32->64
  3x3 pad 1 -> ReLU -> maxpool 2 -> linear 3136->128 -> ReLU -> linear 128->10 -> CE.
- MLP: 784-256-128-10, batch 128.

Both libraries use 2 threads. Repeats are interleaved (NumPy, torch, NumPy, torch, ...)
so that machine noise hits both alike; we report medians and the ratio
NumPy time / PyTorch time (lower is better; 1.0 = parity). Achieved GFLOP/s counts
the multiply-adds of the step's matrix products (forward, grad of weights, grad of
inputs but the first layer's) and is put against the float32 GEMM peak measured
here, in the same run.

Run: ``make bench`` or ``python benchmarks/bench_numpy_nn.py [--repeats 30] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

THREADS = 2
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import dlcc.numpy_nn as nn  # noqa: E402
from dlcc.numpy_nn.losses import CrossEntropyLoss  # noqa: E402
from dlcc.numpy_nn.optim import SGD  # noqa: E402


def cnn_layers(lib):
    return [
        lib.Conv2d(1, 32, 3, padding=1),
        lib.ReLU(),
        lib.MaxPool2d(2),
        lib.Conv2d(32, 64, 3, padding=1),
        lib.ReLU(),
        lib.MaxPool2d(2),
        lib.Flatten(),
        lib.Linear(3136, 128),
        lib.ReLU(),
        lib.Linear(128, 10),
    ]


def mlp_layers(lib):
    return [
        lib.Flatten(),
        lib.Linear(784, 256),
        lib.ReLU(),
        lib.Linear(256, 128),
        lib.ReLU(),
        lib.Linear(128, 10),
    ]


# Multiply-add FLOPs per layer's forward pass. A training step does each layer's product
# three times (forward, grad of weight, grad of input), except the first layer's grad
# of input, which neither library computes.
CNN_LAYER_FLOPS = [
    2 * 64 * n for n in (28 * 28 * 32 * 9, 14 * 14 * 64 * 32 * 9, 3136 * 128, 128 * 10)
]
MLP_LAYER_FLOPS = [2 * 128 * n for n in (784 * 256, 256 * 128, 128 * 10)]
CNN_STEP_FLOPS = 3 * sum(CNN_LAYER_FLOPS) - CNN_LAYER_FLOPS[0]
MLP_STEP_FLOPS = 3 * sum(MLP_LAYER_FLOPS) - MLP_LAYER_FLOPS[0]


def make_steps(layers, batch):
    """A NumPy step and a torch step on identical weights and data."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)

    torch.manual_seed(0)
    torch_model = torch.nn.Sequential(*layers(torch.nn))
    np_model = nn.Sequential(*layers(nn))
    np_model.load_state_dict(torch_model.state_dict())
    # x does not require grad in torch, so neither library computes dLoss/dx.
    first_trainable = next(m for m in np_model if m.params)
    first_trainable.needs_input_grad = False
    torch_opt = torch.optim.SGD(torch_model.parameters(), lr=0.01, momentum=0.9)
    np_opt = SGD(np_model.parameters(), lr=0.01, momentum=0.9)
    np_loss = CrossEntropyLoss()
    x_torch, y_torch = torch.from_numpy(x), torch.from_numpy(y)

    def numpy_step():
        np_opt.zero_grad()
        loss = np_loss.forward(np_model.forward(x), y)
        np_model.backward(np_loss.backward())
        np_opt.step()
        return loss

    def torch_step():
        torch_opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(torch_model(x_torch), y_torch)
        loss.backward()
        torch_opt.step()
        return loss.item()

    # Same weights and data: the first losses must agree, or the comparison is void.
    first_np, first_torch = numpy_step(), torch_step()
    assert abs(first_np - first_torch) < 1e-4 * max(1.0, abs(first_torch)), (first_np, first_torch)
    return numpy_step, torch_step


def time_interleaved(steps: dict, repeats: int, inner: int) -> dict[str, list[float]]:
    """Alternate between the contenders, ``inner`` timed steps per turn.

    Both libraries keep thread pools whose idle threads spin for a while (OpenBLAS for
    NumPy, OpenMP for PyTorch). Switching libraries at once would time one library
    against the other's spinning threads, so each turn starts with a short pause and
    two untimed warm-up steps.
    """
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            time.sleep(0.05)
            step()
            step()
            started = time.perf_counter()
            for _ in range(inner):
                step()
            times[name].append((time.perf_counter() - started) / inner)
    return times


def gemm_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    b = a.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def run(repeats: int) -> dict:
    torch.set_num_threads(THREADS)
    results = {"peak_gemm_gflops_float32": None, "cases": {}}
    with threadpool_limits(THREADS):
        results["peak_gemm_gflops_float32"] = gemm_peak_gflops()
        for name, layers, batch, flops, inner in [
            ("cnn_step", cnn_layers, 64, CNN_STEP_FLOPS, 5),
            ("mlp_step", mlp_layers, 128, MLP_STEP_FLOPS, 50),
        ]:
            numpy_step, torch_step = make_steps(layers, batch)
            times = time_interleaved({"numpy": numpy_step, "torch": torch_step}, repeats, inner)
            numpy_ms = statistics.median(times["numpy"]) * 1e3
            torch_ms = statistics.median(times["torch"]) * 1e3
            results["cases"][name] = {
                "numpy_ms": numpy_ms,
                "torch_ms": torch_ms,
                "ratio_numpy_over_torch": numpy_ms / torch_ms,
                "numpy_gflops": flops / (numpy_ms / 1e3) / 1e9,
                "torch_gflops": flops / (torch_ms / 1e3) / 1e9,
            }
        results["peak_gemm_gflops_float32_after"] = gemm_peak_gflops()
    results["machine"] = {
        "cpu_count": os.cpu_count(),
        "threads": THREADS,
        "platform": platform.platform(),
        "numpy": np.__version__,
        "torch": torch.__version__,
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    results = run(args.repeats)
    peak = results["peak_gemm_gflops_float32"]
    print(f"float32 GEMM peak here: {peak:.0f} GFLOP/s ({THREADS} threads)")
    header = ["numpy ms", "torch ms", "ratio", "numpy GF/s", "% peak"]
    print(f"{'case':10s} " + " ".join(f"{h:>10s}" for h in header))
    for name, case in results["cases"].items():
        print(
            f"{name:10s} {case['numpy_ms']:10.2f} {case['torch_ms']:10.2f} "
            f"{case['ratio_numpy_over_torch']:10.2f} {case['numpy_gflops']:10.1f} "
            f"{100 * case['numpy_gflops'] / peak:9.0f}%"
        )
    print("ratio = NumPy time / PyTorch time, median of interleaved repeats (lower is better)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
