"""The Fréchet distance and the sample measures against known answers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dlcc.gan import metrics


@pytest.mark.parametrize(
    ("mu1", "s1", "mu2", "s2"), [(0, 1, 0, 1), (1, 2, -1, 0.5), (3, 0.1, 3, 4)]
)
def test_frechet_distance_of_1d_gaussians(mu1, s1, mu2, s2):
    # W2^2 between N(mu1, s1^2) and N(mu2, s2^2) is (mu1 - mu2)^2 + (s1 - s2)^2
    distance = metrics.frechet_distance(
        np.array([mu1]), np.array([[s1**2]]), np.array([mu2]), np.array([[s2**2]])
    )
    assert distance == pytest.approx((mu1 - mu2) ** 2 + (s1 - s2) ** 2, abs=1e-9)


def test_frechet_distance_of_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    var1, var2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()
    got = metrics.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_frechet_distance_of_full_covariances_matches_scipy_sqrtm(seed):
    # the oracle: the textbook formula with a general matrix square root of S1 S2
    import scipy.linalg

    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    root = np.real(scipy.linalg.sqrtm(s1 @ s2))
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root)
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7)


def test_frechet_distance_of_singular_covariances_is_finite_and_exact():
    # rank-1 covariances along one axis: it is the 1-D answer, (mu1-mu2)^2 + (s1-s2)^2
    s1, s2 = np.diag([4.0, 0.0, 0.0]), np.diag([1.0, 0.0, 0.0])
    got = metrics.frechet_distance(np.zeros(3), s1, np.array([0, 3.0, 0]), s2)
    assert got == pytest.approx(9.0 + (2 - 1) ** 2)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    features = np.random.default_rng(1).normal(size=(300, 4))
    assert metrics.feature_fid(features, features) == pytest.approx(0.0, abs=1e-8)
    shifted = features + np.array([2.0, 0, 0, 0])
    assert metrics.feature_fid(features, shifted) == pytest.approx(4.0, rel=1e-6)


def test_frechet_distance_refuses_mismatched_shapes_in_one_line():
    with pytest.raises(metrics.GanMetricError, match=r"expected means \(D,\)"):
        metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_class_entropy_uniform_is_log_k_and_one_class_is_zero():
    assert metrics.class_entropy(np.arange(40) % 10, 10) == pytest.approx(math.log(10))
    assert metrics.class_entropy(np.full(40, 3), 10) == 0.0
    # half 0, half 1: log 2
    assert metrics.class_entropy(np.array([0, 1, 0, 1]), 10) == pytest.approx(math.log(2))


def test_mean_pairwise_distance_and_conditional_accuracy_by_hand():
    points = np.array([[0.0], [1.0], [3.0]])  # pairs: 1, 3, 2
    assert metrics.mean_pairwise_distance(points) == pytest.approx(2.0)
    assert metrics.conditional_accuracy(np.array([1, 2, 2, 0]), np.array([1, 2, 0, 0])) == 0.75


def test_within_class_distance_by_hand_and_collapse_scores_zero():
    # class 0: points 0, 1, 3 (pairs 1, 3, 2: mean 2); class 1: points 10, 14 (mean 4)
    features = np.array([[0.0], [10.0], [1.0], [14.0], [3.0]])
    labels = np.array([0, 1, 0, 1, 0])
    assert metrics.within_class_distance(features, labels) == pytest.approx(3.0)
    # far apart classes, each one point repeated: large pairwise, zero within-class
    collapsed = np.array([[0.0], [0.0], [50.0], [50.0]])
    collapsed_labels = np.array([0, 0, 1, 1])
    assert metrics.mean_pairwise_distance(collapsed) > 30
    assert metrics.within_class_distance(collapsed, collapsed_labels) == 0.0
    # a class with one sample is skipped; none with two is an error that says what to do
    assert metrics.within_class_distance(features[:3], labels[:3]) == pytest.approx(1.0)
    with pytest.raises(metrics.GanMetricError, match="draw more samples"):
        metrics.within_class_distance(features[:2], labels[:2])


def test_the_judge_takes_the_input_of_the_last_linear_layer_in_the_classifiers_scaling():
    from dlcc.models import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN(in_channels=1, num_classes=3, widths=[4, 8]).eval()
    predictor = SimpleNamespace(
        model=model, mean=[0.2], std=[0.5], classes=["a", "b", "c"], in_shape=(1, 8, 8),
        device=torch.device("cpu"),
    )  # fmt: skip
    judge = metrics.Judge(predictor=predictor, head=model.head, run_dir="test")
    images = torch.rand(5, 1, 8, 8) * 2 - 1  # the GAN's range
    judged = judge.judge(images, batch_size=2)
    standardised = ((images + 1) / 2 - 0.2) / 0.5
    with torch.no_grad():
        pooled = model.pool(model.features(standardised)).flatten(1)
        predicted = model(standardised).argmax(1)
    np.testing.assert_allclose(judged.features, pooled.double().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(judged.predicted, predicted.numpy())
    with pytest.raises(metrics.GanMetricError, match="trained on images"):
        judge.judge(torch.zeros(2, 1, 28, 28))
