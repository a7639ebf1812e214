"""``dlcc attack RUN_DIR --eps 0,0.05,0.1 --steps 20 --out DIR``: robustness of a classifier.

Attacks one split of the run's own data (test by default) with FGSM and PGD at each
epsilon, in pixel units, and writes, each file all-or-nothing, only once all is computed:
  DIR/robustness.json          {"eps": [...], "fgsm": [rows], "pgd": [rows], ...}, a row
                               {"attack", "eps", "steps", "alpha", "accuracy", "samples"}
  DIR/robustness.png           accuracy vs eps, one curve per attack
  DIR/adversarial_examples.png originals, their PGD versions at the largest eps, predictions
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dlcc.cli_options import add_data_dir_argument, add_device_argument

DEFAULT_EPS = "0,0.05,0.1,0.2,0.3"


def register(commands) -> None:
    """Add ``dlcc attack`` to the top-level sub-parsers."""
    parser = commands.add_parser(
        "attack",
        help="accuracy of a trained classifier under FGSM and PGD attacks (L-infinity)",
        description=__doc__.split("\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", help="the --out directory of `dlcc train` (classification)")
    parser.add_argument("--out", required=True, help="the folder to write into (created)")
    parser.add_argument(
        "--eps",
        default=DEFAULT_EPS,
        help=f"comma-separated epsilons in pixel units, pixels in [0, 1] (default {DEFAULT_EPS})",
    )
    parser.add_argument("--steps", type=int, default=20, help="PGD iterations (default 20)")
    parser.add_argument(
        "--alpha", type=float, default=None, help="PGD step size (default 2.5 * eps / steps)"
    )
    parser.add_argument(
        "--no-random-start", action="store_true", help="PGD starts at the image, not at random"
    )
    parser.add_argument("--split", choices=["test", "val", "train"], default="test")
    parser.add_argument(
        "--limit", type=int, default=1000, help="attack the first N images of the split (1000)"
    )
    parser.add_argument("--examples", type=int, default=8, help="images in the panel (8)")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="PGD's random starts")
    add_device_argument(parser, default="auto")
    add_data_dir_argument(parser)
    parser.set_defaults(handler=attack_command)


def parse_eps_list(text: str) -> list[float]:
    """ "0,0.05,0.1" -> [0.0, 0.05, 0.1]; AttackError for anything not in [0, 1]."""
    from dlcc.adversarial.attacks import AttackError, check_eps

    values = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            value = float(part)
        except ValueError:
            raise AttackError(
                f"--eps: expected comma-separated numbers in [0, 1] such as {DEFAULT_EPS}, "
                f"received {part!r} in {text!r}"
            ) from None
        values.append(check_eps(value, f"--eps {part}"))
    if not values:
        raise AttackError(f"--eps: expected at least one number, e.g. {DEFAULT_EPS}")
    return values


def _check_numbers(args: argparse.Namespace) -> None:
    from dlcc.adversarial.attacks import AttackError

    for name in ("steps", "limit", "batch_size"):
        if getattr(args, name) < 1:
            raise AttackError(
                f"--{name.replace('_', '-')} must be >= 1, received {getattr(args, name)}"
            )
    if args.examples < 0:
        raise AttackError(f"--examples must be >= 0, received {args.examples}")
    if args.alpha is not None and not args.alpha > 0:
        raise AttackError(f"--alpha must be > 0 (pixel units), received {args.alpha}")


def load_classifier(run_dir: str, checkpoint: str, device: str, data_dir: str | None = None):
    """(predictor, saved run) for a torch classification run; one-line DlccError otherwise."""
    from dlcc.errors import DlccError
    from dlcc.runs import read_run
    from dlcc.segmentation.predictor import load_predictor

    saved = read_run(run_dir)
    if saved.kind != "torch":
        raise DlccError(
            f"{run_dir} is a {saved.kind} run; `dlcc attack` needs a run of `dlcc train`"
        )
    if saved.task != "classification":
        raise DlccError(
            f"{run_dir} is a {saved.task} run; `dlcc attack` needs a classification run "
            "(one label per image), such as one of recipes/mnist_cnn.yaml"
        )
    return load_predictor(run_dir, checkpoint, device, data_dir), saved


def _split_pixels(saved, split: str, limit: int, data_dir: str | None):
    """The split's first `limit` images as pixels (N, C, H, W) in [0, 1], and labels (N,)."""
    from dlcc.errors import DataError
    from dlcc.training.config import config_from_dict
    from dlcc.training.data import load_data

    config = config_from_dict(saved.settings, str(saved.run.config))
    if data_dir:
        config.data.data_dir = str(Path(data_dir).resolve())
    data = load_data(config.data, config.train.seed)
    dataset = getattr(data, split)
    if len(dataset) == 0:
        raise DataError(
            f"{saved.run.root}: the {split} split of {config.data.dataset} holds no images; "
            "choose another with --split"
        )
    inputs, labels = dataset.inputs[:limit].float(), dataset.targets[:limit]
    mean = inputs.new_tensor(data.mean).view(1, -1, 1, 1)
    std = inputs.new_tensor(data.std).view(1, -1, 1, 1)
    return (inputs * std + mean).clamp_(0.0, 1.0), labels, data.classes


