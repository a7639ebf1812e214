"""Devices, smoke tests (a matmul and a few training steps on each) and GEMM speed."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

from dlcc.doctor.gpu import NO_GPU_HINT
from dlcc.doctor.machine import _pip_install
from dlcc.doctor.report import Check
from dlcc.errors import DlccError

# GEMM timing: square float32 matrices, repeated for about GEMM_SECONDS per device.
GEMM_SECONDS = 0.3
CPU_GEMM_SIZE = 1024  # 2.1 GFLOP a product: ~10-100 ms on a laptop or server CPU
ACCELERATOR_GEMM_SIZE = 4096  # 137 GFLOP a product: a few ms on a data-centre GPU

DEVICE_PATTERN = re.compile(r"cpu|mps|cuda(:\d+)?")


def device_name(text: str) -> str:
    """`text` if it names a device kind dlcc knows (cpu, cuda, cuda:N, mps); DlccError else."""
    name = text.strip().lower()
    if not DEVICE_PATTERN.fullmatch(name):
        raise DlccError(f"unknown device {text!r}: expected cpu, cuda, cuda:N or mps")
    return name


def available_devices(torch: Any) -> list[str]:
    """Every device torch can use here: cpu, each cuda:N, and mps."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def resolve_devices(torch: Any, requested: list[str] | None) -> tuple[list[str], list[Check]]:
    """(devices to test, warn checks for requested devices that are not here).

    None means every available device; ``cuda`` means every GPU. A requested device that is
    absent is a warn, like no GPU at all.
    """
    available = available_devices(torch)
    if requested is None:
        return available, []
    devices: list[str] = []
    absent: list[Check] = []
    for name in map(device_name, requested):
        matches = [d for d in available if d == name or (name == "cuda" and d.startswith("cuda:"))]
        if not matches:
            hint = NO_GPU_HINT if name.startswith("cuda") else "see the `mps` line above"
            shown = ", ".join(available)
            absent.append(Check(f"device {name}", "warn", f"requested, not here ({shown})", hint))
        devices += [d for d in matches if d not in devices]
    return devices, absent


def matmul_on_device(torch: Any, device: str, left: Any, right: Any) -> Any:
    """``left @ right`` (NumPy float32 arrays) computed by torch on `device`, as NumPy."""
    product = torch.from_numpy(left).to(device) @ torch.from_numpy(right).to(device)
    return product.cpu().numpy()


def _device_fix(device: str) -> str:
    if device == "cpu":
        return (
            f"torch is broken on the CPU: reinstall it ({_pip_install('--force-reinstall torch')})"
        )
    if device == "mps":
        return (
            "the Apple GPU gives wrong results or crashes: update macOS and torch; meanwhile "
            "train on the CPU with `dlcc train ... --device cpu`"
        )
    return (
        f"{device} gives wrong results or crashes: update the NVIDIA driver and reinstall torch; "
        "meanwhile train on the CPU with `dlcc train ... --device cpu`, or hide the GPU with "
        "`export CUDA_VISIBLE_DEVICES=`"
    )


def smoke_matmul_check(torch: Any, device: str) -> Check:
    """A (64, 48) @ (48, 32) float32 product on `device` against NumPy in float64."""
    import numpy as np

    name = f"matmul {device}"
    rng = np.random.default_rng(0)
    left = rng.standard_normal((64, 48), dtype=np.float32)
    right = rng.standard_normal((48, 32), dtype=np.float32)
    expected = left.astype(np.float64) @ right.astype(np.float64)  # (64, 32)
    got = np.asarray(matmul_on_device(torch, device, left, right))
    if got.shape != expected.shape:
        value = f"product has shape {got.shape}, expected {expected.shape}"
        return Check(name, "fail", value, _device_fix(device))
    error = float(np.max(np.abs(got - expected)))
    # Entries are sums of 48 unit-variance products (std ~7); float32 errs by ~1e-6, TF32 by
    # ~1e-3. A broken kernel errs by the size of the entries.
    tolerance = 1e-2 * math.sqrt(left.shape[1])
    value = f"(64, 48) @ (48, 32) float32 vs NumPy: max abs error {error:.1e}"
    details = {"max_abs_error": error, "tolerance": tolerance}
    if not math.isfinite(error) or error > tolerance:
        value += f" > {tolerance:.1e}"
        return Check(name, "fail", value, _device_fix(device), details=details)
    return Check(name, "ok", value, details=details)


