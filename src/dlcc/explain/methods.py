"""Four ways to ask a trained network which input pixels its answer depends on.

Each method takes a model (in eval mode), inputs (B, C, H, W) as the model takes them
(standardised) and a score function ``outputs -> (B,)`` (`dlcc.explain.targets`), and
returns maps (B, H, W), float32 on the CPU, larger where the score depends more on the
pixel:

- `saliency`: |d score / d input|, the largest over channels (Simonyan et al. 2014);
- `smoothgrad`: the input gradient averaged over noisy copies of the input, then as
  saliency (Smilkov et al. 2017): less speckled;
- `gradcam`: a conv layer's feature maps weighted by their mean gradient, rectified and
  resized to the input (Selvaraju et al. 2017): coarse, class-specific;
- `occlusion`: how much the score drops when a square patch is replaced by a baseline,
  averaged over the patches covering each pixel (Zeiler and Fergus 2014): no gradients.

Scores of different images in a batch do not interact (eval mode), so one backward pass
of their sum gives every image its own gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dlcc.errors import DlccError
from dlcc.explain.targets import ScoreFn


class ExplainError(DlccError):
    """A method that cannot be used on this model or with these settings."""


def input_gradient(model: nn.Module, inputs: torch.Tensor, score: ScoreFn) -> torch.Tensor:
    """d score / d inputs: (B, C, H, W), each image's gradient of its own score."""
    # BEGIN SOLUTION input_gradient: d score / d inputs, (B, C, H, W), by one backward pass
    with torch.enable_grad():
        inputs = inputs.detach().float().requires_grad_(True)
        total = score(model(inputs).float()).sum()
        (gradient,) = torch.autograd.grad(total, inputs)
    return gradient
    # END SOLUTION
    # BEGIN PROMPT
    # Under torch.enable_grad() (a caller may be in no_grad): a float32 leaf of the inputs
    # (inputs.detach().float().requires_grad_(True)), (B, C, H, W); the model's outputs
    # (cast .float()) through score, (B,); then torch.autograd.grad of the scores' sum with
    # respect to the leaf. The images do not interact (eval mode), so row b of the gradient of
    # the sum is image b's own gradient. autograd.grad, not .backward(): the parameters must
    # get no .grad. Return the gradient, (B, C, H, W).
    # END PROMPT


def _channel_max_abs(gradient: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H, W): the largest |value| over channels, on the CPU."""
    return gradient.abs().amax(dim=1).float().cpu()


def saliency(model: nn.Module, inputs: torch.Tensor, score: ScoreFn) -> torch.Tensor:
    """Vanilla saliency: (B, C, H, W) inputs -> (B, H, W) max over channels of |gradient|."""
    # BEGIN SOLUTION saliency: the largest |d score / d input| over the channels, (B, H, W)
    return _channel_max_abs(input_gradient(model, inputs, score))
    # END SOLUTION
    # BEGIN PROMPT
    # The input gradient (your input_gradient above), (B, C, H, W); its absolute value; the
    # largest over the channels (amax over dim 1), (B, H, W): a pixel counts as much as its
    # most sensitive channel. Return it as float32 on the CPU.
    # END PROMPT


def smoothgrad(
    model: nn.Module,
    inputs: torch.Tensor,
    score: ScoreFn,
    samples: int = 25,
    noise: float = 0.15,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SmoothGrad: (B, C, H, W) -> (B, H, W), |mean gradient over `samples` noisy copies|.

    The noise is Gaussian with a standard deviation of `noise` times each image's value
    range (max - min), the paper's 10-20%.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ExplainError(f"--samples: expected an integer >= 1, received {samples!r}")
    if not noise >= 0:
        raise ExplainError(f"--noise: expected a fraction >= 0 of the value range, got {noise!r}")
    inputs = inputs.detach().float()
    spread = inputs.flatten(1).amax(dim=1) - inputs.flatten(1).amin(dim=1)  # (B,)
    sigma = (noise * spread).view(-1, 1, 1, 1)
    total = torch.zeros_like(inputs)
    for _ in range(samples):
        draw = torch.randn(
            inputs.shape, generator=generator, device=inputs.device, dtype=inputs.dtype
        )
        total += input_gradient(model, inputs + sigma * draw, score)
    return _channel_max_abs(total / samples)


def conv_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every named module holding a Conv2d (itself or inside), by name, in model order."""
    return {
        name: module
        for name, module in model.named_modules()
        if name and any(isinstance(child, nn.Conv2d) for child in module.modules())
    }


