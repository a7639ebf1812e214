"""``dlcc text sample RUN_DIR``: text from a trained character language model."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    """Add ``dlcc text sample`` to the top-level sub-parsers."""
    text = commands.add_parser("text", help="character language models: sample text")
    text_commands = text.add_subparsers(dest="text_command", required=True)
    sample = text_commands.add_parser(
        "sample",
        help="print text sampled from a language-model run (torch or NumPy)",
        description="Print --length characters drawn after --prime from a language-model "
        "run's checkpoint. The same --seed gives the same text.",
    )
    sample.add_argument("run_dir", help="the --out directory of a language-model run")
    sample.add_argument("--prime", default="\n", help="text to start from (default a newline)")
    sample.add_argument("--length", type=int, default=500, help="characters to draw (500)")
    sample.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="below 1: more conservative, above 1: more random (default 0.8)",
    )
    sample.add_argument(
        "--top-k", type=int, default=None, help="draw only among the K most likely characters"
    )
    sample.add_argument("--seed", type=int, default=0, help="the same seed, the same text")
    sample.add_argument("--checkpoint", choices=["best", "last"], default="best")
    sample.set_defaults(handler=sample_command)


def sample_command(args: argparse.Namespace) -> int:
    from dlcc.text.sampling import sample_run

    text = sample_run(
        args.run_dir,
        prime=args.prime.replace("\\n", "\n"),
        length=args.length,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
        checkpoint=args.checkpoint,
    )
    print(text)
    return 0
