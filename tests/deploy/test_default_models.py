"""The models `dlcc serve` ships and serves without --model."""

from __future__ import annotations

from dlcc.deploy.models import DIGITS_MODEL, default_model_sources, load_model


def test_the_shipped_digit_classifier_is_small_documented_and_accurate():
    assert DIGITS_MODEL.stat().st_size < 2 * 1024 * 1024
    assert (DIGITS_MODEL.parent / "MODEL_CARD.md").is_file()
    model = load_model("digits", str(DIGITS_MODEL))
    described = model.describe()
    assert described["input"]["shape"] == ["batch", 1, 28, 28]
    assert described["labels"] == [str(i) for i in range(10)]
    assert described["metrics"]["test_accuracy"] >= 0.99
    assert described["task"] == "classification"


def test_defaults_are_the_digits_and_the_ecg_detector():
    assert default_model_sources() == {"digits": str(DIGITS_MODEL), "ecg": "ecg"}