def default_layer(model: nn.Module, inputs: torch.Tensor) -> str:
    """The name of the last conv layer to run: the module holding a Conv2d whose forward
    finishes last, with a (B, C, h, w) output, leaving out a final 1x1 conv (a linear
    read-out, such as a U-Net's head, whose maps are the outputs themselves).

    A block (conv-BN-ReLU, a stage) finishes after its last conv, so Grad-CAM sees its
    rectified maps rather than the conv's raw output.
    """
    candidates = conv_layers(model)
    if not candidates:
        raise ExplainError(
            f"Grad-CAM needs a conv layer; {type(model).__name__} has none: use --method "
            "saliency, smoothgrad or occlusion"
        )
    finished: list[str] = []
    handles = [
        module.register_forward_hook(
            lambda _module, _inputs, output, name=name: (
                finished.append(name) if torch.is_tensor(output) and output.ndim == 4 else None
            )
        )
        for name, module in candidates.items()
    ]
    try:
        with torch.no_grad():
            model(inputs[:1])
    finally:
        for handle in handles:
            handle.remove()
    order = list(dict.fromkeys(reversed(finished)))  # the last to finish first
    for name in order:
        module = candidates[name]
        is_head = isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1)
        if not (is_head and name == order[0]):
            return name
    raise ExplainError(
        f"Grad-CAM found no conv layer with (B, C, h, w) maps in {type(model).__name__}; "
        "name one with --layer"
    )


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The module called `name` (as in ``model.named_modules()``); ExplainError listing the
    conv layers otherwise."""
    modules = dict(model.named_modules())
    if name not in modules or not name:
        names = ", ".join(conv_layers(model)) or "(none)"
        raise ExplainError(f"--layer {name!r}: no such module; the conv layers are: {names}")
    return modules[name]


def gradcam(
    model: nn.Module, inputs: torch.Tensor, score: ScoreFn, layer: str | None = None
) -> torch.Tensor:
    """Grad-CAM: (B, C, H, W) -> (B, H, W) = ReLU(sum_k w_k A_k), resized to H x W.

    A (B, K, h, w) are `layer`'s output maps (default `default_layer`), and w_k (B, K) the
    mean over h, w of d score / d A_k. Bilinear up-sampling to the input's size.
    """
    inputs = inputs.detach().float()
    name = layer or default_layer(model, inputs)
    module = find_layer(model, name)
    captured: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, output: captured.append(output))
    try:
        with torch.enable_grad():
            total = score(model(inputs).float()).sum()
            if not captured or not torch.is_tensor(captured[-1]) or captured[-1].ndim != 4:
                raise ExplainError(
                    f"--layer {name!r} gives no (B, C, h, w) maps; choose a conv layer"
                )
            maps = captured[-1]  # (B, K, h, w)
            (gradient,) = torch.autograd.grad(total, maps)
    finally:
        handle.remove()
    weights = gradient.mean(dim=(2, 3), keepdim=True)  # (B, K, 1, 1)
    cam = F.relu((weights * maps.detach()).sum(dim=1, keepdim=True))  # (B, 1, h, w)
    cam = F.interpolate(cam.float(), size=inputs.shape[-2:], mode="bilinear", align_corners=False)
    return cam[:, 0].cpu()  # (B, H, W)


def occlusion(
    model: nn.Module,
    inputs: torch.Tensor,
    score: ScoreFn,
    patch: int | None = None,
    stride: int | None = None,
    baseline: float = 0.0,
    batch_size: int = 64,
) -> torch.Tensor:
    """Occlusion sensitivity: (B, C, H, W) -> (B, H, W).

    Each patch x patch square (every `stride` pixels; the last one flush with the edge) is
    set to `baseline` (0: the training mean, for standardised inputs) in every channel; a
    pixel's value is the mean of score(image) - score(occluded image) over the patches that
    cover it. Default patch: an eighth of the shorter side (at least 2), stride patch / 2.
    """
    inputs = inputs.detach().float()
    batch, _, height, width = inputs.shape
    patch = patch or max(2, min(height, width) // 8)
    stride = stride or max(1, patch // 2)
    if patch < 1 or stride < 1 or patch > min(height, width):
        raise ExplainError(
            f"--patch {patch} / --stride {stride}: expected 1 <= patch <= {min(height, width)} "
            "(the image's shorter side) and stride >= 1"
        )

    def starts(size: int) -> list[int]:
        positions = list(range(0, size - patch + 1, stride))
        if positions[-1] != size - patch:
            positions.append(size - patch)  # cover the far edge too
        return positions

    windows = [(row, col) for row in starts(height) for col in starts(width)]
    per_pass = max(1, batch_size // batch)  # windows per forward pass, each on all B images
    total = torch.zeros(batch, height, width, device=inputs.device)
    covered = torch.zeros(height, width, device=inputs.device)
    with torch.no_grad():
        reference = score(model(inputs).float())  # (B,)
        for first in range(0, len(windows), per_pass):
            chunk = windows[first : first + per_pass]
            copies = inputs.repeat(len(chunk), 1, 1, 1)  # (n B, C, H, W), window-major
            for index, (row, col) in enumerate(chunk):
                copies[
                    index * batch : (index + 1) * batch, :, row : row + patch, col : col + patch
                ] = baseline
            outputs = model(copies).float()
            for index, (row, col) in enumerate(chunk):
                drop = reference - score(outputs[index * batch : (index + 1) * batch])  # (B,)
                total[:, row : row + patch, col : col + patch] += drop.view(-1, 1, 1)
                covered[row : row + patch, col : col + patch] += 1
    return (total / covered).cpu()


METHODS: dict[str, Callable[..., torch.Tensor]] = {
    "saliency": saliency,
    "smoothgrad": smoothgrad,
    "gradcam": gradcam,
    "occlusion": occlusion,
}


def explain(
    method: str, model: nn.Module, inputs: torch.Tensor, score: ScoreFn, **options
) -> torch.Tensor:
    """The method by name: (B, C, H, W) -> maps (B, H, W); ExplainError naming the known
    methods for an unknown one."""
    from dlcc.suggest import did_you_mean

    if method not in METHODS:
        raise ExplainError(
            f"--method: expected one of {', '.join(METHODS)}, received {method!r}"
            f"{did_you_mean(method, METHODS)}"
        )
    return METHODS[method](model, inputs, score, **options)
