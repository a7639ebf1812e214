"""Measuring a generator with a classifier the project trained on the same data.

    judge = load_judge("runs/mnist_cnn")                  # a `dlcc train` classification run
    real = judge.features_and_logits(real_images)         # images in [-1, 1], (N, C, H, W)
    fake = judge.features_and_logits(generator_samples)
    frechet_distance(*gaussian_stats(real.features), *gaussian_stats(fake.features))

- `frechet_distance`: the Fréchet (2-Wasserstein) distance between two Gaussians,
  ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Dowson & Landau 1982), by
  eigen-decompositions (the tests check it against scipy.linalg.sqrtm).
- FID (Heusel et al. 2017) is that distance between Gaussians fitted to classifier
  features of real and of generated images. Here the features are the input of the
  classifier's last linear layer (its penultimate layer) rather than Inception's: a
  digit classifier knows digits. The figures are comparable only under one classifier;
  `fid_floor` (real training vs real test images) says how low a perfect generator would go.
- `conditional_accuracy`: the share of samples asked to be class K that the classifier
  labels K.
- Diversity: `class_entropy`, the entropy (nats) of the predicted-class histogram (log K
  when every class is as frequent; 0 when one class is all the generator makes), and
  `mean_pairwise_distance` between feature vectors (collapse onto few images shrinks it).
- Within-class diversity: `within_class_distance`, the mean pairwise feature distance among
  the samples asked for one class, averaged over the classes. A conditional generator that
  draws one image per class (and ignores its noise) scores near 0 here while its FID,
  accuracy and class entropy all look good: this classifier's features are mostly about
  the class, so FID barely sees diversity inside a class. The trainer reports the same
  figure of real test images by their labels (`within_class_distance_real`) beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlcc.errors import DlccError


class GanMetricError(DlccError):
    """A classifier run or a feature set that cannot be used to measure samples."""


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu (D,), Sigma (D, D)) of features (N, D), with the unbiased covariance (N - 1)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise GanMetricError(
            f"gaussian_stats: expected features (N >= 2, D), received shape {features.shape}"
        )
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(
        features.shape[1], features.shape[1]
    )


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a positive semi-definite (D, D) matrix, by eigh
    (negative round-off eigenvalues are taken as 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)); means (D,), covariances (D, D).

    tr((S1 S2)^(1/2)) is computed as tr((S1^(1/2) S2 S1^(1/2))^(1/2)): the same eigenvalues,
    but of a symmetric positive semi-definite matrix, so two eigen-decompositions give it
    without the complex round-off (and failures on singular covariances, common for ReLU
    features with dead units) of a general matrix square root such as scipy's sqrtm.
    The result is clipped at 0 (round-off).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (*mu1.shape,) * 2:
        raise GanMetricError(
            f"frechet_distance: expected means (D,) and covariances (D, D) of one D, received "
            f"{mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}"
        )
    root1 = psd_sqrt(sigma1)
    middle = np.linalg.eigvalsh(root1 @ sigma2 @ root1)  # the eigenvalues of S1 S2
    trace_root = float(np.sqrt(np.clip(middle, 0, None)).sum())
    distance = float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2))
    return max(distance - 2 * trace_root, 0.0)


def feature_fid(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets (N1, D), (N2, D)."""
    return frechet_distance(*gaussian_stats(real_features), *gaussian_stats(fake_features))


def conditional_accuracy(predicted: np.ndarray, requested: np.ndarray) -> float:
    """The share of samples whose predicted class (N,) is the class they were asked for (N,)."""
    predicted, requested = np.asarray(predicted), np.asarray(requested)
    return float((predicted == requested).mean())


def class_entropy(predicted: np.ndarray, num_classes: int) -> float:
    """Entropy, in nats, of the histogram of predicted classes (N,) over `num_classes`."""
    counts = np.bincount(np.asarray(predicted), minlength=num_classes).astype(np.float64)
    shares = counts[counts > 0] / counts.sum()
    return float(-(shares * np.log(shares)).sum()) + 0.0  # + 0.0: no "-0.0"


