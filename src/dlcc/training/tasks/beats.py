"""R-peak (beat) detection in 1-D signals: heatmap logits (B, 1, T) -> beat positions.

The 1-D twin of the detection task (`detection.py`), and the same method: the targets are
heatmaps, (B, 1, T) float32 with a Gaussian of ``sigma_s`` at each R-peak (1.0 exactly at
the beat's sample, `dlcc.ecg.preprocess.heatmap`); the model predicts a logit per sample;
at inference the peaks of the sigmoid above ``threshold``, at least ``refractory_s``
apart, are the beats (`dlcc.ecg.preprocess.pick_peaks`).

Loss (option ``loss``): "bce", binary cross-entropy of every sample against the heatmap
(`beat_heatmap_loss`, with ``pos_weight`` on the samples near a beat, since beats cover a
few percent of the samples), or "focal" (CenterNet's penalty-reduced focal loss).

Metrics: F1, precision (EC57's positive predictivity, PPV) and recall (sensitivity, Se)
of the peaks against the true beats, matched one to one within ``tolerance_s`` (EC57:
150 ms, `dlcc.ecg.scoring.match_beats`), pooled over the split. In the loop they are
counted window by window, leaving out ``edge_s`` at both ends of each window (a peak at a
window's edge cannot be seen whole). The report scores whole records: the test windows
are stitched back into their records (`dlcc.ecg.preprocess.stitch`) and scored beat by
beat, one row per record in ``per_record.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from dlcc.atomic import write_text_atomic
from dlcc.training.tasks.base import Task
from dlcc.training.tasks.detection import DetectionCounts, heatmap_focal_loss


def beat_heatmap_loss(
    logits: torch.Tensor, heatmaps: torch.Tensor, pos_weight: float = 1.0
) -> torch.Tensor:
    """Weighted BCE of heatmap logits against heatmap targets, both (B, 1, T).

    Every sample is a Bernoulli target of probability ``heatmaps`` (a soft label), and its
    cross-entropy is weighted ``1 + (pos_weight - 1) * heatmaps``: 1 far from a beat, up to
    ``pos_weight`` at it, which balances the few samples near beats against the many
    between them. Returns the weighted mean (a scalar), so the loss of a batch does not
    depend on the number of beats in it.
    """
    # BEGIN SOLUTION beat_heatmap_loss: weighted binary cross-entropy with logits
    logits, heatmaps = logits.float(), heatmaps.float()
    weights = 1.0 + (pos_weight - 1.0) * heatmaps
    per_sample = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, heatmaps, reduction="none"
    )
    return (weights * per_sample).sum() / weights.sum()
    # END SOLUTION
    # BEGIN PROMPT
    # Cross-entropy of sigmoid(logits) against the soft targets `heatmaps`, per sample
    # (binary_cross_entropy_with_logits with reduction="none" is stable for large logits),
    # weighted 1 + (pos_weight - 1) * heatmaps, then summed and divided by the sum of the
    # weights. Work in float32 (logits.float()) whatever the inputs' dtype.
    # END PROMPT


class BeatTask(Task):
    """Heatmap-and-peaks beat detection on 1-D windows. Options: see __init__."""

    name = "beats"
    monitor = "val_f1"
    mode = "max"
    dense = True  # targets are per-sample maps: augmentation moves them with the signal
    metric_names = ("f1", "precision", "recall")
    plots = ("beat_examples.png",)
    losses = ("bce", "focal")

    def __init__(
        self,
        loss: str = "bce",
        pos_weight: float = 5.0,
        threshold: float = 0.5,
        refractory_s: float = 0.2,
        tolerance_s: float = 0.15,
        edge_s: float = 0.2,
        fs: float | None = None,
    ) -> None:
        from dlcc.ecg.preprocess import FS

        if loss not in self.losses:
            raise ValueError(f"loss must be one of {', '.join(self.losses)}, got {loss!r}")
        if not 0 < threshold < 1 or pos_weight <= 0 or refractory_s < 0 or tolerance_s <= 0:
            raise ValueError(
                "expected 0 < threshold < 1, pos_weight > 0, refractory_s >= 0 and "
                f"tolerance_s > 0, got threshold={threshold}, pos_weight={pos_weight}, "
                f"refractory_s={refractory_s}, tolerance_s={tolerance_s}"
            )
        self.loss_name, self.pos_weight = loss, float(pos_weight)
        self.threshold, self.refractory_s = float(threshold), float(refractory_s)
        self.tolerance_s, self.edge_s = float(tolerance_s), float(edge_s)
        self.fs = float(fs or FS)

    @property
    def num_outputs(self) -> int:
        return 1  # one heatmap logit per sample

    def augmentation(self, spec):
        """The recipe's augment list as 1-D paired transforms (`dlcc.ecg.augment`)."""
        from dlcc.ecg.augment import build_ecg_augmentation

        return build_ecg_augmentation(spec)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "focal":
            return heatmap_focal_loss(outputs, targets)
        return beat_heatmap_loss(outputs, targets, self.pos_weight)

    def peaks(self, probabilities: np.ndarray) -> np.ndarray:
        """(T,) beat probabilities -> (K,) int64 sample indices of the detected beats."""
        from dlcc.ecg.preprocess import pick_peaks

        return pick_peaks(probabilities, self.fs, self.threshold, self.refractory_s)

    def match_batch(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[int, int, int]:
        """Summed (tp, fp, fn) of a batch of windows, each window's edges left out."""
        from dlcc.ecg.scoring import match_beats

        probabilities = torch.sigmoid(outputs.detach().float()[:, 0]).cpu().numpy()
        truths = targets.detach().float()[:, 0].cpu().numpy()
        totals = np.zeros(3, dtype=np.int64)
        for trace, truth in zip(probabilities, truths, strict=True):
            score = match_beats(
                true_beats(truth),
                self.peaks(trace),
                self.fs,
                self.tolerance_s,
                exclude_edges_s=self.edge_s,
                length=len(trace),
            )
            totals += (score.tp, score.fp, score.fn)
        return tuple(int(value) for value in totals)

    def metrics(self, sync: bool) -> dict:
        return {
            name: DetectionCounts(name, self, sync_on_compute=sync) for name in self.metric_names
        }

    def reporter(self, data) -> BeatReport:
        """The report of the split `finish_run` reports on: test, else validation."""
        split = "test" if len(data.test) else "val"
        extra = getattr(data, "extra", None) or {}
        return BeatReport(self, extra.get("windows", {}).get(split), extra.get("records", {}))


def true_beats(heatmap: np.ndarray) -> np.ndarray:
    """(T,) target heatmap -> (K,) int64: its 1.0 samples, the beats it was made from."""
    return np.flatnonzero(heatmap >= 0.999).astype(np.int64)


class BeatReport:
    """Whole-record scores (per_record.json) and a few windows with their beats (PNG).

    ``windows`` says where the split's windows come from, in order (`dlcc.ecg.dataset`,
    through ``DataBundle.extra``): {"record": (n,) ids, "start": (n,) first samples,
    "hop": samples between starts}; ``records`` maps an id to its "length" and "beats" at
    the internal rate. Without them (a dataset of loose windows) it scores each window.
    """

    examples = 3

    def __init__(self, task: BeatTask, windows: dict | None, records: dict) -> None:
        self.task, self.windows, self.records = task, windows, records
        self.traces: list[np.ndarray] = []
        self.truths: list[np.ndarray] = []
        self.kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def update(self, inputs, outputs, targets) -> None:
        probabilities = torch.sigmoid(outputs.float()[:, 0]).numpy()
        for index, (trace, truth) in enumerate(
            zip(probabilities, targets[:, 0].numpy(), strict=True)
        ):
            self.traces.append(trace)
            self.truths.append(truth)
            if len(self.kept) < self.examples:
                self.kept.append((inputs[index, 0].float().numpy(), truth, trace))

    def rows(self) -> list[dict]:
        """One score per record (stitched windows), or per window without provenance."""
        from dlcc.ecg.preprocess import stitch
        from dlcc.ecg.scoring import match_beats

        split, records = self.windows, self.records
        if split is None or len(split["record"]) != len(self.traces):
            scores = [
                match_beats(
                    true_beats(truth), self.task.peaks(trace), self.task.fs, self.task.tolerance_s
                )
                for trace, truth in zip(self.traces, self.truths, strict=True)
            ]
            return [{"record": f"window-{i}", **s.as_dict()} for i, s in enumerate(scores)]
        out = []
        ids = np.asarray(split["record"])
        for record_id in dict.fromkeys(ids.tolist()):  # in order of first appearance
            chosen = np.flatnonzero(ids == record_id)
            info = records[record_id]
            traces = np.stack([self.traces[i] for i in chosen])  # as the detector stitches
            trace = stitch(traces, split["hop"], info["length"], mode="centre")
            score = match_beats(
                np.asarray(info["beats"]), self.task.peaks(trace), self.task.fs,
                self.task.tolerance_s,
            )  # fmt: skip
            out.append({"record": record_id, "source": info.get("source", ""), **score.as_dict()})
        return out

    def write(self, run_dir: Path) -> dict:
        rows = self.rows()
        tp, fp, fn = (sum(row[key] for row in rows) for key in ("tp", "fp", "fn"))
        write_text_atomic(
            run_dir / "per_record.json", json.dumps({"per_record": rows}, indent=1) + "\n"
        )
        if self.kept:
            self._plot(run_dir / "beat_examples.png")
        worst = min((row["f1"] for row in rows), default=float("nan"))
        return {"record_tp": tp, "record_fp": fp, "record_fn": fn, "worst_record_f1": worst}

    def _plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from dlcc.plots import save_figure

        figure, axes = plt.subplots(len(self.kept), 1, figsize=(10, 2.2 * len(self.kept)),
                                    squeeze=False)  # fmt: skip
        for axis, (signal, truth, trace) in zip(axes[:, 0], self.kept, strict=True):
            seconds = np.arange(len(signal)) / self.task.fs
            axis.plot(seconds, signal, lw=0.7, color="black", label="ECG (normalised)")
            axis.plot(seconds, trace * np.max(np.abs(signal)), lw=0.8, color="tab:blue",
                      label="beat probability (scaled)")  # fmt: skip
            beats, found = true_beats(truth), self.task.peaks(trace)
            axis.plot(beats / self.task.fs, signal[beats], "o", mfc="none", color="green",
                      label="annotated")  # fmt: skip
            axis.plot(found / self.task.fs, signal[found], "x", color="red", label="detected")
            axis.set_xlabel("seconds")
        axes[0, 0].legend(fontsize=7, loc="upper right", ncol=4)
        save_figure(figure, path)
