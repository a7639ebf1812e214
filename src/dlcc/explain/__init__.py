"""What a network looks at: saliency, SmoothGrad, Grad-CAM and occlusion maps.

    score = resolve_target(model, inputs)                 # the predicted class / region
    maps = explain("gradcam", model, inputs, score)       # (B, H, W)

`targets` fixes what is explained (a class's logit; a region's summed logit for dense
models), `methods` computes the maps, `overlay` draws them over the images, and
`commands` is ``dlcc explain``. Adversarial attacks are in `dlcc.adversarial`.
"""

from dlcc.explain.methods import (
    METHODS,
    ExplainError,
    default_layer,
    explain,
    gradcam,
    input_gradient,
    occlusion,
    saliency,
    smoothgrad,
)
from dlcc.explain.targets import (
    ClassScore,
    RegionScore,
    TargetError,
    class_target,
    region_target,
    resolve_target,
)

__all__ = [
    "METHODS",
    "ClassScore",
    "ExplainError",
    "RegionScore",
    "TargetError",
    "class_target",
    "default_layer",
    "explain",
    "gradcam",
    "input_gradient",
    "occlusion",
    "region_target",
    "resolve_target",
    "saliency",
    "smoothgrad",
]
