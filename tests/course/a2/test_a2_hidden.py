"""The hidden tests of Assignment 2: the same regions as the public tests, on other cases
(random shapes and settings, gradient accumulation, loss scaling, label smoothing, kept
predictions, depthwise stages, momentum cycling).

Every test here is hidden in the catalogue, so a release leaves this file out. Each grades
the region(s) the catalogue lists for it. Hidden tests run only in the grader's trusted
process: what they make on the learner's side is made by the public `a2_helpers`.
"""

from __future__ import annotations

import test_a2_autograd as autograd_tests
import test_a2_loop as loop_tests
import test_a2_model as model_tests
import test_a2_onecycle as onecycle_tests
import torch
from a2_autograd_helpers import jacobian_of_matrix_map, sin_times_x
from a2_helpers import (
    PlainCNN,
    batches_of,
    blobs,
    check_close,
    describe_features,
    evaluate,
    features_of,
    flat_parameters,
    load_into_twin,
    parameters_of,
    recording_scaler,
    scheduled_rates,
    sgd_for,
    state_of,
    tiny_mlp,
    train_epoch,
    twins,
)
from torch import nn

from dlcc.models.cnn import SmallCNN


# ---- Part 1 ---------------------------------------------------------------------------------
def test_jacobian_random_shapes():
    generator = torch.Generator().manual_seed(100)
    for seed in range(6):
        rows, columns = (int(v) for v in torch.randint(1, 9, (2,), generator=generator))
        matrix = torch.randn(rows, columns, generator=generator, dtype=torch.float64)
        x = torch.randn(columns, generator=generator, dtype=torch.float64)
        check_close(
            f"jacobian of x -> A sin(x) * x, A ({rows}, {columns}), case {seed}",
            jacobian_of_matrix_map(matrix, sin_times_x, x),  # x -> A (sin(x) * x), there
            matrix * (torch.cos(x) * x + torch.sin(x)),
        )


def test_two_layer_backward_random_shapes():
    generator = torch.Generator().manual_seed(101)
    for seed in range(6):
        batch, features, hidden, classes = (
            int(v) for v in torch.randint(1, 12, (4,), generator=generator)
        )
        autograd_tests.check_two_layer_backward(
            batch, features, hidden, max(classes, 2), seed=200 + seed
        )


# ---- Part 2 ---------------------------------------------------------------------------------
def test_train_one_epoch_accumulates_gradients():
    x, y = blobs(64, seed=10)
    model, twin = twins(tiny_mlp, seed=10)
    train_epoch(model, batches_of(x, y, 8), sgd_for(model, lr=0.3), accumulate=2)
    # Two micro-batches of 8 per step are one batch of 16, when the loss is divided by 2.
    loop_tests.plain_epoch(twin, batches_of(x, y, 16), torch.optim.SGD(twin.parameters(), lr=0.3))
    got, expected = parameters_of(model), flat_parameters(twin)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6), (
        f"train_one_epoch(accumulate=2): the weights differ from steps on batches twice as "
        f"large (max abs. difference {(got - expected).abs().max():.2e}): backpropagate "
        "loss / accumulate, and clear the gradients after the step, not before each backward"
    )


def test_train_one_epoch_uses_the_grad_scaler_and_label_smoothing():
    x, y = blobs(48, seed=11)
    model, twin = twins(tiny_mlp, seed=11)
    scaler = recording_scaler("cpu", init_scale=1024.0)  # enabled: scales on CPU too
    optimizer = sgd_for(model, lr=0.2, momentum=0.9)
    train_epoch(model, batches_of(x, y, 12), optimizer, scaler=scaler, label_smoothing=0.1)
    loop_tests.plain_epoch(
        twin,
        batches_of(x, y, 12),
        torch.optim.SGD(twin.parameters(), lr=0.2, momentum=0.9),
        smoothing=0.1,
    )
    used = sorted(set(scaler.calls))  # what the scaler recorded, in the learner's process
    assert used == ["scale", "step", "update"], (
        f"train_one_epoch: the GradScaler's {', '.join(used) or 'no methods'} were called; "
        "expected scaler.scale(loss / accumulate).backward(), scaler.step(optimizer) and "
        "scaler.update(): mixed precision (fp16) needs all three"
    )
    got, expected = parameters_of(model), flat_parameters(twin)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6), (
        f"train_one_epoch with a GradScaler (scale 1024) and label_smoothing 0.1: the weights "
        f"differ from a plain loop's (max abs. difference {(got - expected).abs().max():.2e}): "
        "scaler.scale(loss).backward(), scaler.step(optimizer), scaler.update(), and "
        "label smoothing in ClassificationTask.loss (self.label_smoothing)"
    )


def test_evaluate_hands_every_batch_to_the_reporter():
    x, y = blobs(13, classes=5, seed=12)
    model, twin = twins(nn.Linear, 12, 5, seed=12)

    class Keep:  # the learner's evaluate calls its update here, with the batches as data
        def __init__(self):
            self.outputs, self.targets = [], []

        def update(self, inputs, outputs, targets):
            self.outputs.append(outputs)
            self.targets.append(targets)

    reporter = Keep()
    evaluate(model, batches_of(x, y, 4), num_classes=5, reporter=reporter)
    with torch.no_grad():
        expected = twin(x)
    tensors = all(isinstance(output, torch.Tensor) for output in reporter.outputs)
    got = torch.cat(reporter.outputs) if reporter.outputs and tensors else torch.zeros(0)
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-6), (
        "evaluate(reporter=...): the reporter did not receive each batch's outputs (the "
        "model's float32 logits), in order: define `outputs` as the model's output"
    )
    targets = all(isinstance(target, torch.Tensor) for target in reporter.targets)
    assert targets and torch.equal(torch.cat(reporter.targets), y), (
        "evaluate(reporter=...): the reporter's targets are not the batches' labels in order"
    )