def mean_pairwise_distance(features: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs i != j of feature vectors (N, D)."""
    x = torch.as_tensor(np.asarray(features, dtype=np.float64))
    n = len(x)
    if n < 2:
        raise GanMetricError(f"mean_pairwise_distance: needs 2 or more vectors, received {n}")
    distances = torch.cdist(x, x)  # (N, N), zero diagonal
    return float(distances.sum() / (n * (n - 1)))


def within_class_distance(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes of `mean_pairwise_distance` of the features (N, D) of each class
    (labels (N,)); classes with fewer than 2 samples are skipped."""
    features, labels = np.asarray(features), np.asarray(labels)
    if len(features) != len(labels):
        raise GanMetricError(
            f"within_class_distance: {len(features)} feature vectors but {len(labels)} labels"
        )
    per_class = [
        mean_pairwise_distance(features[labels == label])
        for label in np.unique(labels)
        if int((labels == label).sum()) >= 2
    ]
    if not per_class:
        raise GanMetricError(
            "within_class_distance: no class has 2 or more samples; draw more samples"
        )
    return float(np.mean(per_class))


# ---- the classifier that judges -----------------------------------------------------------


@dataclass
class Judged:
    """What the classifier makes of a set of images."""

    features: np.ndarray  # (N, D): the input of its last linear layer
    predicted: np.ndarray  # (N,) int64: its predicted classes


@dataclass
class Judge:
    """A trained classification run that scores images given in [-1, 1] (a GAN's range)."""

    predictor: object  # dlcc.segmentation.predictor.Predictor
    head: torch.nn.Linear  # its last linear layer, whose input is the feature vector
    run_dir: str

    @property
    def classes(self) -> list[str]:
        return list(self.predictor.classes)

    @torch.no_grad()
    def judge(self, images: torch.Tensor, batch_size: int = 500) -> Judged:
        """images (N, C, H, W) in [-1, 1] -> features (N, D) and predicted classes (N,)."""
        predictor = self.predictor
        if tuple(images.shape[1:]) != tuple(predictor.in_shape):
            raise GanMetricError(
                f"the classifier {self.run_dir} was trained on images {tuple(predictor.in_shape)}, "
                f"the generator makes {tuple(images.shape[1:])}; give a classifier trained "
                "on the GAN's dataset"
            )
        mean = torch.tensor(predictor.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(predictor.std, dtype=torch.float32).view(1, -1, 1, 1)
        captured: list[torch.Tensor] = []
        hook = self.head.register_forward_hook(
            lambda module, inputs, output: captured.append(inputs[0].flatten(1).cpu())
        )
        predicted = []
        try:
            for start in range(0, len(images), batch_size):
                pixels = (images[start : start + batch_size].float().cpu() + 1) / 2  # [0, 1]
                logits = predictor.model(((pixels - mean) / std).to(predictor.device))
                predicted.append(logits.argmax(dim=1).cpu())
        finally:
            hook.remove()
        return Judged(
            features=torch.cat(captured).double().numpy(),
            predicted=torch.cat(predicted).numpy(),
        )


def load_judge(run_dir, device: str = "cpu") -> Judge:
    """A `dlcc train` classification run (checkpoints/best.pt) as a `Judge`."""
    from dlcc.runs import read_run
    from dlcc.segmentation.predictor import load_predictor

    saved = read_run(run_dir)
    if saved.task != "classification":
        raise GanMetricError(
            f"{run_dir} is a {saved.task} run; measuring samples needs a classification run "
            "trained on the same dataset (e.g. `dlcc train mnist_cnn --out runs/mnist_cnn`)"
        )
    predictor = load_predictor(run_dir, device=device)
    model = predictor.model
    linears = [module for module in model.modules() if isinstance(module, torch.nn.Linear)]
    if not linears:
        raise GanMetricError(
            f"{run_dir}: its model has no linear layer whose input could serve as features"
        )
    return Judge(predictor=predictor, head=linears[-1], run_dir=str(run_dir))


def sample_figures(
    judge: Judge,
    real_features: np.ndarray,
    fake: Judged,
    requested: np.ndarray | None,
) -> dict[str, float | None]:
    """fid, class_accuracy (conditional runs; else None), class_entropy, pairwise_distance,
    within_class_distance (conditional runs; else None)."""
    return {
        "fid": feature_fid(real_features, fake.features),
        "class_accuracy": (
            conditional_accuracy(fake.predicted, requested) if requested is not None else None
        ),
        "class_entropy": class_entropy(fake.predicted, len(judge.classes)),
        "pairwise_distance": mean_pairwise_distance(fake.features),
        "within_class_distance": (
            within_class_distance(fake.features, requested) if requested is not None else None
        ),
    }


SAMPLE_METRICS = (
    "fid",
    "class_accuracy",
    "class_entropy",
    "pairwise_distance",
    "within_class_distance",
)

__all__ = [
    "SAMPLE_METRICS",
    "GanMetricError",
    "Judge",
    "Judged",
    "class_entropy",
    "conditional_accuracy",
    "feature_fid",
    "frechet_distance",
    "gaussian_stats",
    "load_judge",
    "mean_pairwise_distance",
    "psd_sqrt",
    "sample_figures",
    "within_class_distance",
]
