"""`dlcc doctor` on the machine running the tests: structure, statuses, table, JSON, CLI.

The full run (smoke tests and GEMM timings included) happens once per module; the data
directory is an empty temporary folder, so only the embedded `digits` dataset is present.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlcc.cli import main
from dlcc.doctor import STATUSES, DoctorReport, format_table, run_doctor
from dlcc.doctor import commands as doctor_commands

torch = pytest.importorskip("torch")

ALWAYS_THERE = [
    "python",
    "os",
    "cpu",
    "ram",
    "disk",
    "datasets",
    "numpy",
    "blas",
    "torchmetrics",
    "matplotlib",
    "torch",
    "torch build",
    "torch threads",
    "cuda",
    "mps",
]
CPU_SMOKE = ["matmul cpu", "train cpu", "gemm numpy cpu", "gemm torch cpu"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("empty_data_dir")


@pytest.fixture(scope="module")
def report(data_dir: Path) -> DoctorReport:
    return run_doctor(data_dir=data_dir)


def test_every_check_is_reported_once_with_a_valid_status(report: DoctorReport) -> None:
    names = [check.name for check in report.checks]
    assert len(names) == len(set(names)), names
    for name in ALWAYS_THERE + CPU_SMOKE:
        assert name in names
    for check in report.checks:
        assert check.status in STATUSES
        assert check.value.strip(), check
        assert check.section, check
        if check.status != "ok":
            assert check.hint.strip(), f"{check.name} is {check.status} without a fix"


def test_this_machine_can_run_the_course(report: DoctorReport) -> None:
    assert report.ok, format_table(report)
    assert report.exit_status() == 0
    assert report.smoke
    assert report.devices[0] == "cpu"
    for name in ["python", "numpy", "torch", "matmul cpu", "train cpu"]:
        assert report.check(name).status == "ok", report.check(name)


def test_no_gpu_is_a_warning_not_a_failure(report: DoctorReport) -> None:
    cuda = report.check("cuda")
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        assert cuda.status == "ok"
        assert [name for name in report.devices if name.startswith("cuda")] == [
            f"cuda:{index}" for index in range(count)
        ]
        for index in range(count):
            assert report.check(f"gpu cuda:{index}").details["memory_gib"] > 0
            assert report.check(f"train cuda:{index}").status == "ok"
            assert report.check(f"gemm torch cuda:{index}").details["gflops"] > 0
    else:
        assert cuda.status == "warn"
        assert "CPU" in cuda.hint
        assert "cuda" not in " ".join(report.devices)
        assert not [check for check in report.checks if check.name.startswith("gpu ")]


def test_smoke_and_speed_lines_carry_numbers(report: DoctorReport) -> None:
    matmul = report.check("matmul cpu")
    assert matmul.details["max_abs_error"] < matmul.details["tolerance"]
    train = report.check("train cpu")
    assert train.details["last_loss"] < train.details["first_loss"]
    for name in ["gemm numpy cpu", "gemm torch cpu"]:
        gemm = report.check(name)
        assert gemm.section == "speed"
        assert gemm.details["gflops"] > 0
        assert "GFLOP/s" in gemm.value


def test_missing_datasets_are_a_warning_that_says_how_to_fetch(report: DoctorReport) -> None:
    datasets = report.check("datasets")
    assert datasets.status == "warn"
    assert "digits" in datasets.details["present"]
    assert "mnist" in datasets.details["missing"]
    assert "`dlcc data fetch mnist`" in datasets.hint
    assert "`dlcc data fetch digits`" not in datasets.hint


def test_report_round_trips_through_json(report: DoctorReport) -> None:
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == {"dlcc_version", "ok", "status", "counts", "smoke", "devices", "checks"}
    assert data["ok"] is True
    assert data["status"] in ("ok", "warn")
    assert sum(data["counts"].values()) == len(report.checks)
    assert set(data["checks"][0]) == {"name", "status", "value", "hint", "section", "details"}
    assert DoctorReport.from_dict(data) == report


def test_table_shows_every_check_and_its_fix(report: DoctorReport) -> None:
    table = format_table(report)
    for check in report.checks:
        assert check.name in table
        assert check.value in table
    assert table.count("fix: ") == sum(1 for check in report.checks if check.hint)
    assert table.splitlines()[-1].startswith("ok, ")


def test_cli_prints_json_on_stdout(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["doctor", "--json", "--no-smoke", "--data-dir", str(data_dir)])
    data = json.loads(capsys.readouterr().out)
    assert status == 0
    assert data["smoke"] is False
    assert data["devices"] == []
    assert not [check for check in data["checks"] if check["section"] == "speed"]


def test_cli_prints_the_table(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["doctor", "--no-smoke", "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    assert status == 0
    assert out.startswith("dlcc doctor ")
    assert "torch build" in out


def test_python_m_dlcc_doctor_json(data_dir: Path) -> None:
    environment = {**os.environ, "DLCC_DATA_DIR": str(data_dir)}
    completed = subprocess.run(
        [sys.executable, "-m", "dlcc", "doctor", "--json", "--device", "cpu"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert data["ok"] is True
    assert data["devices"] == ["cpu"]
    report = DoctorReport.from_dict(data)
    assert report.check("disk").details["data_dir"] == str(data_dir)
    assert report.check("train cpu").status == "ok"


def test_module_import_stays_cheap() -> None:
    code = (
        "import sys, dlcc.doctor, dlcc.doctor.commands; "
        "print('torch' in sys.modules, 'numpy' in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert completed.stdout.split() == ["False", "False"], completed.stderr
    assert doctor_commands.register  # the CLI hook exists
