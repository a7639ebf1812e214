"""The beats task on the one loop, the detector built from its runs, and `dlcc ecg`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from dlcc.cli import main
from dlcc.ecg.preprocess import FS, heatmap
from dlcc.training.tasks.beats import BeatTask, beat_heatmap_loss, true_beats

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")  # wfdb on pandas 3


def test_beat_heatmap_loss_is_the_weighted_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(3, 1, 50) * 3
    targets = torch.rand(3, 1, 50)
    p = torch.sigmoid(logits.double())
    y = targets.double()
    weights = 1 + (4.0 - 1) * y
    expected = (weights * -(y * torch.log(p) + (1 - y) * torch.log(1 - p))).sum() / weights.sum()
    assert beat_heatmap_loss(logits, targets, pos_weight=4.0).item() == pytest.approx(
        expected.item(), rel=1e-5
    )
    # pos_weight 1 is the plain mean BCE
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    assert beat_heatmap_loss(logits, targets, 1.0).item() == pytest.approx(plain.item(), rel=1e-6)


def _windows_with_beats(shift_s=0.0):
    beats = np.array([100, 330, 560, 800, 1050, 1300, 1520, 1760])
    truth = heatmap(beats, 2000, FS, 0.02)
    predicted = heatmap(beats + round(shift_s * FS), 2000, FS, 0.02)
    logits = torch.logit(torch.from_numpy(predicted).clamp(1e-4, 1 - 1e-4))
    return logits[None, None].float(), torch.from_numpy(truth)[None, None]


def test_the_task_counts_beats_within_the_tolerance_and_leaves_out_window_edges():
    task = BeatTask(edge_s=0.2)
    assert true_beats(_windows_with_beats()[1][0, 0].numpy()).tolist()[:2] == [100, 330]
    tp, fp, fn = task.match_batch(*_windows_with_beats(shift_s=0.1))  # 100 ms late: matched
    assert (tp, fp, fn) == (8, 0, 0)
    tp, fp, fn = task.match_batch(*_windows_with_beats(shift_s=0.2))  # 200 ms: every one wrong
    assert (tp, fp, fn) == (0, 8, 8)
    # a beat 80 ms from the window's start, missed: in the edge, so not a miss
    truth = torch.from_numpy(heatmap(np.array([20, 1000]), 2000, FS, 0.02))[None, None]
    found = torch.logit(
        torch.from_numpy(heatmap(np.array([1000]), 2000, FS, 0.02)).clamp(1e-4, 1 - 1e-4)
    )
    assert task.match_batch(found[None, None].float(), truth) == (1, 0, 0)
    assert BeatTask(edge_s=0.0).match_batch(found[None, None].float(), truth) == (1, 0, 1)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ecg") / "run"
    assert main(["train", "ecg_beats_smoke", "--out", str(run), "--no-progress"]) == 0
    return run


def test_the_smoke_recipe_writes_the_run_and_scores_whole_records(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["task"] == "beats" and metrics["monitor"] == "val_f1"
    assert metrics["report_split"] == "test" and metrics["test_samples"] > 0
    rows = json.loads((smoke_run / "per_record.json").read_text())["per_record"]
    # one row per test record (not per window), each with every annotated beat counted
    assert len(rows) == len({row["record"] for row in rows}) >= 1
    assert all(row["tp"] + row["fn"] == row["reference"] > 10 for row in rows)
    assert metrics["test_record_tp"] == sum(row["tp"] for row in rows)
    assert (smoke_run / "beat_examples.png").stat().st_size > 10_000


def test_a_run_exports_to_a_file_that_loads_without_code(smoke_run, tmp_path):
    from dlcc.ecg.detector import FORMAT, export_detector, load_detector
    from dlcc.ecg.synth import random_record

    path = export_detector(smoke_run, tmp_path / "detector.pt", card={"note": "smoke"})
    saved = torch.load(path, weights_only=True)  # plain tensors and numbers only
    assert saved["format"] == FORMAT and saved["card"] == {"note": "smoke"}
    record = random_record(np.random.default_rng(3), 30.0, fs=360.0)
    from_run = load_detector(smoke_run).detect(record.signal, record.fs)
    from_file = load_detector(path).detect(record.signal, record.fs)
    np.testing.assert_array_equal(from_run, from_file)
    assert from_file.dtype == np.int64 and np.all(np.diff(from_file) > 0)
    assert from_file.size == 0 or from_file.max() < len(record.signal)


def test_bad_signals_get_a_reason_or_a_warning(smoke_run):
    from dlcc.ecg.detector import detect_r_peaks, load_detector
    from dlcc.errors import DataError

    detector = load_detector(smoke_run)
    with pytest.raises(DataError, match="at least 100 Hz"):
        detect_r_peaks(np.zeros(10_000), 50.0, detector)
    with pytest.raises(DataError, match="windows of 8 s"):
        detect_r_peaks(np.random.default_rng(0).normal(size=360 * 5), 360.0, detector)
    with pytest.raises(DataError, match="one ECG lead"):
        detect_r_peaks(np.zeros((3600, 2)), 360.0, detector)
    for signal in (np.full(3600, 0.7), np.full(3600, np.nan)):
        with pytest.warns(UserWarning, match="flat"):
            assert detect_r_peaks(signal, 360.0, detector).size == 0


def _write_record(folder, name="rec", seconds=20.0, fs=360.0, seed=1):
    import wfdb

    from dlcc.ecg.synth import random_record

    record = random_record(np.random.default_rng(seed), seconds, fs=fs)
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(name, fs=fs, units=["mV"], sig_name=["MLII"],
                p_signal=record.signal[:, None], fmt=["16"], write_dir=str(folder))  # fmt: skip
    wfdb.wrann(name, "atr", record.beats, symbol=["N"] * len(record.beats), fs=fs,
               write_dir=str(folder))  # fmt: skip
    return folder / name, record


def test_ecg_detect_writes_csv_annotations_and_a_plot(smoke_run, tmp_path, capsys):
    import wfdb

    from dlcc.ecg.scoring import match_beats

    path, record = _write_record(tmp_path / "data")
    out = tmp_path / "out"
    assert main(["ecg", "detect", str(path), "--model", str(smoke_run), "--out", str(out)]) == 0
    lines = (out / "rec.csv").read_text().splitlines()
    assert lines[0] == "sample"
    beats = np.array([int(line) for line in lines[1:]], dtype=np.int64)
    # even the seconds-long smoke training finds most beats, at the record's own rate
    assert match_beats(record.beats, beats, 360.0).f1 > 0.8
    annotation = wfdb.rdann(str(out / "rec"), "dlcc")
    np.testing.assert_array_equal(annotation.sample, beats)
    assert (out / "rec_beats.png").stat().st_size > 10_000
    assert "against the record's annotations" in capsys.readouterr().out


def test_ecg_detect_refuses_a_missing_header_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["ecg", "detect", str(tmp_path / "nothing"), "--out", str(out)]) != 0
    assert ".hea" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_ecg_evaluate_prints_ours_beside_a_classical_detector(smoke_run, tmp_path, capsys):
    path, _ = _write_record(tmp_path / "data", seconds=30.0)
    table = tmp_path / "table.json"
    argv = ["ecg", "evaluate", str(path), "--model", str(smoke_run), "--classical",
            "neurokit", "--json", str(table)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "dlcc" in out and "neurokit" in out
    rows = json.loads(table.read_text())["rows"]
    assert {row["detector"] for row in rows} == {"dlcc", "neurokit"}
    neurokit = next(row for row in rows if row["detector"] == "neurokit")
    assert neurokit["f1"] > 0.95 and not math.isnan(neurokit["se"])


def test_ecg_export_writes_a_file_that_ecg_detect_reads(smoke_run, tmp_path, capsys):
    import json as json_module

    card = tmp_path / "card.json"
    card.write_text(json_module.dumps({"data": "smoke"}))
    out = tmp_path / "beatnet.pt"
    argv = ["ecg", "export", str(smoke_run), "--out", str(out), "--card", str(card)]
    assert main([*argv, "--threshold", "0.4"]) == 0
    assert torch.load(out, weights_only=True)["settings"]["threshold"] == 0.4
    path, _ = _write_record(tmp_path / "data")
    assert (
        main(["ecg", "detect", str(path), "--model", str(out), "--out", str(tmp_path / "o")]) == 0
    )
    assert (tmp_path / "o" / "rec.csv").read_text().startswith("sample\n")
    assert main([*argv[:-2], "--threshold", "1.5"]) != 0
    assert "probability" in capsys.readouterr().err
    assert main([*argv, "--tune-threshold"]) == 0
    saved = torch.load(out, weights_only=True)
    table = saved["card"]["threshold"]["validation_f1"]
    assert saved["settings"]["threshold"] == saved["card"]["threshold"]["chosen"]
    assert table[saved["settings"]["threshold"]] == max(table.values()) and len(table) == 9


def test_ecg_beats_options_are_checked_and_other_datasets_take_none():
    from dlcc.training.config import ConfigError, DataConfig
    from dlcc.training.data import load_data

    with pytest.raises(ConfigError, match=r"unknown .n_records.*n_train_records"):
        load_data(DataConfig(dataset="ecg_beats", options={"n_records": 3}), seed=0)
    with pytest.raises(ConfigError, match="takes none"):
        load_data(DataConfig(dataset="digits", options={"n_train_records": 3}), seed=0)
    data = load_data(
        DataConfig(dataset="ecg_beats", options=dict(n_train_records=1, n_val_records=1,
                   n_test_records=1, record_s=16.0, use_mitdb=False)), seed=0,
    )  # fmt: skip
    assert data.in_shape == (1, 2000) and data.classes == ["beat"]
    windows = data.extra["windows"]["test"]
    assert len(windows["record"]) == len(data.test) and windows["hop"] == 1000
    (record_id,) = set(windows["record"])
    assert data.extra["records"][record_id]["length"] == 16 * 250


def test_ecg_detect_on_a_flat_record_writes_an_empty_csv_and_says_so(smoke_run, tmp_path, capsys):
    import wfdb

    folder = tmp_path / "data"
    folder.mkdir()
    wfdb.wrsamp("flat", fs=360.0, units=["mV"], sig_name=["MLII"],
                p_signal=np.zeros((3600 * 3, 1)), fmt=["16"], write_dir=str(folder))  # fmt: skip
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="flat"):
        code = main(["ecg", "detect", str(folder / "flat"), "--model", str(smoke_run),
                     "--out", str(out)])  # fmt: skip
    assert code == 0
    assert (out / "flat.csv").read_text() == "sample\n"
    assert not (out / "flat.dlcc").exists() and "no beats detected" in capsys.readouterr().out


def test_the_image_commands_point_a_beats_run_to_dlcc_ecg(smoke_run, tmp_path, capsys):
    image = tmp_path / "x.png"
    image.write_bytes(b"not read")
    assert (
        main(["segment", "predict", str(smoke_run), str(image), "--out", str(tmp_path / "o")]) != 0
    )
    assert "dlcc ecg detect" in capsys.readouterr().err
