"""Inference latency of an exported model: PyTorch eager, TorchScript and ONNX Runtime, in one run.

Four models, built from the shipped recipes' model options with random weights (speed does
not depend on the weights), each exported by `dlcc.export.exporter.export_model` to both
formats (so every file passed its parity check first):

    mnist_cnn        small_cnn   (N, 1, 28, 28) images   -> (N, 10)
    isbi_unet        unet        (N, 1, S, S) images     -> (N, 1, S, S)   S = --unet-size
    ecg_gru          beatnet gru (N, 1, 2000) signal     -> (N, 1, 2000)   8 s at 250 Hz
    shakespeare_gpt  char_gpt    (N, 128) token ids      -> (N, 128, 65)

For each model and batch size (--batches, default 1 and 64), the three runtimes are timed
on the same input, one call at a time, interleaved (eager, TorchScript, ONNX Runtime, eager,
...) so that machine noise hits all alike, after --warmup calls each. Every runtime uses
--threads threads (torch.set_num_threads; ONNX Runtime's intra-op threads). Reported: the
median, the quartiles and the range in milliseconds, and the ratios eager / TorchScript and
eager / ONNX Runtime (above 1: the exported file is faster). The raw runners are timed
(`ExportedModel.runner`), without `load_exported`'s input checks.

    python benchmarks/bench_export.py [--repeats 20] [--json benchmarks/results/export.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dlcc.export import load_exported
from dlcc.export.exporter import export_model
from dlcc.models import build_model
from dlcc.training.config import load_recipe

RESULTS = Path(__file__).with_name("results") / "export.json"


def models(unet_size: int) -> dict[str, tuple[str, tuple[int, ...], int, dict]]:
    """{label: (registry name, in_shape, outputs or vocabulary, the recipe's options)}."""
    options = {name: dict(load_recipe(name).model.options) for name in
               ("mnist_cnn", "isbi_unet", "ecg_gru", "shakespeare_gpt")}  # fmt: skip
    options["shakespeare_gpt"]["dropout"] = 0.0  # eval mode ignores it; the shape is the same
    return {
        "mnist_cnn": ("small_cnn", (1, 28, 28), 10, options["mnist_cnn"]),
        "isbi_unet": ("unet", (1, unet_size, unet_size), 1, options["isbi_unet"]),
        "ecg_gru": ("beatnet", (1, 2000), 1, options["ecg_gru"]),
        "shakespeare_gpt": ("char_gpt", (128,), 65, options["shakespeare_gpt"]),
    }


def sample(name: str, in_shape, classes: int, batch: int) -> np.ndarray:
    generator = np.random.default_rng(0)
    if name == "char_gpt":
        return generator.integers(0, classes, (batch, *in_shape)).astype(np.int64)
    return generator.standard_normal((batch, *in_shape)).astype(np.float32)


def runners(model, onnx_file: Path, torchscript_file: Path):
    """{runtime: call(array) -> array}: eager, TorchScript, ONNX Runtime."""
    session = load_exported(onnx_file).runner
    scripted = load_exported(torchscript_file).runner

    def eager(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    def torchscript(x):
        with torch.inference_mode():
            return scripted(torch.from_numpy(x)).numpy()

    def onnxruntime(x):
        return session.run(None, {"input": x})[0]

    return {"eager": eager, "torchscript": torchscript, "onnxruntime": onnxruntime}


def summary(seconds: list[float]) -> dict:
    ms = sorted(1000 * s for s in seconds)
    quartiles = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
    return {
        "median_ms": statistics.median(ms),
        "p25_ms": quartiles[0],
        "p75_ms": quartiles[2],
        "min_ms": ms[0],
        "max_ms": ms[-1],
        "repeats": len(ms),
    }


def time_one(calls: dict, x: np.ndarray, repeats: int, warmup: int) -> dict:
    reference = calls["eager"](x)
    differences = {}
    for name, call in calls.items():
        differences[name] = float(np.max(np.abs(call(x) - reference)))
        for _ in range(warmup - 1):
            call(x)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():  # interleaved: noise hits every runtime alike
            start = time.perf_counter()
            call(x)
            times[name].append(time.perf_counter() - start)
    result = {name: {**summary(times[name]), "max_abs_diff": differences[name]} for name in calls}
    eager = result["eager"]["median_ms"]
    result["ratios"] = {
        "eager_over_torchscript": eager / result["torchscript"]["median_ms"],
        "eager_over_onnxruntime": eager / result["onnxruntime"]["median_ms"],
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per runtime")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    parser.add_argument("--batches", default="1,64", help="comma-separated batch sizes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--unet-size", type=int, default=128, help="U-Net input side (px)")
    parser.add_argument("--models", default=None, help="comma-separated subset of the four")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write results")
    args = parser.parse_args(argv)

    import onnxruntime

    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    chosen = models(args.unet_size)
    if args.models:
        chosen = {label: chosen[label] for label in args.models.split(",")}
    results = {
        "benchmark": "export",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "threads": args.threads,
        },
        "settings": {
            "repeats": args.repeats,
            "warmup": args.warmup,
            "batches": batches,
            "unet_size": args.unet_size,
        },
        "models": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        for label, (name, in_shape, classes, options) in chosen.items():
            torch.manual_seed(0)
            model = build_model(name, in_shape, classes, **options).eval()
            names = [str(i) for i in range(classes)]
            files = {}
            for file_format in ("onnx", "torchscript"):
                files[file_format] = Path(folder) / f"{label}.{file_format}"
                export_model(model, name, in_shape, file_format, files[file_format],
                             classes=names, model_options=options)  # fmt: skip
            calls = runners(model, files["onnx"], files["torchscript"])
            per_batch = {}
            for batch in batches:
                x = sample(name, in_shape, classes, batch)
                per_batch[str(batch)] = row = time_one(calls, x, args.repeats, args.warmup)
                ratios = row["ratios"]
                print(
                    f"{label:16s} batch {batch:3d}: eager {row['eager']['median_ms']:8.2f} ms, "
                    f"torchscript {row['torchscript']['median_ms']:8.2f} ms "
                    f"(x{ratios['eager_over_torchscript']:.2f}), onnxruntime "
                    f"{row['onnxruntime']['median_ms']:8.2f} ms "
                    f"(x{ratios['eager_over_onnxruntime']:.2f})",
                    flush=True,
                )
            results["models"][label] = {
                "model": name, "in_shape": list(in_shape), "options": options,
                "batches": per_batch,
            }  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
