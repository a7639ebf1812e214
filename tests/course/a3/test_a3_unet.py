"""Part 1: the U-Net (`dlcc.models.unet`): ConvBlock.forward, Up.forward and UNet.forward,
each against a functional oracle written here, and the output shapes for any input size.

When graded, the learner's modules live in the learner's process: their weights (redrawn
here, so that BatchNorm in evaluation mode is not the identity) are sent there, and what the
oracle needs comes back as data. Up.forward is graded with its ConvBlock replaced by the
identity, and UNet.forward with stand-in blocks and up-sampling steps (`a3_helpers`), so
each test grades one region; the whole network's tests need all three.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from a3_helpers import (
    check_close,
    load_state,
    made,
    outputs_of,
    plain_conv,
    randn,
    randomised_state,
    state_of,
    with_stand_in_parts,
    without_block,
)

BN_EPS = 1e-5


# ---- the oracle: a U-Net written with torch.nn.functional, from a state_dict -----------------
def batch_norm(x: torch.Tensor, state: dict, prefix: str) -> torch.Tensor:
    """BatchNorm in evaluation mode: the running statistics, then the scale and shift."""
    return F.batch_norm(
        x,
        state[f"{prefix}running_mean"],
        state[f"{prefix}running_var"],
        state[f"{prefix}weight"],
        state[f"{prefix}bias"],
        training=False,
        eps=BN_EPS,
    )


def conv_block(x: torch.Tensor, state: dict, prefix: str, residual: bool) -> torch.Tensor:
    """(conv 3x3, BN, ReLU), (conv 3x3, BN), + the input or its 1x1 projection, ReLU."""
    out = F.relu(batch_norm(plain_conv(x, state[f"{prefix}conv1.weight"]), state, f"{prefix}bn1."))
    out = batch_norm(plain_conv(out, state[f"{prefix}conv2.weight"]), state, f"{prefix}bn2.")
    if residual:
        projection = state.get(f"{prefix}shortcut.weight")
        out = out + (x if projection is None else F.conv2d(x, projection))
    return F.relu(out)


def up_sample(x: torch.Tensor, state: dict, prefix: str) -> torch.Tensor:
    """Up's `up`: a 2x2 transposed conv of stride 2, or bilinear 2x then a 1x1 conv."""
    if f"{prefix}up.weight" in state:  # "transpose"
        return F.conv_transpose2d(x, state[f"{prefix}up.weight"], state[f"{prefix}up.bias"], 2)
    x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    return F.conv2d(x, state[f"{prefix}up.1.weight"], state[f"{prefix}up.1.bias"])


def stand_in_block(x: torch.Tensor, state: dict, prefix: str, residual: bool) -> torch.Tensor:
    """`a3_helpers.stand_in_block`, functionally: conv1, tanh, conv2."""
    hidden = torch.tanh(plain_conv(x, state[f"{prefix}conv1.weight"]))
    return plain_conv(hidden, state[f"{prefix}conv2.weight"])


def unet(x, state, depth, residual=False, block=conv_block, stand_in_ups=False):
    """The U-Net's forward pass: pad to a multiple of 2**depth, the encoder keeping each
    level's map, the bottleneck, the decoder concatenating the skips (skip first), the 1x1
    head, the crop. With `stand_in_ups`, the decoder is `a3_helpers.stand_in_up`'s."""
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % 2**depth, -width % 2**depth
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    skips = [block(x, state, "stem.", residual)]
    for level in range(depth):
        pooled = F.max_pool2d(skips[-1], 2)
        skips.append(block(pooled, state, f"downs.{level}.block.", residual))
    x = skips.pop()
    for index in range(depth):
        prefix, skip = f"ups.{index}.", skips.pop()
        upsampled = up_sample(x, state, prefix)
        joined = [upsampled, 0.5 * skip] if stand_in_ups else [skip, upsampled]
        x = block(torch.cat(joined, dim=1), state, f"{prefix}block.", residual)
    return F.conv2d(x, state["head.weight"], state["head.bias"])[..., :height, :width]


def randomised(model, seed: int) -> dict:
    """Redraw the (learner's) module's weights and buffers here, load them there; the state."""
    state = randomised_state(state_of(model), seed)
    load_state(model, state)
    return state


