"""``dlcc segment predict`` / ``dlcc detect predict`` on a real tiny trained run: the files
written, their values against the model's own whole-image output, the checkpoint's saved
normalisation, and the one-line errors that leave nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from dlcc.cli import main
from dlcc.data.image_masks import _as_chw, dtype_scale
from dlcc.segmentation import commands
from dlcc.segmentation.predictor import load_predictor, scale_to_unit
from dlcc.training.checkpoint import FORMAT, load_checkpoint
from dlcc.training.config import load_recipe
from dlcc.training.data import load_data


def make_pairs(folder: Path, count: int = 20, size: int = 32, seed: int = 0) -> Path:
    """image/mask PNG pairs: noisy images, each with one brighter disc (the mask)."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rows, columns = np.mgrid[:size, :size]
    for index in range(count):
        centre = rng.uniform(size * 0.25, size * 0.75, 2)
        radius = rng.uniform(size * 0.12, size * 0.25)
        disc = (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 < radius**2
        image = np.clip(0.3 + 0.4 * disc + rng.normal(0, 0.12, (size, size)), 0, 1)
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / "images" / f"{index}.png")
        Image.fromarray((disc * 255).astype(np.uint8)).save(folder / "masks" / f"{index}.png")
    return folder


def disc_picture(height: int, width: int, seed: int) -> np.ndarray:
    """(H, W) uint8 in the training images' style, with a few discs."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[:height, :width]
    picture = np.full((height, width), 0.3)
    for _ in range(3):
        centre, radius = rng.uniform(0, 1, 2) * (height, width), rng.uniform(4, 8)
        picture[(rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 < radius**2] = 0.7
    picture = np.clip(picture + rng.normal(0, 0.12, picture.shape), 0, 1)
    return (picture * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run_dir, pairs folder): segmentation_smoke, 6 epochs on 20 pairs of 32x32."""
    root = tmp_path_factory.mktemp("segment")
    pairs = make_pairs(root / "pairs")
    run = root / "run"
    overrides = ["--set", f"data.path={pairs}", "--set", "train.epochs=6"]
    status = main(["train", "segmentation_smoke", *overrides, "--out", str(run), "--no-progress"])
    assert status == 0
    return run, pairs


