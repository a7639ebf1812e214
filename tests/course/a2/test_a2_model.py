"""Part 3: the model (`SmallCNN` in `dlcc.models.cnn`): its stages, its parameter count
against a count by hand, its forward pass, and that it trains.

The tests of `SmallCNN.__init__` look only at `model.features` (the stem and the stages);
the tests of `SmallCNN.forward` run it on a model put together here from stand-in parts, so
each grades one region. Only the last test needs both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from a2_helpers import check_close
from torch import nn

from dlcc.models.cnn import ConvBNReLU, SmallCNN
from dlcc.training.config import DataConfig
from dlcc.training.data import load_data


def trainable_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def describe_blocks(features: nn.Module) -> list[tuple[int, int, int]]:
    """(in_channels, out_channels, stride) of each ConvBNReLU block in `features`."""
    blocks = []
    for block in features:
        if not isinstance(block, ConvBNReLU):
            raise AssertionError(
                f"SmallCNN.__init__: features holds a {type(block).__name__}; expected only "
                "blocks made by block(...) or ConvBNReLU(...)"
            )
        conv = block[0]
        blocks.append((conv.in_channels, conv.out_channels, conv.stride[0]))
    return blocks


# ---- the stages ----------------------------------------------------------------------------
def test_smallcnn_stages_follow_the_design():
    model = SmallCNN(1, 10, widths=(8, 16, 32), blocks_per_stage=2)
    blocks = describe_blocks(model.features)
    expected = [
        (1, 8, 1),  # the stem
        (8, 8, 1),  # stage 0: its second block
        (8, 16, 2),  # stage 1 opens with a stride-2 block
        (16, 16, 1),
        (16, 32, 2),  # stage 2
        (32, 32, 1),
    ]
    assert len(blocks) == len(expected), (
        f"SmallCNN.__init__: widths (8, 16, 32), blocks_per_stage 2 gave {len(blocks)} blocks; "
        f"expected {len(expected)} (the stem counts as stage 0's first block)"
    )
    for index, (got, want) in enumerate(zip(blocks, expected, strict=True)):
        assert got == want, (
            f"SmallCNN.__init__: block {index} is conv {got[0]} -> {got[1]} stride {got[2]}; "
            f"expected {want[0]} -> {want[1]} stride {want[2]} (a stage after the first opens "
            "with a stride-2 block)"
        )
    for height, width, out_height, out_width in [(28, 28, 7, 7), (9, 10, 3, 3), (1, 1, 1, 1)]:
        with torch.no_grad():
            features = model.features(torch.zeros(2, 1, height, width))
        assert tuple(features.shape) == (2, 32, out_height, out_width), (
            f"SmallCNN.__init__: features of a (2, 1, {height}, {width}) batch have shape "
            f"{tuple(features.shape)}; expected (2, 32, {out_height}, {out_width})"
        )
    assert model.head.in_features == 32, (
        f"SmallCNN.__init__: the head takes {model.head.in_features} features; expected 32 "
        "(set `channels` to the last block's output channels)"
    )


def test_smallcnn_parameter_count_matches_a_hand_count():
    # A 3x3 conv without bias from c_in to c_out channels has 9 * c_in * c_out weights;
    # BatchNorm has a scale and a shift per channel; the head has a weight matrix and a bias.
    # widths (16, 32), one block per stage, 3 input channels, 10 classes:
    stem = 9 * 3 * 16 + 2 * 16  # 432 + 32
    stage_1 = 9 * 16 * 32 + 2 * 32  # 4608 + 64
    head = 32 * 10 + 10
    cases = [(SmallCNN(3, 10, widths=(16, 32)), stem + stage_1 + head, "widths (16, 32)")]
    # widths (8, 16, 32), two blocks per stage, 1 input channel, 10 classes:
    convs = [(1, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32)]
    count = sum(9 * c_in * c_out + 2 * c_out for c_in, c_out in convs) + 32 * 10 + 10
    model = SmallCNN(1, 10, widths=(8, 16, 32), blocks_per_stage=2)
    cases.append((model, count, "widths (8, 16, 32), 2 blocks per stage"))
    for model, expected, what in cases:
        got = trainable_parameters(model)
        assert got == expected, (
            f"SmallCNN.__init__: {got} trainable parameters for {what}; a count by hand gives "
            f"{expected}"
        )


# ---- the forward pass -----------------------------------------------------------------------
def assembled_smallcnn(in_channels: int, num_classes: int, dropout: float = 0.0) -> SmallCNN:
    """A SmallCNN whose parts are set here (its __init__ is not run): stand-in features of
    two plain convolutions, then the pool, dropout and head SmallCNN uses."""
    torch.manual_seed(0)
    model = SmallCNN.__new__(SmallCNN)
    nn.Module.__init__(model)
    model.in_channels = in_channels
    model.features = nn.Sequential(
        nn.Conv2d(in_channels, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, 2, 1), nn.ReLU()
    )
    model.pool = nn.AdaptiveAvgPool2d(1)
    model.dropout = nn.Dropout(dropout)
    model.head = nn.Linear(5, num_classes)
    return model


def test_smallcnn_forward_runs_features_pool_dropout_head():
    model = assembled_smallcnn(3, 4, dropout=0.5)
    calls = []
    for name in ("features", "pool", "dropout", "head"):
        getattr(model, name).register_forward_hook(
            lambda module, inputs, output, name=name: calls.append((name, tuple(output.shape)))
        )
    x = torch.randn(2, 3, 9, 7)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    order = [name for name, _ in calls]
    assert order == ["features", "pool", "dropout", "head"], (
        f"SmallCNN.forward: the parts ran in the order {' -> '.join(order) or 'none'}; "
        "expected features -> pool -> dropout -> head"
    )
    shapes = dict(calls)
    assert shapes["dropout"] == (2, 5), (
        f"SmallCNN.forward: dropout received shape {shapes['dropout']}; expected (2, 5): "
        "flatten the pooled (N, C, 1, 1) features to (N, C) first"
    )
    with torch.no_grad():
        pooled = model.features(x).mean(dim=(2, 3))  # (2, 5)
        expected = pooled @ model.head.weight.T + model.head.bias
    check_close("SmallCNN.forward: logits", logits, expected, rtol=1e-5, atol=1e-6)


def test_smallcnn_forward_output_shapes():
    for in_channels, num_classes, shape in [(1, 10, (5, 1, 8, 8)), (3, 2, (1, 3, 11, 4))]:
        model = assembled_smallcnn(in_channels, num_classes).eval()
        with torch.no_grad():
            logits = model(torch.randn(*shape))
        assert isinstance(logits, torch.Tensor) and tuple(logits.shape) == (
            shape[0],
            num_classes,
        ), (
            f"SmallCNN.forward: a {shape} batch gave "
            f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits)}; "
            f"expected ({shape[0]}, {num_classes}) logits"
        )


# ---- it trains -------------------------------------------------------------------------------
def test_smallcnn_overfits_a_small_batch():
    data = load_data(DataConfig(dataset="digits"), seed=0)
    x, y = data.train.inputs[:32], data.train.targets[:32]  # (32, 1, 8, 8), (32,)
    torch.manual_seed(0)
    model = SmallCNN(1, 10, widths=(8, 16))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    first = None
    for _ in range(60):
        loss = F.cross_entropy(model(x), y)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).double().mean().item()
    assert loss.item() < 0.5 and accuracy >= 0.9, (
        f"SmallCNN: 60 Adam steps on one batch of 32 digits took the loss from {first:.3f} "
        f"to {loss.item():.3f}, accuracy {accuracy:.2f}; expected < 0.5 and >= 0.9"
    )
