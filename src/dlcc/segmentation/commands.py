"""``dlcc segment predict`` and ``dlcc detect predict``: a trained run on new images.

Both read and check every input first (the run, its checkpoint, each image and its
channels), predict every image, and only then write, each file all-or-nothing: a bad
input stops the command before any file is written.
"""

from __future__ import annotations

import argparse
import sys

from dlcc.cli_options import add_device_argument, add_progress_argument

SEGMENT_CONVENTIONS = """\
Writes, for each input image (files, or folders: every image inside, sorted):
  OUT/<name>.png                the mask, the same size as the image, in the dataset's
                                convention: binary runs (one output channel) give 255
                                where P(class 1) > --threshold (ISBI 2012: cell interior)
                                and 0 elsewhere (membrane); multi-class runs give the
                                argmax class index (0, 1, 2, ...) as 8-bit grey.
  OUT/overlays/<name>_overlay.png  the image in grey with class 0 (binary: membrane)
                                or every non-background class (multi-class) tinted.
Images are scaled like the training data (8-bit / 255, 16-bit / 65535) and standardised
with the run's saved mean and std; a grey model takes grey images, an RGB model RGB ones.
Large images are predicted in overlapping tiles (--tile, --overlap), blended smoothly.
"""

DETECT_CONVENTIONS = """\
Writes, for each input image (files, or folders: every image inside, sorted):
  OUT/<name>.csv                one detected cell centre a line, header x,y,score:
                                x the column and y the row in pixels, score the heatmap's
                                value (0 to 1) at the peak.
  OUT/overlays/<name>_overlay.png  the image in grey with each point ringed.
A peak is a local maximum of the predicted heatmap above --threshold, at least
--min-distance pixels from a higher one.
"""


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="the --out directory of `dlcc train`")
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--out", required=True, help="the folder to write into (created)")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument("--tile", type=int, default=256, help="tile side, a multiple of 16")
    parser.add_argument(
        "--overlap", type=int, default=None, help="pixels shared by tiles (default: tile / 4)"
    )
    parser.add_argument(
        "--tta", action="store_true", help="average over the 4 flips (4x slower, smoother)"
    )
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    add_device_argument(parser, default="auto")
    add_progress_argument(parser)


def register(commands) -> None:
    """Add ``dlcc segment predict`` and ``dlcc detect predict`` to the top-level sub-parsers."""
    segment = commands.add_parser("segment", help="predict masks with a trained segmentation run")
    segment_commands = segment.add_subparsers(dest="segment_command", required=True)
    predict = segment_commands.add_parser(
        "predict",
        help="masks and overlays for images of any size",
        description="Predict a mask for each image with a trained segmentation run.",
        epilog=SEGMENT_CONVENTIONS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common_arguments(predict)
    predict.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="binary runs: class 1 where its probability is above this (default 0.5)",
    )
    predict.set_defaults(handler=segment_predict_command)

    detect = commands.add_parser("detect", help="find cell centres with a trained detection run")
    detect_commands = detect.add_subparsers(dest="detect_command", required=True)
    find = detect_commands.add_parser(
        "predict",
        help="cell centres (CSV) and overlays for images of any size",
        description="Detect cell centres in each image with a trained detection run.",
        epilog=DETECT_CONVENTIONS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common_arguments(find)
    find.add_argument(
        "--min-distance",
        type=int,
        default=None,
        help="pixels between two peaks (default: the run's task.options, else 5)",
    )
    find.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="lowest heatmap peak kept (default: the run's task.options, else 0.3)",
    )
    find.set_defaults(handler=detect_predict_command)


def _peak_settings(args: argparse.Namespace) -> tuple[int, float]:
    """--min-distance and --threshold, else the values the run was validated with."""
    from dlcc.runs import read_run
    from dlcc.training.tasks import DetectionTask

    options = (read_run(args.run_dir).settings.get("task") or {}).get("options") or {}
    task = DetectionTask(
        **{key: options[key] for key in ("min_distance", "threshold") if key in options}
    )
    min_distance = task.min_distance if args.min_distance is None else args.min_distance
    return min_distance, task.threshold if args.threshold is None else args.threshold


def find_cell_peaks(heatmap, min_distance: int, threshold: float):
    """The one call to the peak finder: (H, W) heatmap -> points (K, 2) row/col, scores (K,)."""
    from dlcc.segmentation.detection import find_peaks

    return find_peaks(heatmap, min_distance=min_distance, threshold=threshold)


NOT_DENSE = ("classification", "language_model")


