"""Speed and memory of ``dlcc segment predict``'s core, against whole-image prediction.

The core is what the command does for one image: `load_predictor` (read the run and its
checkpoint), read the image, `predict_tiled` (tile 256, overlap 64), threshold, draw the
overlay, write both PNGs. It is timed stage by stage on a 512 x 512 8-bit grey image
(median and range over --repeats), beside its peer in the same run: the same model on
the whole image in one forward pass (no tiles, no blending).

Memory: peak RSS of a fresh process running the core on a 4096 x 4096 image, read from
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it exits, beside a process that
runs it on a 16 x 16 image (the cost of Python, torch and the model alone).

    python benchmarks/bench_segment_predict.py [RUN_DIR] [--recipe isbi_unet] [--json PATH]

Without RUN_DIR, an untrained model of the recipe's architecture is saved as a run in a
temporary folder (recipe `isbi_unet` by default; when that recipe does not exist yet, the
`segmentation_smoke` model, and the output says so). Speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from dlcc.segmentation import outputs
from dlcc.segmentation.predictor import load_predictor

FALLBACK_RECIPE = "segmentation_smoke"
TILE, OVERLAP = 256, 64


def untrained_run(recipe: str, folder: Path, side: int = 512) -> tuple[Path, str]:
    """A run directory holding an untrained model of `recipe` (or the fallback): (dir, note)."""
    from dlcc.runs import RunDir, write_config
    from dlcc.training.checkpoint import save_checkpoint
    from dlcc.training.config import ConfigError, load_recipe
    from dlcc.training.setup import build_network
    from dlcc.training.tasks import build_task

    note = f"untrained {recipe} model"
    try:
        config = load_recipe(recipe)
    except ConfigError:
        config = load_recipe(FALLBACK_RECIPE)
        note = f"recipe {recipe!r} not found: untrained {FALLBACK_RECIPE} model instead"
    data = SimpleNamespace(
        classes=["membrane", "cell"], in_shape=(1, side, side), mean=[0.5], std=[0.2]
    )
    task = build_task(config, data)
    torch.manual_seed(0)
    model = build_network(config, data, task)
    run = RunDir(folder, "torch")
    write_config(run, config.task.name, config.to_dict())
    save_checkpoint(
        run.best,
        {
            "model_name": config.model.name,
            "model_options": dict(config.model.options),
            "task": config.task.name,
            "model": model.state_dict(),
            "data": {
                "mean": data.mean,
                "std": data.std,
                "classes": data.classes,
                "in_shape": list(data.in_shape),
            },
        },
    )
    return (
        folder,
        f"{note} ({config.model.name}, {sum(p.numel() for p in model.parameters())} parameters)",
    )


def write_test_image(path: Path, side: int, seed: int = 0) -> Path:
    """A side x side 8-bit grey PNG: smooth blobs plus noise (EM-like enough for timing)."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[:side, :side].astype(np.float32) / 64.0
    picture = 0.5 + 0.25 * np.sin(rows * 3.1) * np.cos(columns * 2.3)
    picture += rng.normal(0, 0.1, (side, side)).astype(np.float32)
    Image.fromarray((np.clip(picture, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


def core(run_dir: Path, image_path: Path, out: Path, device: str) -> dict[str, float]:
    """`dlcc segment predict` for one image, each stage timed (seconds)."""
    times = {}
    start = time.perf_counter()
    predictor = load_predictor(run_dir, device=device)
    times["load_predictor"] = time.perf_counter() - start
    start = time.perf_counter()
    pixels = outputs.read_image(image_path)
    times["read"] = time.perf_counter() - start
    start = time.perf_counter()
    probabilities = predictor.predict(pixels, tile=TILE, overlap=OVERLAP)
    if predictor.device.type == "cuda":
        torch.cuda.synchronize()
    times["predict_tiled"] = time.perf_counter() - start
    start = time.perf_counter()
    if probabilities.shape[0] == 1:
        mask = outputs.binary_mask(probabilities, 0.5)
    else:
        mask = outputs.label_map(probabilities)
    overlay = outputs.segmentation_overlay(pixels, mask, probabilities.shape[0] == 1)
    outputs.write_png(out / f"{image_path.stem}.png", mask)
    outputs.write_png(out / "overlays" / f"{image_path.stem}_overlay.png", overlay)
    times["write"] = time.perf_counter() - start
    times["total"] = sum(times.values())
    return times


def whole_image_seconds(run_dir: Path, image_path: Path, device: str) -> float:
    """The peer: the same model on the whole image in one pass (no tiles, no blending)."""
    predictor = load_predictor(run_dir, device=device)
    image = predictor.prepare(outputs.read_image(image_path))
    start = time.perf_counter()
    with torch.inference_mode():
        logits = predictor.model(torch.from_numpy(image)[None].to(predictor.device))
        torch.sigmoid(logits.float()).cpu().numpy()
    return time.perf_counter() - start


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def child_peak_rss_mb(run_dir: Path, side: int, folder: Path, device: str) -> float:
    """Peak RSS (MiB) of a fresh process running the core on a side x side image."""
    image = write_test_image(folder / f"big_{side}.png", side)
    command = [sys.executable, __file__, str(run_dir), "--child", str(image), "--device", device]
    subprocess.run([*command, "--out", str(folder / f"out_{side}")], check=True)
    # Linux reports KiB; the maximum over every child waited for so far, so run small first.
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", nargs="?", help="a trained segmentation run (optional)")
    parser.add_argument("--recipe", default="isbi_unet", help="without RUN_DIR: architecture")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big", type=int, default=4096, help="side of the memory test image")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # the measured process of child_peak_rss_mb
        core(Path(args.run_dir), args.child, args.out, args.device)
        return 0

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.run_dir:
            run_dir, model_note = Path(args.run_dir), f"trained run {args.run_dir}"
        else:
            run_dir, model_note = untrained_run(args.recipe, scratch / "run")
        image = write_test_image(scratch / "image_512.png", 512)
        core(run_dir, image, scratch / "warmup", args.device)  # first-call costs out
        whole_image_seconds(run_dir, image, args.device)
        stages: dict[str, list[float]] = {}
        whole: list[float] = []
        for repeat in range(args.repeats):  # interleaved: machine noise hits both alike
            for name, seconds in core(
                run_dir, image, scratch / f"out{repeat}", args.device
            ).items():
                stages.setdefault(name, []).append(seconds)
            whole.append(whole_image_seconds(run_dir, image, args.device))
        baseline_mb = child_peak_rss_mb(run_dir, 16, scratch, args.device)
        big_mb = child_peak_rss_mb(run_dir, args.big, scratch, args.device)
    tiled = statistics.median(stages["predict_tiled"])
    results = {
        "benchmark": "segment_predict",
        "model": model_note,
        "device": args.device,
        "tile": TILE,
        "overlap": OVERLAP,
        "repeats": args.repeats,
        "image_512_seconds": {name: summary(values) for name, values in stages.items()},
        "whole_image_512_seconds": summary(whole),
        "tiled_over_whole_image": round(tiled / statistics.median(whole), 2),
        "peak_rss_mb": {"image_16": round(baseline_mb, 1), f"image_{args.big}": round(big_mb, 1)},
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
        },
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
