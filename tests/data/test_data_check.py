"""`dlcc data check NAME`: the data tests of `dlcc.data.checks` on a registry dataset."""

from __future__ import annotations

from dlcc.cli import main


def test_data_check_digits_is_sound(capsys):
    assert main(["data", "check", "digits"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "digits: train 1,257, val 180, test 360"
    assert out[-1].strip() == "sound" and not any("problem" in line for line in out)


def test_data_check_reports_a_leak(monkeypatch, capsys):
    import numpy as np

    from dlcc.data import dataset

    real = dataset.load_dataset

    def leaky(*args, **kwargs):
        data = real(*args, **kwargs)
        data.x_test = np.concatenate([data.x_test, data.x_train[:2]])
        data.y_test = np.concatenate([data.y_test, data.y_train[:2]])
        return data

    monkeypatch.setattr(dataset, "load_dataset", leaky)
    assert main(["data", "check", "digits"]) == 1
    out = capsys.readouterr().out
    assert "0 validation and 2 test examples also in training" in out and "NOT sound" in out