# ---- Part 3 ---------------------------------------------------------------------------------
def test_smallcnn_depthwise_stages():
    model = SmallCNN(3, 5, widths=(8, 16), blocks_per_stage=2, depthwise=True)
    described = describe_features(model)
    kinds = [block["kind"] for block in described]
    expected_kinds = [
        "ConvBNReLU",
        "DepthwiseSeparable",
        "DepthwiseSeparable",
        "DepthwiseSeparable",
    ]
    assert kinds == expected_kinds, (
        f"SmallCNN.__init__(depthwise=True): features are {kinds}; expected {expected_kinds} "
        "(the stem stays an ordinary conv; build the other blocks with block(...))"
    )
    assert all(block["depthwise"] for block in described[1:]), (
        "SmallCNN.__init__(depthwise=True): the blocks after the stem are not the module's "
        "DepthwiseSeparable; build them with block(...)"
    )
    strides = [block["convs"][0][2] for block in described[1:]]
    assert strides == [1, 2, 1], (
        f"SmallCNN.__init__(depthwise=True): block strides {strides}; expected [1, 2, 1]"
    )
    # stem 9*3*8 + 16; each depthwise-separable block: 9*c_in + 2*c_in (depthwise + BN) and
    # c_in*c_out + 2*c_out (pointwise + BN); head 16*5 + 5.
    blocks = [(8, 8), (8, 16), (16, 16)]
    expected = 9 * 3 * 8 + 16 + 16 * 5 + 5
    expected += sum(11 * c_in + c_in * c_out + 2 * c_out for c_in, c_out in blocks)
    got = model_tests.trainable_parameters(model)
    assert got == expected, (
        f"SmallCNN.__init__(depthwise=True): {got} trainable parameters; a count by hand gives "
        f"{expected}"
    )
    twin = PlainCNN(5, [(3, 8, 1), (8, 8, 1), (8, 16, 2), (16, 16, 1)], depthwise=True)
    load_into_twin(twin, state_of(model), "SmallCNN.__init__(depthwise=True)")
    model_tests.check_features_compute(
        model, twin, "depthwise-separable blocks", [(9, 9, 5, 5), (4, 7, 2, 4)], 16
    )
    wide = SmallCNN(1, 3, widths=(4, 8, 16, 32), blocks_per_stage=1)
    features = features_of(wide, torch.zeros(1, 1, 17, 17))
    assert tuple(features.shape) == (1, 32, 3, 3), (
        f"SmallCNN.__init__: four stages of one block on a 17x17 image give features of shape "
        f"{tuple(features.shape)}; expected (1, 32, 3, 3)"
    )
    wide_twin = PlainCNN(3, [(1, 4, 1), (4, 8, 2), (8, 16, 2), (16, 32, 2)])
    load_into_twin(wide_twin, state_of(wide), "SmallCNN.__init__ (four stages)")
    model_tests.check_features_compute(wide, wide_twin, "four stages", [(17, 17, 3, 3)], 32)


# ---- Part 4 ---------------------------------------------------------------------------------
def test_onecycle_lr_random_settings():
    generator = torch.Generator().manual_seed(13)
    for _ in range(6):
        total_steps = int(torch.randint(8, 300, (1,), generator=generator))
        pct_start = 0.1 + 0.6 * float(torch.rand(1, generator=generator))
        if pct_start * total_steps < 2:
            continue
        peak_lr = float(10 ** (-4 + 4 * torch.rand(1, generator=generator)))
        div_factor = float(2 + 48 * torch.rand(1, generator=generator))
        final_div_factor = float(10 ** (1 + 4 * torch.rand(1, generator=generator)))
        onecycle_tests.check_onecycle_lr(
            total_steps, peak_lr, pct_start, div_factor, final_div_factor
        )


def test_build_scheduler_onecycle_cycles_momentum():
    for kind in ("sgd", "adamw"):
        schedule = {"name": "onecycle", "pct_start": 0.4, "div_factor": 20.0}
        run = scheduled_rates(kind, 0.01, schedule, 30, 6)  # in the learner's process
        assert run["is_lr_scheduler"], (
            f"build_scheduler(onecycle) with {kind}: a torch LR scheduler expected, got "
            f"{run['scheduler']}"
        )
        got_lrs, got_momenta = run["lrs"], run["momenta"]
        lrs, momenta = onecycle_tests.torch_onecycle(kind, 30, 0.01, 0.4, 20.0, 1e4)
        assert max(abs(a - b) for a, b in zip(got_lrs, lrs, strict=True)) < 1e-12, (
            f"build_scheduler(onecycle) with {kind}: the lr differs from OneCycleLR's"
        )
        name = "beta1" if kind == "adamw" else "momentum"
        assert max(abs(a - b) for a, b in zip(got_momenta, momenta, strict=True)) < 1e-12, (
            f"build_scheduler(onecycle) with {kind}: {name} does not cycle as OneCycleLR "
            f"cycles it ({got_momenta[0]:.3g}, {got_momenta[12]:.3g}, ... expected "
            f"{momenta[0]:.3g}, {momenta[12]:.3g}): keep its default cycle_momentum=True"
        )
