"""dlcc.models: the course's PyTorch models, and a registry to build them by name.

Quick start::

    from dlcc.models import build_model, count_parameters
    model = build_model("resnet20", (3, 32, 32), num_classes=10)
    count_parameters(model)                 # 272282
    logits = model(images)                  # (N, 3, 32, 32) -> (N, 10)

Modules, one idea each: `mlp` (MLP), `cnn` (SmallCNN, depthwise-separable option),
`resnet` (pre-activation blocks, PreActResNet, resnet20), `registry` (names -> models),
`common` (ModelError, input checks, He/Xavier init), `charlm` (CharRNN, CharGPT: token
ids (N, T) -> next-token logits (N, T, V)).
All models accept channels_last inputs and run under torch.autocast.
"""

from dlcc.models.attention import causal_self_attention, self_attention
from dlcc.models.charlm import CharGPT, CharRNN
from dlcc.models.cnn import SmallCNN
from dlcc.models.common import ModelError, init_weights_
from dlcc.models.mlp import MLP
from dlcc.models.registry import (
    MODELS,
    build_model,
    count_parameters,
    model_names,
    model_options,
)
from dlcc.models.resnet import PreActBlock, PreActResNet, resnet20

__all__ = [
    "MLP",
    "MODELS",
    "CharGPT",
    "CharRNN",
    "ModelError",
    "PreActBlock",
    "PreActResNet",
    "SmallCNN",
    "build_model",
    "causal_self_attention",
    "count_parameters",
    "init_weights_",
    "model_names",
    "model_options",
    "resnet20",
    "self_attention",
]
