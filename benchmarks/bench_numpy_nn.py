"""Speed of the NumPy library against PyTorch CPU eager, on the same work, in one run.

Three training steps (forward, backward, optimizer update, float32):
- CNN: batch 64 of 1x28x28 -> conv 1->32 3x3 pad 1 -> maxpool 2 -> ReLU -> conv 32->64
  3x3 pad 1 -> maxpool 2 -> ReLU -> linear 3136->128 -> ReLU -> linear 128->10 -> CE;
  SGD with momentum.
- MLP: 784-256-128-10, batch 128; SGD with momentum.
- LSTM: batch 32 of sequences of 64 steps of 64 features -> LSTM 64->256 -> linear
  256->10 at every step -> CE over all steps; backpropagation through time; Adam.

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
from dlcc.numpy_nn.optim import SGD, Adam  # noqa: E402


def cnn_layers(lib):
    # Pool, then ReLU: the same function as ReLU then pool (max and max(., 0) commute), on
    # a quarter of the pixels. dlcc.numpy_nn.models.cnn builds it in this order too.
    return [
        lib.Conv2d(1, 32, 3, padding=1),
        lib.MaxPool2d(2),
        lib.ReLU(),
        lib.Conv2d(32, 64, 3, padding=1),
        lib.MaxPool2d(2),
        lib.ReLU(),
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
LSTM_SEQ_LEN, LSTM_BATCH, LSTM_INPUT, LSTM_HIDDEN, LSTM_CLASSES = 64, 32, 64, 256, 10
# Input projection, recurrent projection, head; the input projection has no grad of input.
LSTM_LAYER_FLOPS = [
    2 * LSTM_SEQ_LEN * LSTM_BATCH * n
    for n in (
        LSTM_INPUT * 4 * LSTM_HIDDEN,
        LSTM_HIDDEN * 4 * LSTM_HIDDEN,
        LSTM_HIDDEN * LSTM_CLASSES,
    )
]
LSTM_STEP_FLOPS = 3 * sum(LSTM_LAYER_FLOPS) - LSTM_LAYER_FLOPS[0]


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


def make_lstm_steps(batch=LSTM_BATCH):
    """An LSTM + per-step linear head training step (Adam) in both libraries, same weights."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((LSTM_SEQ_LEN, batch, LSTM_INPUT)).astype(np.float32)  # (T, N, F)
    y = rng.integers(0, LSTM_CLASSES, LSTM_SEQ_LEN * batch)  # a class per step and sequence

    torch.manual_seed(0)
    torch_lstm = torch.nn.LSTM(LSTM_INPUT, LSTM_HIDDEN)
    torch_head = torch.nn.Linear(LSTM_HIDDEN, LSTM_CLASSES)
    np_lstm = nn.LSTM(LSTM_INPUT, LSTM_HIDDEN)
    np_head = nn.Linear(LSTM_HIDDEN, LSTM_CLASSES)
    np_lstm.load_state_dict(torch_lstm.state_dict())
    np_head.load_state_dict(torch_head.state_dict())
    np_lstm.needs_input_grad = False  # x is data, as in torch
    torch_params = [*torch_lstm.parameters(), *torch_head.parameters()]
    torch_opt = torch.optim.Adam(torch_params, lr=1e-3)
    np_opt = Adam(np_lstm.parameters() + np_head.parameters(), lr=1e-3)
    np_loss = CrossEntropyLoss()
    x_torch, y_torch = torch.from_numpy(x), torch.from_numpy(y)

    def numpy_step():
        np_opt.zero_grad()
        output, _ = np_lstm.forward(x)  # (T, N, H)
        logits = np_head.forward(output).reshape(-1, LSTM_CLASSES)  # (T*N, classes)
        loss = np_loss.forward(logits, y)
        grad_logits = np_loss.backward().reshape(LSTM_SEQ_LEN, batch, LSTM_CLASSES)
        np_lstm.backward(np_head.backward(grad_logits))
        np_opt.step()
        return loss

    def torch_step():
        torch_opt.zero_grad()
        output, _ = torch_lstm(x_torch)
        logits = torch_head(output).reshape(-1, LSTM_CLASSES)
        loss = torch.nn.functional.cross_entropy(logits, y_torch)
        loss.backward()
        torch_opt.step()
        return loss.item()

    # The first two losses must agree: the second one checks the gradients and Adam's step.
    for _ in range(2):
        first_np, first_torch = numpy_step(), torch_step()
        assert abs(first_np - first_torch) < 1e-4 * max(1.0, abs(first_torch)), (
            first_np,
            first_torch,
        )
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
        for name, make, flops, inner in [
            ("cnn_step", lambda: make_steps(cnn_layers, 64), CNN_STEP_FLOPS, 5),
            ("mlp_step", lambda: make_steps(mlp_layers, 128), MLP_STEP_FLOPS, 50),
            ("lstm_step", make_lstm_steps, LSTM_STEP_FLOPS, 2),
        ]:
            numpy_step, torch_step = make()
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
