"""``dlcc explain`` on a real tiny classification run: the overlays and the JSON written, a
grey model taking an RGB file, and the one-line refusals that leave nothing written."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from dlcc.cli import main
from dlcc.data import load_dataset
from dlcc.explain import input_gradient, resolve_target
from dlcc.explain.overlay import standardise, unit_pixels
from dlcc.segmentation.predictor import load_predictor
from dlcc.training.config import load_recipe
from dlcc.training.loop import train

METHODS = ("saliency", "smoothgrad", "gradcam", "occlusion")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished mnist_cnn_smoke run (2 epochs on the embedded 8x8 digits)."""
    config = load_recipe("mnist_cnn_smoke", ["train.epochs=2"])
    config.train.progress, config.train.threads, config.train.device = False, 1, "cpu"
    run_dir = tmp_path_factory.mktemp("explain") / "run"
    train(config, run_dir)
    return run_dir


@pytest.fixture
def images(tmp_path):
    """Two 8-bit digit PNGs (8x8), an RGB one (16x16), and a damaged .png."""
    folder = tmp_path / "images"
    folder.mkdir()
    dataset = load_dataset("digits", None, val_size=0.1, seed=0, normalize=False)
    for index in range(2):
        picture = (dataset.x_test[index, 0] * 255).astype(np.uint8)
        Image.fromarray(picture).save(folder / f"digit{index}.png")
    big = np.kron(dataset.x_test[2, 0], np.ones((2, 2)))  # 16x16, a size the run did not train on
    rgb = np.repeat((big * 255).astype(np.uint8)[..., None], 3, axis=-1)
    Image.fromarray(rgb).save(folder / "rgb.png")
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    return folder


def _explain(run_dir, out, *arguments) -> int:
    return main(
        ["explain", str(run_dir), *map(str, arguments), "--out", str(out), "--device", "cpu"]
    )


@pytest.mark.parametrize("method", METHODS)
def test_explain_writes_an_overlay_per_image_and_the_targets(run, images, tmp_path, method):
    out = tmp_path / "out"
    assert _explain(run, out, images, "--method", method, "--samples", "3") == 0
    records = json.loads((out / f"explain_{method}.json").read_text())
    assert [record["output"] for record in records] == [
        f"{name}_{method}.png" for name in ("digit0", "digit1", "rgb")
    ]
    for record in records:
        picture = np.asarray(Image.open(out / record["output"]))
        assert picture.shape == (256, 256, 3)  # 8x8 enlarged 32 times, coloured
        heat = np.load(out / record["map"])
        assert heat.shape == (8, 8) and np.isfinite(heat).all() and heat.max() > 0
        assert record["target"] == record["predicted"]  # the default: the predicted class
    assert not list(out.glob(".*.part"))


def test_the_saliency_overlay_is_the_model_s_own_input_gradient(run, images, tmp_path):
    out = tmp_path / "out"
    assert _explain(run, out, images / "digit0.png", "--target", "3") == 0
    # the oracle: the gradient of class 3's logit, by autograd on the loaded model
    predictor = load_predictor(run, device="cpu")
    pixels, _ = unit_pixels(np.asarray(Image.open(images / "digit0.png")), 1, "digit0")
    inputs = torch.from_numpy(standardise(pixels, predictor.mean, predictor.std))[None]
    gradient = input_gradient(predictor.model, inputs, resolve_target(predictor.model, inputs, 3))
    expected = gradient.abs().amax(dim=1)[0].numpy()  # (8, 8)
    np.testing.assert_allclose(np.load(out / "digit0_saliency.npy"), expected, rtol=1e-5, atol=1e-7)
    assert json.loads((out / "explain_saliency.json").read_text())[0]["target"] == 3


def test_an_rgb_file_is_converted_for_a_grey_model_and_says_so(run, images, tmp_path, capsys):
    assert _explain(run, tmp_path / "out", images / "rgb.png") == 0
    printed = capsys.readouterr().out
    assert "RGB image converted to greyscale for a greyscale model" in printed
    assert "resized from 16x16 to the training size 8x8" in printed


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--method", "lime"],
            r"--method: expected one of saliency, smoothgrad, gradcam, occlusion",
        ),
        (["--target", "12"], r"--target: expected a class index in 0\.\.9, received 12"),
        (["--box", "0,0,4,4"], r"--box is for segmentation runs"),
        (["--method", "gradcam", "--layer", "stem"], r"--layer 'stem': no such module"),
    ],
)
def test_bad_flags_are_refused_in_one_line_and_nothing_is_written(
    run, images, tmp_path, capsys, arguments, message
):
    import re

    assert _explain(run, tmp_path / "out", images, *arguments) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and re.search(message, error), error
    assert not (tmp_path / "out").exists()


def test_an_unreadable_image_or_a_run_without_a_checkpoint_is_refused(
    run, images, tmp_path, capsys
):
    broken = images.parent / "broken.png"
    assert _explain(run, tmp_path / "out", images / "digit0.png", broken) == 2
    assert "broken.png" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    bare = tmp_path / "bare"
    shutil.copytree(run, bare)
    shutil.rmtree(bare / "checkpoints")
    assert _explain(bare, tmp_path / "out", images) == 2
    assert "best.pt does not exist" in capsys.readouterr().err

    text = tmp_path / "text"
    shutil.copytree(run, text)
    document = yaml.safe_load((text / "config.yaml").read_text())
    document["task"] = "language_model"
    (text / "config.yaml").write_text(yaml.safe_dump(document))
    assert _explain(text, tmp_path / "out", images) == 2
    assert "is a language_model run; `dlcc explain` needs an image model" in capsys.readouterr().err


def test_a_segmentation_run_explains_a_box_of_its_output_and_nothing_beyond_its_reach(
    tmp_path, monkeypatch
):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "training"))
    from training_helpers import make_image_masks  # the training tests' image/mask pairs

    pairs = make_image_masks(tmp_path / "pairs", count=12, size=32)
    config = load_recipe("segmentation_smoke", [f"data.path={pairs}", "train.epochs=2"])
    config.train.progress, config.train.threads, config.train.device = False, 1, "cpu"
    train(config, tmp_path / "run")
    out = tmp_path / "out"
    image = pairs / "images" / "0.png"
    assert _explain(tmp_path / "run", out, image, "--box", "0,0,4,4") == 0
    record = json.loads((out / "explain_saliency.json").read_text())[0]
    assert (record["region"], record["region_pixels"], record["target"]) == ("box", 16, 1)
    heat = np.load(out / record["map"])  # (32, 32): small_fcn sees a few pixels around each
    assert heat.shape == (32, 32) and heat[:4, :4].sum() > 0 and heat[16:, 16:].max() == 0
