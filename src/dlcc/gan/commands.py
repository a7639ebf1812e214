"""``dlcc gan sample RUN_DIR`` and ``dlcc gan evaluate RUN_DIR --classifier RUN_DIR``.

A GAN run trains through ``dlcc train RECIPE`` (a recipe with ``task: {name: gan}``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dlcc.errors import DlccError


class GanRunError(DlccError):
    """A run directory or option that a GAN command cannot use."""


def register(commands) -> None:
    gan = commands.add_parser(
        "gan",
        help="sample from and measure a trained GAN run",
        description="Commands for a run trained by `dlcc train` with a GAN recipe "
        "(task: gan), e.g. recipes/gan_mnist.yaml.",
    )
    sub = gan.add_subparsers(dest="gan_command", required=True)
    sample = sub.add_parser("sample", help="save a grid of samples from the EMA generator")
    sample.add_argument("run_dir", help="a GAN run directory")
    sample.add_argument("--n", type=int, default=64, help="how many samples (default 64)")
    sample.add_argument(
        "--class", dest="class_index", type=int, default=None,
        help="conditional runs: every sample of this class (default: classes in turn)",
    )  # fmt: skip
    sample.add_argument("--seed", type=int, default=0, help="the noise's seed (default 0)")
    sample.add_argument("--checkpoint", choices=("best", "last"), default="best")
    sample.add_argument("--out", required=True, help="the PNG to write")
    sample.set_defaults(handler=sample_command)

    evaluate = sub.add_parser(
        "evaluate", help="FID, conditional accuracy and diversity under a trained classifier"
    )
    evaluate.add_argument("run_dir", help="a GAN run directory")
    evaluate.add_argument(
        "--classifier", required=True,
        help="a classification run trained on the same dataset (e.g. runs/mnist_cnn)",
    )  # fmt: skip
    evaluate.add_argument("--n", type=int, default=1000, help="samples to measure (default 1000)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--checkpoint", choices=("best", "last"), default="best")
    evaluate.add_argument("--out", default=None, help="also write the figures to this JSON file")
    evaluate.set_defaults(handler=evaluate_command)


def load_generator(run_dir: str | Path, checkpoint: str = "best"):
    """(EMA generator in eval mode, the checkpoint's data summary, the run's config) of a
    GAN run; GanRunError for a run of another task or a missing checkpoint."""
    from dlcc.gan.trainer import build_generator, gan_options
    from dlcc.runs import read_run
    from dlcc.training.evaluation import read_saved_checkpoint

    saved = read_run(run_dir)
    if saved.task != "gan":
        raise GanRunError(
            f"{run_dir} is a {saved.task} run, not a GAN run; pass the --out directory of "
            "`dlcc train` with a GAN recipe (task: gan), e.g. recipes/gan_mnist.yaml"
        )
    config, path, state = read_saved_checkpoint(saved, checkpoint)
    summary = state["data"]
    generator = build_generator(
        config, gan_options(config), summary["in_shape"], len(summary["classes"])
    )
    try:
        generator.load_state_dict(state["model"])
    except RuntimeError as error:
        raise GanRunError(
            f"{path} does not fit the generator its config.yaml builds "
            f"({str(error).splitlines()[0][:120]}); the run was edited: train it again"
        ) from None
    return generator.eval(), summary, config


def _positive(value: int, flag: str) -> int:
    if value < 1:
        raise GanRunError(f"{flag}: expected an integer >= 1, received {value}")
    return value


def sample_command(args: argparse.Namespace) -> int:
    import torch

    from dlcc.gan.images import save_grid
    from dlcc.gan.trainer import generate

    count = _positive(args.n, "--n")
    generator, summary, _ = load_generator(args.run_dir, args.checkpoint)
    classes = summary["classes"]
    labels = None
    if args.class_index is not None:
        if not generator.conditional:
            raise GanRunError(
                f"--class {args.class_index}: {args.run_dir} is an unconditional GAN (it "
                "takes no class); leave out --class, or train a conditional recipe "
                "(task.options.conditional: true)"
            )
        if not 0 <= args.class_index < len(classes):
            raise GanRunError(
                f"--class {args.class_index}: expected a class index 0..{len(classes) - 1} "
                f"({', '.join(classes)})"
            )
        labels = torch.full((count,), args.class_index, dtype=torch.int64)
    images, _ = generate(
        generator, count, len(classes), torch.Generator().manual_seed(args.seed), labels
    )
    columns = len(classes) if generator.conditional and labels is None else None
    out = save_grid(images, args.out, columns)
    print(f"{count} samples -> {out}")
    return 0


def evaluate_run(run_dir, classifier: str, count: int = 1000, seed: int = 0, checkpoint="best"):
    """The sample figures of a GAN run under `classifier` (a classification run), with what
    real data scores at the same sample size (`real_reference_figures`)."""
    import torch

    from dlcc.gan.metrics import load_judge
    from dlcc.gan.trainer import measure, real_reference_figures, to_gan_range
    from dlcc.training.data import load_data

    generator, summary, config = load_generator(run_dir, checkpoint)
    judge = load_judge(classifier)
    if list(judge.classes) != list(summary["classes"]):
        raise GanRunError(
            f"the classifier {classifier} knows the classes {judge.classes}, the GAN run "
            f"{summary['classes']}: give a classifier trained on the GAN's dataset"
        )
    data = load_data(config.data, config.train.seed)
    real_train = to_gan_range(data.train.inputs, data.mean, data.std)
    real_test = to_gan_range(data.test.inputs, data.mean, data.std)
    real_features = judge.judge(real_test[:count]).features
    with torch.no_grad():
        figures = measure(generator, judge, real_features, count, len(summary["classes"]), seed)
    return {
        **figures,
        **real_reference_figures(
            judge, real_train, (real_test, data.test.targets), count, generator.conditional
        ),
        "samples": count,
        "classifier": str(classifier),
        "checkpoint": checkpoint,
    }


def evaluate_command(args: argparse.Namespace) -> int:
    from dlcc.atomic import write_text_atomic
    from dlcc.runs import strict_json

    figures = evaluate_run(
        args.run_dir, args.classifier, _positive(args.n, "--n"), args.seed, args.checkpoint
    )
    for name, value in figures.items():
        print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}")
    if args.out:
        write_text_atomic(args.out, strict_json(figures))
    return 0


__all__ = ["GanRunError", "evaluate_run", "load_generator", "register"]