@pytest.fixture
def inputs(tmp_path):
    """A folder with an 8-bit PNG (32x48), its 16-bit TIFF twin, and a larger 8-bit PNG."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    small = disc_picture(32, 48, seed=1)
    Image.fromarray(small).save(folder / "a.png")
    # x * 257 / 65535 == x / 255: the same picture in 16 bits must give the same mask.
    Image.fromarray(small.astype(np.uint16) * 257).save(folder / "b16.tif")
    Image.fromarray(disc_picture(70, 90, seed=2)).save(folder / "c.png")
    return folder


def test_the_checkpoint_carries_the_training_data_statistics(trained):
    run, pairs = trained
    saved = load_checkpoint(run / "checkpoints" / "best.pt")["data"]
    config = load_recipe("segmentation_smoke", [f"data.path={pairs}"])
    data = load_data(config.data, config.train.seed)
    assert saved["mean"] == pytest.approx(data.mean) and saved["std"] == pytest.approx(data.std)
    assert saved["classes"] == data.classes and saved["in_shape"] == [1, 32, 32]


def test_scaling_matches_the_training_loader(tmp_path):
    rng = np.random.default_rng(0)
    for array in (
        rng.integers(0, 256, (9, 11), dtype=np.uint8),
        rng.integers(0, 65536, (9, 11), dtype=np.uint16),
        rng.integers(0, 256, (9, 11, 3), dtype=np.uint8),
    ):
        # (C, H, W): what training saw
        oracle = _as_chw(array, dtype_scale(array.dtype), tmp_path / "x.png")
        ours = scale_to_unit(array)
        ours = ours[None] if ours.ndim == 2 else np.moveaxis(ours, -1, 0)
        np.testing.assert_array_equal(ours, oracle)


def test_segment_predict_writes_masks_and_overlays_that_match_the_model(trained, inputs, tmp_path):
    run, _ = trained
    out = tmp_path / "out"
    assert main(["segment", "predict", str(run), str(inputs), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b16.png", "c.png", "overlays"]
    assert sorted(p.name for p in (out / "overlays").iterdir()) == [
        "a_overlay.png",
        "b16_overlay.png",
        "c_overlay.png",
    ]
    for name, size in [("a", (32, 48)), ("b16", (32, 48)), ("c", (70, 90))]:
        mask = np.asarray(Image.open(out / f"{name}.png"))
        assert mask.dtype == np.uint8 and mask.shape == size
        assert set(np.unique(mask)) <= {0, 255}
        overlay = np.asarray(Image.open(out / "overlays" / f"{name}_overlay.png")).astype(int)
        assert overlay.shape == (*size, 3)
        cell, membrane = overlay[mask == 255], overlay[mask == 0]  # (N, 3) each
        assert (cell[:, 0] == cell[:, 1]).all() and (cell[:, 1] == cell[:, 2]).all()  # grey
        assert (membrane[:, 0] > membrane[:, 2]).all()  # class 0 tinted red-orange
    a_mask = np.asarray(Image.open(out / "a.png"))
    np.testing.assert_array_equal(a_mask, np.asarray(Image.open(out / "b16.png")))
    # Oracle: the trained model on the whole 32x48 image (one tile, no padding), normalised
    # by hand with the checkpoint's statistics.
    state = load_checkpoint(run / "checkpoints" / "best.pt")
    mean, std = state["data"]["mean"][0], state["data"]["std"][0]
    model = load_predictor(run, device="cpu").model
    pixels = np.asarray(Image.open(inputs / "a.png")).astype(np.float32) / 255.0
    with torch.no_grad():
        logits = model(torch.from_numpy((pixels - mean) / std)[None, None])
    expected = np.where(torch.sigmoid(logits)[0, 0].numpy() > 0.5, 255, 0)
    assert (a_mask == expected).mean() > 0.999  # a pixel at exactly 0.5 may round either way
    assert 0 < (a_mask == 255).mean() < 1  # the discs were found, not all or nothing


def test_a_single_file_with_tta_and_a_threshold(trained, inputs, tmp_path):
    run, _ = trained
    out = tmp_path / "out"
    argv = ["segment", "predict", str(run), str(inputs / "c.png"), "--out", str(out)]
    assert main([*argv, "--tta", "--tile", "32", "--overlap", "8", "--threshold", "0.9"]) == 0
    strict = np.asarray(Image.open(out / "c.png"))
    assert main([*argv, "--threshold", "0.1"]) == 0
    loose = np.asarray(Image.open(out / "c.png"))
    assert (strict == 255).sum() <= (loose == 255).sum()


def test_an_old_checkpoint_without_statistics_recomputes_them_or_says_why(trained, tmp_path):
    run, pairs = trained
    old = tmp_path / "old_run"
    shutil.copytree(run, old)
    for name in ("best", "last"):
        path = old / "checkpoints" / f"{name}.pt"
        state = load_checkpoint(path)
        del state["data"]
        torch.save({**state, "format": FORMAT}, path)
    predictor = load_predictor(old, device="cpu")
    assert predictor.mean == pytest.approx(load_predictor(run, device="cpu").mean)
    shutil.rmtree(pairs / "masks")  # the training data is no longer there
    try:
        with pytest.raises(Exception, match="predates the normalisation statistics"):
            load_predictor(old, device="cpu")
    finally:
        make_pairs(tmp_path / "again")
        shutil.copytree(tmp_path / "again" / "masks", pairs / "masks")


def _bad_case(name: str, run: Path, inputs: Path, tmp: Path) -> tuple[list[str], str]:
    """(IMAGE/RUN_DIR arguments, a phrase of the expected error) for each bad input."""
    good = str(inputs / "a.png")
    if name == "not_an_image_suffix":
        (tmp / "notes.txt").write_text("hello")
        return [str(run), good, str(tmp / "notes.txt")], "is not an image file"
    if name == "not_an_image_content":
        (tmp / "fake.png").write_bytes(b"not a png at all")
        return [str(run), good, str(tmp / "fake.png")], "could not be read as an image"
    if name == "empty_folder":
        (tmp / "empty").mkdir()
        return [str(run), good, str(tmp / "empty")], "folder with no images"
    if name == "missing_image":
        return [str(run), good, str(tmp / "nope.png")], "does not exist"
    if name == "not_a_run":
        (tmp / "plain").mkdir()
        return [str(tmp / "plain"), good], "is not a run directory"
    if name == "no_checkpoint":
        (tmp / "fresh").mkdir()
        shutil.copy(run / "config.yaml", tmp / "fresh" / "config.yaml")
        return [str(tmp / "fresh"), good], "does not exist: the run has not finished an epoch"
    if name == "rgb_for_a_grey_model":
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp / "colour.png")
        return [str(run), good, str(tmp / "colour.png")], "trained on greyscale (1 channel)"
    if name == "same_output_name":
        (tmp / "other").mkdir()
        shutil.copy(inputs / "a.png", tmp / "other" / "a.png")
        return [str(run), good, str(tmp / "other")], "would both write a.png"
    if name == "bad_tile":
        return [str(run), good, "--tile", "100"], "--tile must be a multiple of 16"
    if name == "bad_overlap":
        return [str(run), good, "--tile", "32", "--overlap", "32"], "--overlap must be in"
    if name == "bad_threshold":
        return [str(run), good, "--threshold", "1.5"], "--threshold must be in"
    raise AssertionError(name)


BAD_CASES = [
    "not_an_image_suffix",
    "not_an_image_content",
    "empty_folder",
    "missing_image",
    "not_a_run",
    "no_checkpoint",
    "rgb_for_a_grey_model",
    "same_output_name",
    "bad_tile",
    "bad_overlap",
    "bad_threshold",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_and_writes_nothing(case, trained, inputs, tmp_path, capsys):
    run, _ = trained
    arguments, phrase = _bad_case(case, run, inputs, tmp_path)
    out = tmp_path / "out"
    status = main(["segment", "predict", *arguments, "--out", str(out)])
    error = capsys.readouterr().err.strip()
    assert status == 2 and phrase in error and len(error.splitlines()) == 1, error
    assert not out.exists()


def test_an_output_folder_that_is_a_file_is_refused(trained, inputs, tmp_path, capsys):
    run, _ = trained
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    assert main(["segment", "predict", str(run), str(inputs), "--out", str(out)]) == 2
    assert "is an existing file, not a folder" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"


def _as_detection_run(run: Path, folder: Path) -> Path:
    """A copy of a segmentation run relabelled as a detection run (same dense model)."""
    shutil.copytree(run, folder)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["task"]["name"] = "detection"
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def test_each_command_refuses_the_other_task(trained, inputs, tmp_path, capsys):
    run, _ = trained
    detection = _as_detection_run(run, tmp_path / "detection_run")
    out = tmp_path / "out"
    assert main(["detect", "predict", str(run), str(inputs), "--out", str(out)]) == 2
    assert "is a segmentation run; `dlcc detect predict` needs a detection run" in (
        capsys.readouterr().err
    )
    assert main(["segment", "predict", str(detection), str(inputs), "--out", str(out)]) == 2
    assert "use `dlcc detect predict`" in capsys.readouterr().err
    assert not out.exists()


def test_detect_predict_writes_points_as_x_y_score(trained, inputs, tmp_path, monkeypatch):
    run, _ = trained
    detection = _as_detection_run(run, tmp_path / "detection_run")
    out = tmp_path / "out"
    argv = ["detect", "predict", str(detection), str(inputs / "c.png"), "--out", str(out)]
    assert main([*argv, "--threshold", "0.5"]) == 0
    lines = (out / "c.csv").read_text().splitlines()
    assert lines[0] == "x,y,score" and len(lines) > 1
    for line in lines[1:]:
        x, y, score = line.split(",")
        assert 0 <= int(x) < 90 and 0 <= int(y) < 70 and 0.5 < float(score) <= 1
    assert np.asarray(Image.open(out / "overlays" / "c_overlay.png")).shape == (70, 90, 3)
    # x is the column and y the row: a peak at row 3, column 5 is written as 5,3.
    monkeypatch.setattr(
        commands, "find_cell_peaks", lambda *a: (np.array([[3, 5]]), np.array([0.75]))
    )
    assert main(argv) == 0
    assert (out / "c.csv").read_text() == "x,y,score\n5,3,0.75\n"


def test_multi_class_masks_are_argmax_indices_and_overlays_tint_non_background():
    from dlcc.segmentation.outputs import label_map, segmentation_overlay

    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 6, 7))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=0)
    labels = label_map(probabilities)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.argmax(logits, axis=0))  # the oracle
    overlay = segmentation_overlay(np.full((6, 7), 128, np.uint8), labels, binary=False)
    background = overlay[labels == 0]
    assert (background == background[:, :1]).all()  # grey where class 0
    assert not (overlay[labels == 1] == overlay[labels == 1][:, :1]).all()  # tinted
    assert not np.array_equal(overlay[labels == 1][0], overlay[labels == 2][0])


def test_read_image_gives_16_bit_pngs_and_tiffs_as_uint16(tmp_path):
    from dlcc.segmentation.outputs import read_image

    values = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    for name in ("deep.png", "deep.tif"):
        Image.fromarray(values).save(tmp_path / name)
        pixels = read_image(tmp_path / name)
        assert pixels.dtype == np.uint16
        np.testing.assert_array_equal(pixels, values)


def test_help_lists_both_commands_and_explains_the_conventions(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    assert "segment" in listing and "detect" in listing
    with pytest.raises(SystemExit):
        main(["segment", "predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "255 where P(class 1) > --threshold" in text and "argmax class index" in text
    with pytest.raises(SystemExit):
        main(["detect", "predict", "--help"])
    assert "header x,y,score" in " ".join(capsys.readouterr().out.split())