def run_attack(args: argparse.Namespace) -> dict:
    """Everything `dlcc attack` computes, before anything is written."""
    import torch

    from dlcc.adversarial.attacks import AttackError, AttackSpec, PixelModel, attack
    from dlcc.adversarial.robustness import accuracy_vs_eps

    eps_list = parse_eps_list(args.eps)
    _check_numbers(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise AttackError(
            f"--out {out} is an existing file, not a folder; pass a folder to write into"
        )
    predictor, saved = load_classifier(args.run_dir, args.checkpoint, args.device, args.data_dir)
    pixels, labels, classes = _split_pixels(saved, args.split, args.limit, args.data_dir)
    model = PixelModel(predictor.model, predictor.mean, predictor.std).to(predictor.device).eval()
    common = dict(batch_size=args.batch_size, device=predictor.device, seed=args.seed)
    fgsm_spec = AttackSpec("fgsm", eps=0.0)
    pgd_spec = AttackSpec(
        "pgd", eps=0.0, alpha=args.alpha, steps=args.steps, random_start=not args.no_random_start
    )
    tables = {
        "fgsm": accuracy_vs_eps(model, (pixels, labels), eps_list, fgsm_spec, **common),
        "pgd": accuracy_vs_eps(model, (pixels, labels), eps_list, pgd_spec, **common),
    }
    # The panel: the first correctly classified images, attacked by PGD at the largest eps.
    example_eps = max(eps_list)
    with torch.no_grad():
        clean = model(pixels[:256].to(predictor.device)).argmax(dim=1).cpu()
    chosen = torch.nonzero(clean == labels[:256]).flatten()[: args.examples]
    originals = pixels[chosen].to(predictor.device)
    generator = torch.Generator(device=predictor.device).manual_seed(args.seed)
    adversarials = attack(
        model,
        originals,
        labels[chosen].to(predictor.device),
        AttackSpec("pgd", example_eps, args.alpha, args.steps, not args.no_random_start),
        generator,
    )
    with torch.no_grad():
        fooled = model(adversarials).argmax(dim=1).cpu() if len(chosen) else clean[:0]
    summary = {
        "run_dir": str(saved.run.root),
        "checkpoint": args.checkpoint,
        "split": args.split,
        "samples": len(labels),
        "eps": eps_list,
        "clean_accuracy": tables["fgsm"][0]["accuracy"] if eps_list[0] == 0 else None,
        "norm": "linf",
        "units": "pixels in [0, 1]",
        **tables,
    }
    examples = (
        originals.cpu().numpy(),
        adversarials.cpu().numpy(),
        clean[chosen].tolist(),
        fooled.tolist(),
        labels[chosen].tolist(),
        list(classes),
        example_eps,
    )
    return {"out": out, "summary": summary, "tables": tables, "examples": examples}


def attack_command(args: argparse.Namespace) -> int:
    from dlcc.adversarial.robustness import plot_adversarial_examples, plot_robustness
    from dlcc.atomic import write_text_atomic
    from dlcc.runs.rundir import strict_json

    result = run_attack(args)
    out, summary = result["out"], result["summary"]
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "robustness.json", strict_json(summary))
    plot_robustness(
        list(result["tables"].values()), out / "robustness.png", title=str(summary["run_dir"])
    )
    plot_adversarial_examples(*result["examples"], out / "adversarial_examples.png")
    for row_fgsm, row_pgd in zip(summary["fgsm"], summary["pgd"], strict=True):
        print(
            f"eps {row_fgsm['eps']:<6g} FGSM {row_fgsm['accuracy']:.4f}  "
            f"PGD-{row_pgd['steps']} {row_pgd['accuracy']:.4f}"
        )
    print(f"wrote robustness.json, robustness.png and adversarial_examples.png to {out}")
    return 0
