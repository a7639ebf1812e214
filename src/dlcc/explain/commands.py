"""``dlcc explain RUN_DIR IMAGE... --method saliency --out DIR``: what the network looks at.

Reads and checks everything first (the method, the run and its checkpoint, every image),
computes every map, then writes, each file all-or-nothing:
  DIR/<image>_<method>.png  the image (as the model saw it) under the map, coloured
                            blue (none) to red (the most)
  DIR/<image>_<method>.npy  the map itself, (H, W) float32, at the model's input size
  DIR/explain_<method>.json per image: the target explained, the prediction, the file
Classification runs explain a class's logit (--target K, default the predicted class);
segmentation runs the summed logit of a class over the pixels predicted as it (default
class 1 for a binary model), or over --box row0,col0,row1,col1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dlcc.cli_options import add_device_argument

METHOD_NAMES = ("saliency", "smoothgrad", "gradcam", "occlusion")
IMAGE_TASKS = ("classification", "segmentation", "detection")
MAX_PIXELS = 2048 * 2048  # whole-image gradients: crop larger images first


def register(commands) -> None:
    """Add ``dlcc explain`` to the top-level sub-parsers."""
    parser = commands.add_parser(
        "explain",
        help="saliency, SmoothGrad, Grad-CAM or occlusion maps of a trained run on images",
        description=__doc__.split("\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", help="the --out directory of `dlcc train`")
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--out", required=True, help="the folder to write into (created)")
    parser.add_argument(
        "--method", default="saliency", help=f"one of {', '.join(METHOD_NAMES)} (saliency)"
    )
    parser.add_argument("--target", type=int, default=None, help="the class to explain")
    parser.add_argument(
        "--box", default=None, help="segmentation: the region row0,col0,row1,col1 (half-open)"
    )
    parser.add_argument("--layer", default=None, help="gradcam: the layer (default: last conv)")
    parser.add_argument("--samples", type=int, default=25, help="smoothgrad: noisy copies (25)")
    parser.add_argument(
        "--noise", type=float, default=0.15, help="smoothgrad: noise sd / value range (0.15)"
    )
    parser.add_argument("--patch", type=int, default=None, help="occlusion: patch side")
    parser.add_argument("--stride", type=int, default=None, help="occlusion: patch step")
    parser.add_argument("--seed", type=int, default=0, help="smoothgrad's noise")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_device_argument(parser, default="auto")
    parser.set_defaults(handler=explain_command)


def _parse_box(text: str | None) -> tuple[int, int, int, int] | None:
    from dlcc.explain.methods import ExplainError

    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise ExplainError(
            f"--box: expected four whole numbers row0,col0,row1,col1, received {text!r}"
        )
    return values


def _method_options(args: argparse.Namespace) -> dict:
    """The options of the chosen method, from the flags."""
    import torch

    if args.method == "smoothgrad":
        generator = torch.Generator().manual_seed(args.seed)
        return {"samples": args.samples, "noise": args.noise, "generator": generator}
    if args.method == "gradcam":
        return {"layer": args.layer}
    if args.method == "occlusion":
        return {"patch": args.patch, "stride": args.stride}
    return {}


def _load_run(args: argparse.Namespace):
    """(predictor, task, in_shape or None): a torch image run, one-line errors otherwise."""
    from dlcc.explain.methods import ExplainError
    from dlcc.runs import read_run
    from dlcc.segmentation.predictor import load_predictor
    from dlcc.training.checkpoint import load_checkpoint

    saved = read_run(args.run_dir)
    if saved.kind != "torch":
        raise ExplainError(
            f"{args.run_dir} is a {saved.kind} run; `dlcc explain` needs a run of `dlcc train`"
        )
    if saved.task not in IMAGE_TASKS:
        raise ExplainError(
            f"{args.run_dir} is a {saved.task} run; `dlcc explain` needs an image model "
            f"({', '.join(IMAGE_TASKS)})"
        )
    predictor = load_predictor(args.run_dir, args.checkpoint, args.device)
    summary = load_checkpoint(predictor.checkpoint).get("data") or {}
    in_shape = summary.get("in_shape")
    return predictor, saved.task, in_shape


def compute_maps(args: argparse.Namespace) -> tuple[Path, list[dict]]:
    """Everything `dlcc explain` computes, before anything is written: the out folder and,
    per image, {"path", "picture" (H', W', 3) uint8, "record" (for explain.json)}."""
    import torch

    from dlcc.explain.methods import ExplainError, explain
    from dlcc.explain.overlay import heatmap_overlay, resize, standardise, unit_pixels
    from dlcc.explain.targets import ClassScore, RegionScore, resolve_target
    from dlcc.segmentation.outputs import check_output_folder, collect_inputs, read_image

    if args.method not in METHOD_NAMES:
        from dlcc.suggest import did_you_mean

        raise ExplainError(
            f"--method: expected one of {', '.join(METHOD_NAMES)}, received "
            f"{args.method!r}{did_you_mean(args.method, METHOD_NAMES)}"
        )
    box = _parse_box(args.box)
    out = check_output_folder(args.out)
    paths = collect_inputs(args.images)
    predictor, task, in_shape = _load_run(args)
    if box is not None and task == "classification":
        raise ExplainError("--box is for segmentation runs; a classifier answers per image")
    images = []
    for path in paths:  # read and check every image before computing anything
        pixels, note = unit_pixels(read_image(path), predictor.in_channels, str(path))
        if task == "classification" and in_shape is not None:
            size = (int(in_shape[1]), int(in_shape[2]))  # (H, W) the classifier trained on
            if pixels.shape[:2] != size:
                print(
                    f"{path}: resized from {pixels.shape[0]}x{pixels.shape[1]} to the training "
                    f"size {size[0]}x{size[1]}"
                )
                pixels = resize(pixels, *size)
        elif pixels.shape[0] * pixels.shape[1] > MAX_PIXELS:
            raise ExplainError(
                f"{path}: {pixels.shape[1]}x{pixels.shape[0]} pixels is too large to explain "
                f"whole (at most {MAX_PIXELS} pixels); crop the region of interest first"
            )
        if note:
            print(note)
        images.append((path, pixels))
    results = []
    for path, pixels in images:
        inputs = torch.from_numpy(standardise(pixels, predictor.mean, predictor.std))[None]
        inputs = inputs.to(predictor.device)  # (1, C, H, W)
        score = resolve_target(predictor.model, inputs, args.target, box)
        heat = explain(args.method, predictor.model, inputs, score, **_method_options(args))
        record = {
            "image": str(path),
            "method": args.method,
            "output": f"{path.stem}_{args.method}.png",
        }
        if isinstance(score, ClassScore):
            with torch.no_grad():
                predicted = int(predictor.model(inputs).argmax(dim=1)[0])
            target = int(score.classes[0])
            record.update(
                target=target,
                target_name=predictor.classes[target] if target < len(predictor.classes) else None,
                predicted=predicted,
            )
        elif isinstance(score, RegionScore):
            target = (
                0 if score.sign < 0 else (1 if predictor.activation == "sigmoid" else score.channel)
            )
            record.update(
                target=target,
                region="box" if box else "predicted",
                region_pixels=int(score.region.sum()),
            )
        record["map"] = f"{path.stem}_{args.method}.npy"
        heat = heat[0].numpy()  # (H, W)
        results.append(
            {"path": path, "picture": heatmap_overlay(pixels, heat), "map": heat, "record": record}
        )
    return out, results


def explain_command(args: argparse.Namespace) -> int:
    import numpy as np

    from dlcc.atomic import atomic_write, write_text_atomic
    from dlcc.segmentation.outputs import write_png

    out, results = compute_maps(args)
    for result in results:
        write_png(out / result["record"]["output"], result["picture"])
        with atomic_write(out / result["record"]["map"]) as handle:
            np.save(handle, result["map"].astype(np.float32))
    records = [result["record"] for result in results]
    write_text_atomic(out / f"explain_{args.method}.json", json.dumps(records, indent=2) + "\n")
    print(f"wrote {len(results)} {args.method} overlay(s) and explain_{args.method}.json to {out}")
    return 0
