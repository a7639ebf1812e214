"""``dlcc data list | fetch | verify`` through `dlcc.cli.main`, as a user runs them."""

from __future__ import annotations

import pytest
from data_factories import MNIST_FILES, tiny_mnist_spec, write_tiny_idx_dataset

from dlcc.cli import main
from dlcc.data import dataset_names, registry


def test_data_list_returns_0_and_lists_all_five_datasets(capsys, isolated_home):
    assert main(["data", "list"]) == 0
    output = capsys.readouterr().out
    for name in dataset_names():
        assert f"  {name} " in output
    assert f"data directory: {isolated_home / '.cache' / 'dlcc'} (from default)" in output
    assert "digits" in output and "embedded in scikit-learn" in output


def test_data_list_shows_where_present_data_is(capsys, tiny_mnist, monkeypatch):
    monkeypatch.setenv("DLCC_DATA_DIR", str(tiny_mnist.data_dir))
    assert main(["data", "list"]) == 0
    output = capsys.readouterr().out
    assert "(from $DLCC_DATA_DIR)" in output
    mnist_line = next(line for line in output.splitlines() if line.startswith("  mnist "))
    assert "present" in mnist_line and str(tiny_mnist.folder) in mnist_line


def test_data_verify_passes_on_intact_data(capsys, tiny_mnist):
    assert main(["data", "verify", "mnist", "--data-dir", str(tiny_mnist.data_dir)]) == 0
    output = capsys.readouterr().out
    assert output.count("  ok  ") == 4
    assert output.rstrip().endswith("mnist: verified")


def test_data_verify_fails_with_one_line_naming_the_bad_file(capsys, tiny_mnist):
    damaged = tiny_mnist.folder / "t10k-images-idx3-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:200])
    assert main(["data", "verify", "mnist", "--data-dir", str(tiny_mnist.data_dir)]) == 2
    captured = capsys.readouterr()
    error_lines = captured.err.strip().splitlines()
    assert len(error_lines) == 1
    assert "dlcc: error: mnist failed verification (t10k-images-idx3-ubyte.gz)" in error_lines[0]
    assert "run `dlcc data fetch mnist`" in error_lines[0]
    assert "unreadable" in captured.out and "Traceback" not in captured.err


def test_data_fetch_over_a_local_server(capsys, tmp_path, http_server, monkeypatch):
    checksums = write_tiny_idx_dataset(http_server.root)
    spec = tiny_mnist_spec(checksums, urls_base=http_server.url)
    monkeypatch.setitem(registry.DATASETS, "mnist", spec)
    data = tmp_path / "data"
    assert main(["data", "fetch", "mnist", "--data-dir", str(data)]) == 0
    output = capsys.readouterr().out
    assert output.count("downloaded, verified") == 4
    assert f"mnist: ready in {data / 'mnist'}" in output
    assert sorted(path.name for path in (data / "mnist").iterdir()) == sorted(MNIST_FILES)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["data", "fetch", "mnist-csv"], "mnist-csv has no public download"),
        (["data", "verify", "cifar10"], "dataset cifar10 is not in"),
        (["data", "verify", "mnist-csv"], "no public download: copy the course's images_train.csv"),
        (["data", "verify", "imagenet"], "unknown dataset 'imagenet'"),
        (["data", "fetch", "imagenet"], "unknown dataset 'imagenet'"),
    ],
)
def test_user_errors_exit_2_with_one_actionable_line(capsys, argv, expected):
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert expected in error and "\n" not in error


def test_data_fetch_digits_downloads_nothing(capsys):
    assert main(["data", "fetch", "digits"]) == 0
    assert "nothing to download" in capsys.readouterr().out
