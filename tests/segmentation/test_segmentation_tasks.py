"""The segmentation and detection tasks: their torch metrics against the NumPy metrics and
sklearn, the detection targets and loss, and the sampler's repeat."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, jaccard_score

from dlcc.segmentation.detection import object_centres
from dlcc.training.data import ArrayDataset, DataBundle, ShardedShuffleSampler
from dlcc.training.tasks import DetectionTask, SegmentationTask
from dlcc.training.tasks.detection import heatmap_focal_loss


def epoch_scores(task, outputs, targets):
    metrics = task.metrics(sync=False)
    for start in range(0, len(outputs), 2):  # in batches, as the loop does
        for metric in metrics.values():
            metric.update(outputs[start : start + 2], targets[start : start + 2])
    return {name: metric.compute().item() for name, metric in metrics.items()}


@pytest.mark.parametrize("classes", [["membrane", "cell"], ["a", "b", "c"]])
def test_segmentation_metrics_match_sklearn_over_all_pixels(classes):
    generator = torch.Generator().manual_seed(0)
    channels = 1 if len(classes) == 2 else len(classes)
    outputs = torch.randn(5, channels, 6, 7, generator=generator)
    targets = torch.randint(len(classes), (5, 1, 6, 7), generator=generator).float()
    task = SegmentationTask(classes=classes)
    scores = epoch_scores(task, outputs, targets)
    if channels == 1:
        predicted = (torch.sigmoid(outputs[:, 0]) > 0.5).long().numpy().ravel()
    else:
        predicted = outputs.argmax(1).numpy().ravel()
    truth = targets[:, 0].long().numpy().ravel()
    labels = list(range(len(classes)))
    dice = f1_score(truth, predicted, labels=labels, average=None)
    iou = jaccard_score(truth, predicted, labels=labels, average=None)
    for index, name in enumerate(classes):
        assert scores[f"dice_{name}"] == pytest.approx(dice[index])
        assert scores[f"iou_{name}"] == pytest.approx(iou[index])
    assert scores["dice"] == pytest.approx(dice.mean())
    assert scores["pixel_error"] == pytest.approx(np.mean(predicted != truth))
    assert task.num_outputs == channels


def test_class_names_become_metric_names():
    task = SegmentationTask(classes=["Cell interior", "membrane"])
    assert "dice_cell_interior" in task.metric_names and "iou_membrane" in task.metric_names
    assert "val_pixel_error" in task.history_columns()


def test_a_bad_task_option_is_refused():
    with pytest.raises(ValueError, match="threshold"):
        SegmentationTask(threshold=1.5)
    with pytest.raises(ValueError, match="boundary_class"):
        SegmentationTask(boundary_class=3)


def two_cells(size: int = 40) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.float32)
    mask[4:14, 5:15] = 1  # centre (8.5, 9.5)
    mask[22:34, 20:36] = 1  # centre (27.5, 27.5)
    return mask


def bundle(masks: np.ndarray) -> DataBundle:
    images = np.random.default_rng(0).normal(size=masks.shape).astype(np.float32)
    split = ArrayDataset(images, masks)
    return DataBundle(split, split, split, ["membrane", "cell"], masks.shape[1:], [0.0], [1.0])


def test_detection_targets_are_a_gaussian_at_each_objects_centre():
    masks = two_cells()[None, None]
    task = DetectionTask(sigma=2.0)
    heatmaps = task.prepare_data(bundle(masks)).train.targets.numpy()
    assert heatmaps.shape == masks.shape
    peaks = sorted(map(tuple, np.argwhere(heatmaps[0, 0] == 1.0)))
    expected = sorted(map(tuple, np.round(object_centres(masks[0, 0] == 1)).astype(int)))
    assert peaks == expected and len(peaks) == 2
    assert heatmaps[0, 0][peaks[0][0], peaks[0][1] + 2] == pytest.approx(np.exp(-4 / 8))


def test_detection_metrics_count_hits_within_the_tolerance():
    masks = two_cells()[None, None]
    task = DetectionTask(sigma=2.0, tolerance=5.0)
    heatmaps = torch.from_numpy(task.prepare_data(bundle(masks)).train.targets.numpy())
    # A prediction with one centre moved 3 px (a hit) and one moved 8 px (a miss + a false one).
    predicted = torch.full_like(heatmaps, -10.0)
    centres = np.argwhere(heatmaps[0, 0].numpy() == 1.0)
    (r0, c0), (r1, c1) = centres
    predicted[0, 0, r0 + 3, c0] = 10.0
    predicted[0, 0, r1, c1 + 8] = 10.0
    scores = epoch_scores(task, predicted, heatmaps)
    assert scores["precision"] == pytest.approx(0.5) and scores["recall"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx(0.5)
    perfect = epoch_scores(task, torch.where(heatmaps == 1, 10.0, -10.0), heatmaps)
    assert perfect == {"f1": 1.0, "precision": 1.0, "recall": 1.0}


def test_the_heatmap_focal_loss_matches_its_formula():
    logits = torch.tensor([[[[0.0, 2.0, -1.0]]]], dtype=torch.float64)
    heatmaps = torch.tensor([[[[1.0, 0.5, 0.0]]]], dtype=torch.float64)
    p = torch.sigmoid(logits)[0, 0, 0]
    positive = -((1 - p[0]) ** 2) * torch.log(p[0])
    negatives = -(0.5**4) * p[1] ** 2 * torch.log(1 - p[1]) - p[2] ** 2 * torch.log(1 - p[2])
    expected = (positive + negatives) / 1  # one centre
    assert heatmap_focal_loss(logits, heatmaps).item() == pytest.approx(expected.item())


def test_repeat_draws_every_sample_that_many_times_per_epoch():
    sampler = ShardedShuffleSampler(5, seed=0, repeat=3)
    order = list(sampler)
    assert len(order) == len(sampler) == 15
    assert sorted(order) == sorted(list(range(5)) * 3)
    sampler.set_epoch(1)
    assert list(sampler) != order
    ranks = [list(ShardedShuffleSampler(5, 0, rank, 2, repeat=3)) for rank in range(2)]
    assert sorted(ranks[0] + ranks[1]) == sorted(order[:14])  # one dropped: 15 % 2


def test_the_detection_task_can_regress_the_heatmap_with_bce_instead():
    logits = torch.tensor([[[[0.0, 2.0, -1.0]]]])
    heatmaps = torch.tensor([[[[1.0, 0.5, 0.0]]]])
    expected = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), heatmaps)
    assert DetectionTask(loss="bce").loss(logits, heatmaps).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="loss must be one of focal, bce"):
        DetectionTask(loss="mse")