def _check_task(run_dir: str, command: str) -> None:
    """Refuse, in one line, a run whose task the command cannot use (before loading it)."""
    from dlcc.runs import read_run
    from dlcc.segmentation.predictor import PredictError

    task = read_run(run_dir).task
    if task == "beats":
        raise PredictError(
            f"{run_dir} is a beats run (R-peaks in ECG signals), not an image model; use "
            f"`dlcc ecg detect RECORD --model {run_dir} --out DIR`"
        )
    if command == "detect" and task != "detection":
        hint = "; use `dlcc segment predict`" if task not in NOT_DENSE else ""
        raise PredictError(
            f"{run_dir} is a {task} run; `dlcc detect predict` needs a detection run "
            f"(task: detection){hint}"
        )
    if command == "segment" and task == "detection":
        raise PredictError(
            f"{run_dir} is a detection run; `dlcc segment predict` needs a segmentation run; "
            "use `dlcc detect predict` for cell centres"
        )
    if command == "segment" and task in NOT_DENSE:
        raise PredictError(
            f"{run_dir} is a {task} run, which predicts one answer per image, not per pixel; "
            "`dlcc segment predict` needs a segmentation run"
        )


def _check_numbers(args: argparse.Namespace, low: float, high: float) -> None:
    from dlcc.segmentation.predictor import PredictError
    from dlcc.segmentation.tiling import SIDE_MULTIPLE

    if args.tile < SIDE_MULTIPLE or args.tile % SIDE_MULTIPLE:
        raise PredictError(f"--tile must be a multiple of 16, received {args.tile}; try 256")
    if args.overlap is None:
        args.overlap = args.tile // 4
    if not 0 <= args.overlap < args.tile:
        raise PredictError(
            f"--overlap must be in [0, --tile={args.tile}), received {args.overlap}; try 64"
        )
    if args.batch_size < 1:
        raise PredictError(f"--batch-size must be >= 1, received {args.batch_size}")
    if args.threshold is not None and not low <= args.threshold < high:
        raise PredictError(f"--threshold must be in [{low}, {high}), received {args.threshold}")
    min_distance = getattr(args, "min_distance", None)  # detect only; None: the run's own
    if min_distance is not None and min_distance < 1:
        raise PredictError(f"--min-distance must be >= 1, received {args.min_distance}")


def _prepare(args: argparse.Namespace, command: str):
    """Check everything, read every image: (predictor, out folder, [(path, pixels)])."""
    from dlcc.segmentation.outputs import check_output_folder, collect_inputs, read_image
    from dlcc.segmentation.predictor import check_channels, load_predictor

    _check_numbers(args, 0.0, 1.0)
    out = check_output_folder(args.out)
    paths = collect_inputs(args.images)
    _check_task(args.run_dir, command)
    predictor = load_predictor(args.run_dir, args.checkpoint, args.device)
    images = []
    for path in paths:
        pixels = read_image(path)
        check_channels(pixels, predictor.in_channels, str(path))
        images.append((path, pixels))
    return predictor, out, images


def _predict_all(predictor, images, args: argparse.Namespace):
    """Yields (path, pixels, probabilities (K, H, W)) for each image, with a progress bar."""
    from tqdm import tqdm

    from dlcc.segmentation.predictor import PredictError

    show = not args.no_progress and sys.stderr.isatty() and len(images) > 1
    for path, pixels in tqdm(images, desc="predict", unit="image", disable=not show):
        try:
            probabilities = predictor.predict(
                pixels,
                tile=args.tile,
                overlap=args.overlap,
                batch_size=args.batch_size,
                tta=args.tta,
                where=str(path),
            )
        except ValueError as error:  # the model is not dense, or bad tiling arguments
            raise PredictError(f"{path}: {error}") from None
        yield path, pixels, probabilities


def segment_predict_command(args: argparse.Namespace) -> int:
    from dlcc.segmentation import outputs

    predictor, out, images = _prepare(args, "segment")
    results = []  # every image predicted before the first file is written
    for path, pixels, probabilities in _predict_all(predictor, images, args):
        binary = probabilities.shape[0] == 1
        if binary:
            mask = outputs.binary_mask(probabilities, args.threshold)
        else:
            mask = outputs.label_map(probabilities)
        results.append((path, mask, outputs.segmentation_overlay(pixels, mask, binary)))
    for path, mask, overlay in results:
        outputs.write_png(out / f"{path.stem}.png", mask)
        outputs.write_png(out / "overlays" / f"{path.stem}_overlay.png", overlay)
    print(f"wrote {len(results)} mask(s) to {out} and overlays to {out / 'overlays'}")
    return 0


def detect_predict_command(args: argparse.Namespace) -> int:
    from dlcc.segmentation import outputs

    predictor, out, images = _prepare(args, "detect")
    min_distance, threshold = _peak_settings(args)
    results = []
    total = 0
    for path, pixels, probabilities in _predict_all(predictor, images, args):
        points, scores = find_cell_peaks(probabilities[0], min_distance, threshold)
        total += len(points)
        results.append(
            (path, outputs.points_csv(points, scores), outputs.points_overlay(pixels, points))
        )
    for path, table, overlay in results:
        outputs.write_text(out / f"{path.stem}.csv", table)
        outputs.write_png(out / "overlays" / f"{path.stem}_overlay.png", overlay)
    print(f"wrote {len(results)} point list(s) ({total} points) to {out}")
    return 0
