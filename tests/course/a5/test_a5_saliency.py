"""Part 4: saliency (`input_gradient` and `saliency` in `dlcc.explain.methods`): the input
gradient of a class's logit against torch.autograd.grad taken image by image on a twin built
here (float64), called under torch.no_grad() too, with the parameters left without gradients;
saliency on a linear model, whose gradient of logit k is its weight row W[k], so the map is
the largest |W[k]| over the channels; and saliency on a small network against autograd.

When graded, the network is built in the learner's process from a state_dict sent as data
(`a5_helpers.run_explain`); the maps come back as data and are checked here.
"""

from __future__ import annotations

import torch
from a5_helpers import check_close, check_untouched, network_and_state, randn, run_explain

CONV = "tiny_conv"
LINEAR = "linear_classifier"


def oracle_gradients(network, inputs, classes):
    """d logit[classes[b]] / d inputs[b] for each image b alone, in float64: (B, C, H, W)."""
    twin = network.double()
    rows = []
    for b in range(len(inputs)):
        leaf = inputs[b : b + 1].double().clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(twin(leaf)[0, classes[b]], leaf)
        rows.append(gradient[0])
    network.float()
    return torch.stack(rows)


def check_map(what, got, expected, *, rtol=1e-4, atol=1e-6):
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        described = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise AssertionError(f"{what}: shape {tuple(expected.shape)} expected, got {described}")
    if got.dtype != torch.float32 or got.device.type != "cpu":
        raise AssertionError(
            f"{what}: float32 on the CPU expected, got {got.dtype} on {got.device}"
        )
    check_close(what, got, expected, rtol=rtol, atol=atol)


def conv_case(sizes, seed, batch):
    network, state = network_and_state(CONV, sizes, seed, scale=2.0)
    inputs = randn(batch, sizes["channels"], sizes["size"], sizes["size"], seed=seed + 1)
    classes = torch.arange(batch) % sizes["classes"]
    return network, state, inputs.float(), classes


def test_input_gradient_matches_autograd():
    for seed, (sizes, batch) in enumerate(
        [
            ({"channels": 2, "size": 5, "classes": 3}, 4),
            ({"channels": 1, "size": 6, "classes": 2}, 1),
            ({"channels": 3, "size": 4, "classes": 4}, 5),
        ]
    ):
        network, state, inputs, classes = conv_case(sizes, 10 * seed, batch)
        result = run_explain("input_gradient", CONV, sizes, state, inputs, classes)
        check_map(
            f"input_gradient (small conv network, inputs {tuple(inputs.shape)}, classes "
            f"{classes.tolist()})",
            result["maps"],
            oracle_gradients(network, inputs, classes),
        )


def test_input_gradient_under_no_grad_leaves_the_parameters_alone():
    """`dlcc explain` may call it under torch.no_grad(); the model's parameters must get no
    .grad (autograd.grad, not backward) and its mode stays as it was."""
    sizes = {"channels": 2, "size": 4, "classes": 3}
    network, state, inputs, classes = conv_case(sizes, 40, 3)
    result = run_explain("input_gradient", CONV, sizes, state, inputs, classes, no_grad=True)
    what = "input_gradient (called under torch.no_grad())"
    check_map(what, result["maps"], oracle_gradients(network, inputs, classes))
    check_untouched(what, result, training=False)


def test_saliency_of_a_linear_model_is_its_weights():
    """logit_k = <W[k], x> + b_k, so d logit_k / d x = W[k]: the map of class k is the largest
    |W[k]| over the channels, whatever the image."""
    shape, classes_count = (3, 4, 5), 4
    sizes = {"shape": shape, "classes": classes_count}
    _, state = network_and_state(LINEAR, sizes, seed=50)
    weight = state["linear.weight"].view(classes_count, *shape)  # (K, C, H, W)
    inputs = randn(6, *shape, seed=51).float()
    classes = torch.tensor([0, 3, 1, 2, 3, 0])
    result = run_explain("saliency", LINEAR, sizes, state, inputs, classes)
    check_map(
        f"saliency (linear model, images {tuple(inputs.shape)}, classes {classes.tolist()})",
        result["maps"],
        weight[classes].abs().amax(dim=1),  # (B, H, W)
        rtol=1e-6,
    )
    check_untouched("saliency (linear model)", result, training=False)


def test_saliency_is_the_largest_absolute_gradient_over_channels():
    for seed, (sizes, batch) in enumerate(
        [
            ({"channels": 3, "size": 5, "classes": 3}, 4),
            ({"channels": 1, "size": 6, "classes": 2}, 2),
            ({"channels": 2, "size": 4, "classes": 5}, 5),
        ]
    ):
        network, state, inputs, classes = conv_case(sizes, 60 + 10 * seed, batch)
        result = run_explain("saliency", CONV, sizes, state, inputs, classes)
        expected = oracle_gradients(network, inputs, classes).abs().amax(dim=1)  # (B, H, W)
        check_map(
            f"saliency (small conv network, inputs {tuple(inputs.shape)})",
            result["maps"],
            expected,
        )