def train_steps_on_device(
    torch: Any, device: str, steps: int = 30, learning_rate: float = 0.5
) -> list[float]:
    """Training losses of a 8-16-2 MLP on a separable toy problem, one per SGD step.

    The data and weights are drawn under a forked RNG, so the caller's random state is
    untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        inputs = torch.randn(256, 8)  # (N, 8)
        labels = (inputs[:, 0] + inputs[:, 1] > 0).long()  # (N,), separable by a plane
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    model.to(device)
    inputs, labels = inputs.to(device), labels.to(device)
    losses = []
    for _ in range(steps):
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        loss.backward()
        # Plain SGD by hand: constructing a torch.optim optimiser first imports TorchDynamo,
        # over a second of start-up that this check does not need.
        with torch.no_grad():
            for parameter in model.parameters():
                parameter -= learning_rate * parameter.grad
        losses.append(float(loss.item()))
    return losses


def smoke_train_check(torch: Any, device: str) -> Check:
    """The loss of `train_steps_on_device` must be finite and fall by at least a third."""
    name = f"train {device}"
    losses = train_steps_on_device(torch, device)
    first, last = losses[0], losses[-1]
    value = f"loss {first:.3f} -> {last:.3f} in {len(losses)} SGD steps (MLP 8-16-2)"
    details = {"first_loss": first, "last_loss": last, "steps": len(losses)}
    if not all(math.isfinite(loss) for loss in losses) or not last < 2 / 3 * first:
        value += ": did not decrease"
        return Check(name, "fail", value, _device_fix(device), details=details)
    return Check(name, "ok", value, details=details)


def measure_gemm(
    multiply: Callable[[], Any],
    size: int,
    seconds: float,
    synchronize: Callable[[], Any] = lambda: None,
) -> tuple[float, int]:
    """(GFLOP/s, repeats) of `multiply`, a size x size x size matrix product.

    One warm-up product (allocations, thread pools, kernel selection), one timed product to
    choose the number of repeats that fills `seconds`, then the timed repeats. `synchronize`
    waits for queued GPU work, so the clock measures the work and not its launch.
    """
    multiply()
    synchronize()
    start = time.perf_counter()
    multiply()
    synchronize()
    single = time.perf_counter() - start
    repeats = max(1, min(1000, int(seconds / max(single, 1e-9))))
    start = time.perf_counter()
    for _ in range(repeats):
        multiply()
    synchronize()
    elapsed = time.perf_counter() - start
    return 2 * size**3 * repeats / elapsed / 1e9, repeats


def _gemm_check(name: str, gflops: float, size: int, repeats: int, note: str = "") -> Check:
    value = f"{gflops:,.1f} GFLOP/s (float32 {size}x{size}, {repeats} products{note})"
    details = {"gflops": round(gflops, 2), "size": size, "repeats": repeats}
    return Check(name, "ok", value, section="speed", details=details)


def numpy_gemm_check() -> Check:
    import numpy as np

    size = CPU_GEMM_SIZE
    rng = np.random.default_rng(0)
    left, right = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    out = np.empty((size, size), dtype=np.float32)
    gflops, repeats = measure_gemm(lambda: np.matmul(left, right, out=out), size, GEMM_SECONDS)
    return _gemm_check("gemm numpy cpu", gflops, size, repeats)


def torch_gemm_check(torch: Any, device: str) -> Check:
    size = CPU_GEMM_SIZE if device == "cpu" else ACCELERATOR_GEMM_SIZE
    generator = torch.Generator().manual_seed(0)
    left, right = (torch.randn(size, size, generator=generator).to(device) for _ in range(2))
    out = torch.empty(size, size, device=device)
    synchronize = lambda: None  # noqa: E731
    note = ""
    if device.startswith("cuda"):
        synchronize = lambda: torch.cuda.synchronize(device)  # noqa: E731
        if torch.backends.cuda.matmul.allow_tf32:
            note = ", TF32 allowed"
    elif device == "mps":
        synchronize = torch.mps.synchronize
    multiply = lambda: torch.matmul(left, right, out=out)  # noqa: E731
    gflops, repeats = measure_gemm(multiply, size, GEMM_SECONDS, synchronize)
    return _gemm_check(f"gemm torch {device}", gflops, size, repeats, note)
