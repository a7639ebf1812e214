"""``dlcc eval RUN_DIR``: any run directory, whichever trainer wrote it.

config.yaml's ``kind`` says which: a torch run is evaluated by `dlcc.training.evaluation`,
a NumPy run by `dlcc.numpy_trainer`. Heavy imports happen only for the kind in hand.
"""

from __future__ import annotations

import argparse
import json

from dlcc.cli_options import add_data_dir_argument, add_device_argument


def register(commands) -> None:
    evaluate = commands.add_parser(
        "eval", help="evaluate a saved run (dlcc train or dlcc numpy train) on one split"
    )
    evaluate.add_argument("run_dir", help="the --out directory of a training run")
    evaluate.add_argument("--checkpoint", choices=["best", "last"], default="best")
    evaluate.add_argument("--split", choices=["test", "val", "train"], default="test")
    evaluate.add_argument(
        "--json",
        metavar="FILE",
        help="write the figures to FILE instead of RUN_DIR/eval_SPLIT_CHECKPOINT.json "
        "(leaves the run directory untouched, e.g. for a DVC stage of its own)",
    )
    add_device_argument(evaluate, default="auto")
    add_data_dir_argument(evaluate)
    evaluate.set_defaults(handler=eval_command)


def evaluate_run(
    run_dir,
    *,
    checkpoint: str = "best",
    split: str = "test",
    device: str = "auto",
    data_dir: str | None = None,
    out=None,
) -> dict:
    """Evaluate RUN_DIR's checkpoint on `split`; returns (and saves) the summary dict.

    It is saved as RUN_DIR/eval_{split}_{checkpoint}.json, or as the file `out`.
    """
    from dlcc.runs import read_run

    saved = read_run(run_dir)
    if saved.kind == "numpy":
        from dlcc.numpy_trainer import evaluate_numpy_run

        if device not in ("auto", "cpu"):
            from dlcc.runs import RunDirError

            raise RunDirError(f"{run_dir} is a NumPy run, which runs on the CPU; drop --device")
        return evaluate_numpy_run(
            saved, checkpoint=checkpoint, split=split, data_dir=data_dir, out=out
        )
    if saved.task == "gan":
        from dlcc.runs import RunDirError

        raise RunDirError(
            f"{run_dir} is a GAN run, which has no test split to score; measure its samples "
            f"with `dlcc gan evaluate {run_dir} --classifier CLASSIFIER_RUN`"
        )
    from dlcc.training.evaluation import evaluate_torch_run

    return evaluate_torch_run(
        saved, checkpoint=checkpoint, split=split, device=device, data_dir=data_dir, out=out
    )


def eval_command(args: argparse.Namespace) -> int:
    summary = evaluate_run(
        args.run_dir,
        checkpoint=args.checkpoint,
        split=args.split,
        device=args.device,
        data_dir=args.data_dir,
        out=args.json,
    )
    print(json.dumps(summary, indent=2))
    return 0
