"""``dlcc export RUN_DIR --format onnx|torchscript --out FILE``: registration and handler."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    export = commands.add_parser(
        "export",
        help="export a trained torch run to ONNX or TorchScript (checked against PyTorch)",
    )
    export.add_argument("run_dir", help="the --out directory of `dlcc train`")
    # Not argparse choices: an unknown format gets the library's one-line message.
    export.add_argument("--format", required=True, help="onnx or torchscript")
    export.add_argument("--out", required=True, help="the file to write (FILE.json beside it)")
    export.add_argument("--checkpoint", choices=["best", "last"], default="best")
    export.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="largest |exported - eager PyTorch| accepted (default: 1e-4)",
    )
    export.set_defaults(handler=export_command)


def export_command(args: argparse.Namespace) -> int:
    from dlcc.export.exporter import export_run, sidecar_path

    sidecar = export_run(
        args.run_dir,
        args.format,
        args.out,
        checkpoint=args.checkpoint,
        tolerance=args.tolerance,
    )
    check = sidecar["verification"]
    dynamic = ", ".join(axis["name"] for axis in sidecar["input"]["dynamic"])
    shape = ", ".join(str(size) for size in sidecar["input"]["shape"])
    print(
        f"wrote {args.out} ({args.format}; input ({shape}), dynamic: {dynamic}); "
        f"largest |{check['runtime']} - eager| = {check['max_abs_diff']:.2e} "
        f"on {len(check['checked_shapes'])} inputs; metadata in {sidecar_path(args.out)}"
    )
    return 0
