"""Saving a trained torch run for serving: ONNX and TorchScript files that describe
themselves, and the loader that runs them.

    from dlcc.export import export_run, load_exported
    export_run("runs/mnist", "onnx", "mnist.onnx")       # checked, then written atomically
    model = load_exported("mnist.onnx")
    logits = model(batch)                                 # ONNX Runtime (or torch.jit)

Modules: `graph` (what is traced, which axes are dynamic), `metadata` (what the file says
about itself), `formats` (writing and checking each format), `exporter` (a run directory
to a file), `loaded` (a file to a runnable model), `commands` (``dlcc export``).
Importing this package is cheap: torch, onnx and onnxruntime load when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["ExportError", "ExportedModel", "export_run", "load_exported"]

if TYPE_CHECKING:
    from dlcc.export.exporter import export_run
    from dlcc.export.formats import ExportError
    from dlcc.export.loaded import ExportedModel, load_exported


def __getattr__(name: str):
    if name == "export_run":
        from dlcc.export.exporter import export_run

        return export_run
    if name == "ExportError":
        from dlcc.export.formats import ExportError

        return ExportError
    if name in ("ExportedModel", "load_exported"):
        from dlcc.export import loaded

        return getattr(loaded, name)
    raise AttributeError(f"module 'dlcc.export' has no attribute {name!r}")
