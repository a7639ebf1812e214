"""Each way an export or a load can go wrong is one clear DlccError, and leaves no file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from export_cases import build_case

from dlcc.errors import DlccError
from dlcc.export import ExportError, load_exported
from dlcc.export.exporter import export_model, export_run
from dlcc.export.formats import onnx_bytes, unsupported_operator
from dlcc.export.graph import ServingSpec


def _fake_run(tmp_path, kind: str, with_checkpoint: bool = False):
    root = tmp_path / "run"
    (root / "checkpoints").mkdir(parents=True)
    settings = {"kind": kind, "task": "classification", "model": {"name": "small_cnn"}}
    (root / "config.yaml").write_text(yaml.safe_dump(settings))
    if with_checkpoint:
        (root / "checkpoints" / "last.pt").write_bytes(b"")
    return root


def test_an_unknown_format_is_refused_with_the_choices(tmp_path):
    with pytest.raises(ExportError, match=r"unknown export format 'onx'.*onnx, torchscript"):
        export_run(tmp_path, "onx", tmp_path / "m.onnx")


def test_a_numpy_run_is_refused(tmp_path):
    root = _fake_run(tmp_path, "numpy")
    with pytest.raises(DlccError, match="a numpy run; export needs a torch run"):
        export_run(root, "onnx", tmp_path / "m.onnx")


def test_a_run_without_the_checkpoint_says_which_to_use(tmp_path):
    root = _fake_run(tmp_path, "torch", with_checkpoint=True)  # last.pt only
    with pytest.raises(ExportError, match=r"best\.pt does not exist.*--checkpoint last"):
        export_run(root, "onnx", tmp_path / "m.onnx")
    empty = _fake_run(tmp_path / "other", "torch")
    with pytest.raises(ExportError, match=r"has not finished an epoch yet; train it first$"):
        export_run(empty, "torchscript", tmp_path / "m.pt", checkpoint="last")


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(DlccError, match="not a run directory"):
        export_run(tmp_path, "onnx", tmp_path / "m.onnx")


class Spectrum(torch.nn.Module):
    """(N, C, H, W) -> (N, 2): uses the FFT, which ONNX's exporter cannot translate."""

    def forward(self, x):
        return torch.fft.fft(x.flatten(1)).abs()[:, :2]


def test_an_op_onnx_cannot_export_is_named(tmp_path):
    spec = ServingSpec(Spectrum().eval(), "images", "classes", (1, 4, 4))
    with pytest.raises(ExportError, match=r"operator 'aten::fft_fft'.*--format torchscript"):
        onnx_bytes(spec)


def test_the_op_name_is_read_from_the_exporters_messages():
    message = "Exporting the operator 'aten::linalg_eig' to ONNX opset version 17 is not supported"
    assert unsupported_operator(RuntimeError(message)) == "aten::linalg_eig"
    assert unsupported_operator(RuntimeError("no op here")) is None


@pytest.mark.parametrize("file_format", ["onnx", "torchscript"])
def test_a_failed_parity_check_leaves_no_file_and_keeps_the_old_one(tmp_path, file_format):
    model, name, in_shape, classes = build_case("small_cnn")
    out = tmp_path / f"model.{file_format}"
    out.write_bytes(b"an earlier export")
    # A negative tolerance fails every comparison, as a real mismatch would.
    with pytest.raises(ExportError, match=r"differs from eager PyTorch by up to .*nothing was"):
        export_model(model, name, in_shape, file_format, out, classes=classes, tolerance=-1.0)
    assert out.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temp, no sidecar


def test_a_model_that_is_not_in_the_registry_is_refused(tmp_path):
    with pytest.raises(ExportError, match="not in the registry"):
        export_model(Spectrum(), "spectrum", (1, 4, 4), "onnx", tmp_path / "m", classes=["a"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model, name, in_shape, classes = build_case("char_gpt")
    out = tmp_path_factory.mktemp("exported") / "gpt.onnx"
    export_model(model, name, in_shape, "onnx", out, classes=classes)
    image_model, image_name, image_shape, image_classes = build_case("small_cnn")
    image_out = out.with_name("cnn.pt")
    export_model(image_model, image_name, image_shape, "torchscript", image_out,
                 classes=image_classes)  # fmt: skip
    return load_exported(out), load_exported(image_out)


@pytest.mark.parametrize(
    ("which", "inputs", "message"),
    [
        (1, np.zeros((2, 3, 28, 28), np.float32), r"axis 1 must be 1"),
        (1, np.zeros((1, 28, 28), np.float32), r"add the batch axis"),
        (1, np.array([["a"]]), r"expected float32 inputs"),
        (0, np.zeros((1, 17), np.int64), r"length axis \(axis 1\) takes sizes 1..16"),
        (0, np.zeros((1, 4), np.float32), r"expected token ids"),
        (0, np.full((1, 4), 12), r"token ids must lie in 0..11"),
    ],
)
def test_inputs_that_do_not_fit_the_file_are_refused_in_one_line(exported, which, inputs, message):
    with pytest.raises(ExportError, match=message):
        exported[which](inputs)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit's notice
def test_files_not_written_by_dlcc_export_are_refused(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model")
    with pytest.raises(ExportError, match="neither a TorchScript file nor a readable ONNX"):
        load_exported(junk)
    plain = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2)), str(plain))
    with pytest.raises(ExportError, match="no dlcc-export/1 metadata"):
        load_exported(plain)
    with pytest.raises(ExportError, match="does not exist"):
        load_exported(tmp_path / "missing.onnx")


def test_an_out_path_that_is_a_folder_is_refused(tmp_path):
    model, name, in_shape, classes = build_case("mlp")
    with pytest.raises(ExportError, match="is a directory; give a file name"):
        export_model(model, name, in_shape, "onnx", tmp_path, classes=classes)


def test_the_callers_model_is_left_as_it_was(tmp_path):
    model, name, in_shape, classes = build_case("small_cnn")
    model.train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    export_model(model, name, in_shape, "torchscript", tmp_path / "m.pt", classes=classes)
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)