# ---- ConvBlock.forward -----------------------------------------------------------------------
def check_conv_block(in_channels: int, out_channels: int, residual: bool, seed: int) -> None:
    block = made("ConvBlock", in_channels, out_channels, residual=residual, seed=seed)
    state = randomised(block, seed)
    what = f"ConvBlock({in_channels}, {out_channels}, residual={residual})"
    for case, (height, width) in enumerate([(9, 7), (1, 1), (4, 12)]):
        x = randn(2, in_channels, height, width, seed=seed + case)
        got = outputs_of(block, x)  # evaluation mode, no gradients
        expected = conv_block(x, state, "", residual)
        check_close(f"{what} on a {tuple(x.shape)} batch", got, expected, rtol=1e-8, atol=1e-9)


def test_conv_block_matches_a_functional_oracle():
    check_conv_block(3, 5, residual=False, seed=1)
    check_conv_block(6, 2, residual=False, seed=2)


def test_conv_block_residual_adds_the_input():
    check_conv_block(4, 4, residual=True, seed=3)  # the identity shortcut: C_in == C_out


# ---- Up.forward ------------------------------------------------------------------------------
def test_up_upsamples_and_concatenates_the_skip_first():
    for seed, upsampling in enumerate(("bilinear", "transpose")):
        up = without_block(made("Up", 8, 4, upsampling, seed=10 + seed))
        state = randomised(up, 10 + seed)
        x, skip = randn(2, 8, 3, 5, seed=seed), randn(2, 4, 6, 10, seed=seed + 5)
        got = outputs_of(up, x, skip)  # with self.block the identity: the concatenation
        expected = torch.cat([skip, up_sample(x, state, "")], dim=1)  # (2, 8, 6, 10)
        check_close(
            f"Up(8, 4, {upsampling!r}) (its block replaced by the identity) on x (2, 8, 3, 5) "
            "and a skip (2, 4, 6, 10): expected cat([skip, self.up(x)], dim=1)",
            got,
            expected,
            rtol=1e-8,
            atol=1e-9,
        )


# ---- UNet.forward ----------------------------------------------------------------------------
def test_unet_forward_wires_the_encoder_skips_and_decoder():
    cases = [("bilinear", (2, 2, 12, 16)), ("transpose", (1, 2, 13, 10))]
    for seed, (upsampling, shape) in enumerate(cases):
        model = made("UNet", 2, 3, depth=2, width=4, upsampling=upsampling, seed=20 + seed)
        model = with_stand_in_parts(model)  # stand-in blocks and up steps, not the learner's
        state = randomised(model, 20 + seed)
        x = randn(*shape, seed=seed)
        got = outputs_of(model, x)
        expected = unet(x, state, 2, block=stand_in_block, stand_in_ups=True)
        check_close(
            f"UNet(2, 3, depth=2, width=4, upsampling={upsampling!r}) on a {shape} batch, "
            "with stand-in blocks (the skips go to the ups deepest first; the bottleneck is "
            "the deepest level)",
            got,
            expected,
            rtol=1e-8,
            atol=1e-9,
        )


def check_unet(in_channels, num_classes, depth, width, residual, upsampling, shape, seed):
    model = made(
        "UNet",
        in_channels,
        num_classes,
        depth=depth,
        width=width,
        residual=residual,
        upsampling=upsampling,
        seed=seed,
    )
    state = randomised(model, seed)
    x = randn(*shape, seed=seed)
    check_close(
        f"UNet({in_channels}, {num_classes}, depth={depth}, width={width}, residual={residual}, "
        f"upsampling={upsampling!r}) on a {shape} batch",
        outputs_of(model, x),
        unet(x, state, depth, residual),
        rtol=1e-8,
        atol=1e-9,
    )


def test_unet_matches_a_functional_oracle():
    check_unet(1, 2, 2, 4, False, "bilinear", (2, 1, 13, 10), seed=30)
    check_unet(3, 1, 2, 4, True, "transpose", (1, 3, 8, 12), seed=31)


def check_shapes(in_channels, num_classes, depth, width, sizes) -> None:
    for residual in (False, True):
        for upsampling in ("bilinear", "transpose"):
            model = made(
                "UNet",
                in_channels,
                num_classes,
                depth=depth,
                width=width,
                residual=residual,
                upsampling=upsampling,
            )
            for height, width_px in sizes:
                x = randn(2, in_channels, height, width_px)
                logits = outputs_of(model, x)
                got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits)
                expected = (2, num_classes, height, width_px)
                assert got == expected, (
                    f"UNet({in_channels}, {num_classes}, depth={depth}, residual={residual}, "
                    f"upsampling={upsampling!r}) on a {tuple(x.shape)} batch gave {got}; "
                    f"expected {expected}: one logit map per class, the input's size"
                )


def test_unet_output_shapes_for_any_size():
    check_shapes(1, 2, depth=3, width=2, sizes=[(1, 1), (7, 13), (37, 50), (16, 16)])
