"""Small models of every registry entry, for the export tests and nothing else.

(name, in_shape, classes (outputs, or the vocabulary), options): random weights, sizes
chosen so that an export and its check take well under a second.
"""

from __future__ import annotations

import torch

from dlcc.models import build_model

CASES = {
    "mlp": ("mlp", (1, 8, 8), 10, {"hidden": [16]}),
    "small_cnn": ("small_cnn", (1, 28, 28), 10, {"widths": [8, 16]}),
    "small_cnn_depthwise": ("small_cnn", (3, 16, 16), 4, {"widths": [8, 16], "depthwise": True}),
    "preact_resnet": ("preact_resnet", (3, 16, 16), 10, {"widths": [8, 16], "blocks": [1, 1]}),
    "resnet20": ("resnet20", (3, 16, 16), 10, {}),
    "small_fcn": ("small_fcn", (1, 20, 24), 2, {"widths": [8, 8]}),
    "unet": ("unet", (1, 32, 32), 2, {"depth": 2, "width": 8}),
    "unet_transpose_3class": (
        "unet", (3, 24, 40), 3, {"depth": 3, "width": 4, "upsampling": "transpose"},
    ),
    "beatnet_conv": ("beatnet", (1, 200), 1, {"body": "conv", "width": 8, "layers": 2}),
    "beatnet_lstm": ("beatnet", (1, 200), 1, {"body": "lstm", "width": 8, "hidden": 8}),
    "beatnet_gru": ("beatnet", (1, 200), 1, {"body": "gru", "width": 8, "hidden": 8}),
    "beatnet_gru_causal": (
        "beatnet", (1, 200), 1, {"body": "gru", "width": 8, "hidden": 8, "causal": True},
    ),
    "beatnet_transformer": (
        "beatnet", (1, 200), 1, {"body": "transformer", "width": 8, "heads": 2},
    ),
    "char_rnn_lstm": ("char_rnn", (16,), 12, {"cell": "lstm", "embedding": 8, "hidden": 16,
                                              "layers": 2}),
    "char_rnn_gru": ("char_rnn", (16,), 12, {"cell": "gru", "embedding": 8, "hidden": 16}),
    "char_gpt": ("char_gpt", (16,), 12, {"layers": 2, "heads": 2, "dim": 16}),
}  # fmt: skip


def build_case(case: str, seed: int = 0) -> tuple[torch.nn.Module, str, tuple, list[str]]:
    """(model in eval mode, registry name, in_shape, class names) with random weights.

    BatchNorm's running statistics are randomised too, so the check covers them.
    """
    name, in_shape, classes, options = CASES[case]
    torch.manual_seed(seed)
    model = build_model(name, in_shape, classes, **options)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval(), name, in_shape, [f"c{i}" for i in range(classes)]
