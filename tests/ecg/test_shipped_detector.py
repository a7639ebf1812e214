"""The detector shipped in the package: it loads without code, and finds the beats of
records it never trained on (a check of the artefact itself, not of the training code)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dlcc.ecg import detect_r_peaks
from dlcc.ecg.detector import DEFAULT_MODEL, FORMAT, load_detector
from dlcc.ecg.scoring import match_beats
from dlcc.ecg.synth import random_record

SHARED = Path(os.environ.get("DLCC_DATA_DIR") or Path(__file__).parents[3] / "shared/datasets")
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")


def test_the_shipped_file_is_small_plain_and_carries_its_card():
    assert DEFAULT_MODEL.stat().st_size < 5_000_000
    saved = torch.load(DEFAULT_MODEL, weights_only=True)
    assert saved["format"] == FORMAT
    assert {"recipe", "training_data", "limits"} <= set(saved["card"])
    assert (DEFAULT_MODEL.parent / "MODEL_CARD.md").is_file()
    assert load_detector().threshold == saved["settings"]["threshold"]


def test_it_finds_the_beats_of_an_unseen_pvc_rich_record_at_128_hz():
    # a seed stream no recipe and no benchmark draws from
    record = random_record(np.random.default_rng(777), 120.0, fs=128.0, ectopic=True)
    assert np.sum(record.kinds == "V") >= 5
    score = match_beats(record.beats, detect_r_peaks(record.signal, record.fs), record.fs)
    assert score.f1 >= 0.98, score


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED / "mitdb/100.hea").is_file(), reason=f"no mitdb/100 in {SHARED}")
def test_it_finds_every_beat_of_the_held_out_half_of_record_100():
    from dlcc.ecg.records import read_record

    record = read_record(SHARED / "mitdb/100")
    middle = len(record.signal) // 2  # the training data hold the first half only
    reference = record.beats[record.beats >= middle] - middle
    score = match_beats(reference, detect_r_peaks(record.signal[middle:], record.fs), record.fs)
    assert score.f1 >= 0.997, score
