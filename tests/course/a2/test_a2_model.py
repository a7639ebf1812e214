"""Part 3: the model (`SmallCNN` in `dlcc.models.cnn`): its stages, its parameter count
against a count by hand, its forward pass, and that it trains.

The tests of `SmallCNN.__init__` look only at `model.features` (the stem and the stages);
the tests of `SmallCNN.forward` run it on a model put together from stand-in parts, so
each grades one region. Only the last test needs both.

When graded, the learner's SmallCNN lives in the learner's process: its blocks and
parameters come back described as data, and its weights as a state_dict, which loads into
a plain twin made here (`a2_helpers.PlainCNN`) whose outputs the learner's must match.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from a2_helpers import (
    PlainCNN,
    accuracy_of,
    assembled_smallcnn,
    check_close,
    describe_features,
    features_of,
    load_into_twin,
    outputs_of,
    overfit_smallcnn,
    parameter_shapes,
    recorded_forward,
    smallcnn_parts,
    state_dict_copy,
    state_of,
)

from dlcc.models.cnn import SmallCNN
from dlcc.training.config import DataConfig
from dlcc.training.data import load_data


def trainable_parameters(model) -> int:
    """The trainable parameters of the (learner's) model, counted from their shapes."""
    return sum(math.prod(shape) for _, shape, trainable in parameter_shapes(model) if trainable)


def describe_blocks(model) -> list[tuple[int, int, int]]:
    """(in_channels, out_channels, stride) of each ConvBNReLU block in `model.features`."""
    blocks = []
    for block in describe_features(model):
        if not block["conv_bn_relu"] or not block["convs"]:
            raise AssertionError(
                f"SmallCNN.__init__: features holds a {block['kind']}; expected only "
                "blocks made by block(...) or ConvBNReLU(...)"
            )
        blocks.append(tuple(block["convs"][0][:3]))
    return blocks


def check_features_compute(model, twin, what: str, shapes, channels: int) -> None:
    """The learner's model.features on random images of each (height, width, out_height,
    out_width) in `shapes`: the expected shape, and the twin's values (with its weights)."""
    in_channels = twin.features[0][0].in_channels
    twin.eval()
    for seed, (height, width, out_height, out_width) in enumerate(shapes):
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(2, in_channels, height, width, generator=generator)
        features = features_of(model, x)
        assert tuple(features.shape) == (2, channels, out_height, out_width), (
            f"SmallCNN.__init__: features of a (2, {in_channels}, {height}, {width}) batch have "
            f"shape {tuple(features.shape)}; expected (2, {channels}, {out_height}, {out_width})"
        )
        with torch.no_grad():
            expected = twin.features(x)
        check_close(
            f"SmallCNN.__init__: features of a (2, {in_channels}, {height}, {width}) batch "
            f"({what})",
            features,
            expected,
            rtol=1e-4,
            atol=1e-5,
        )


# ---- the stages ----------------------------------------------------------------------------
def test_smallcnn_stages_follow_the_design():
    model = SmallCNN(1, 10, widths=(8, 16, 32), blocks_per_stage=2)
    blocks = describe_blocks(model)
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
    state = state_of(model)
    head_in = state["head.weight"].shape[1]
    assert head_in == 32, (
        f"SmallCNN.__init__: the head takes {head_in} features; expected 32 "
        "(set `channels` to the last block's output channels)"
    )
    twin = load_into_twin(PlainCNN(10, expected), state, "SmallCNN.__init__")
    shapes = [(28, 28, 7, 7), (9, 10, 3, 3), (1, 1, 1, 1)]
    check_features_compute(model, twin, "conv-BN-ReLU blocks of the design", shapes, 32)


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
def assembled(in_channels: int, num_classes: int, dropout: float = 0.0):
    """(the learner's SmallCNN put together from stand-in parts, without its __init__: two
    plain convolutions, then the pool, dropout and head SmallCNN uses; those parts here)."""
    parts = smallcnn_parts(in_channels, num_classes, dropout)
    return assembled_smallcnn(in_channels, num_classes, dropout, state_dict_copy(parts)), parts


def test_smallcnn_forward_runs_features_pool_dropout_head():
    model, parts = assembled(3, 4, dropout=0.5)
    x = torch.randn(2, 3, 9, 7)
    run = recorded_forward(model, x)  # in evaluation mode, without gradients
    calls, logits = [tuple(call) for call in run["calls"]], run["logits"]
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
        pooled = parts.features(x).mean(dim=(2, 3))  # (2, 5)
        expected = pooled @ parts.head.weight.T + parts.head.bias
    check_close("SmallCNN.forward: logits", logits, expected, rtol=1e-5, atol=1e-6)


def test_smallcnn_forward_output_shapes():
    for in_channels, num_classes, shape in [(1, 10, (5, 1, 8, 8)), (3, 2, (1, 3, 11, 4))]:
        model, _ = assembled(in_channels, num_classes)
        logits = outputs_of(model, torch.randn(*shape))  # in evaluation mode
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
    # 60 Adam steps (lr 0.01) on the learner's SmallCNN(1, 10, widths=(8, 16)), there; its
    # weights afterwards, in a twin here, give the loss and accuracy.
    run = overfit_smallcnn(x, y, steps=60, lr=0.01)
    first = run["losses"][0]
    twin = load_into_twin(
        PlainCNN(10, [(1, 8, 1), (8, 16, 2)]), run["state"], "SmallCNN(1, 10, widths=(8, 16))"
    )
    accuracy = accuracy_of(twin, x, y)
    training = copy.deepcopy(twin).train()  # BatchNorm on the batch's statistics, as it trained
    with torch.no_grad():
        loss = F.cross_entropy(training(x), y).item()
    assert loss < 0.5 and accuracy >= 0.9, (
        f"SmallCNN: 60 Adam steps on one batch of 32 digits took the loss from {first:.3f} "
        f"to {loss:.3f}, accuracy {accuracy:.2f}; expected < 0.5 and >= 0.9"
    )
