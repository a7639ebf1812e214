"""`dlcc doctor` where things go wrong, simulated by monkeypatching: each becomes a line with
the right status and a fix, and only what the course needs makes the exit status non-zero."""

from __future__ import annotations

import shutil
import sys
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dlcc import doctor
from dlcc.cli import main
from dlcc.doctor import Check, DoctorReport, NvidiaSmi, format_table, run_doctor
from dlcc.errors import DlccError

torch = pytest.importorskip("torch")

GIB = 2**30


@pytest.fixture(autouse=True)
def quick_gemm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time GEMMs for a moment only: these tests look at statuses, not speed."""
    monkeypatch.setattr(doctor.smoke, "GEMM_SECONDS", 0.005)
    monkeypatch.setattr(doctor.smoke, "CPU_GEMM_SIZE", 64)


@pytest.fixture
def no_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "query_nvidia_smi", lambda: None)


def nvidia_smi_with_gpus(count: int) -> NvidiaSmi:
    gpu = {"name": "NVIDIA H100 80GB HBM3", "driver_version": "550.54.15", "memory": "81559 MiB"}
    return NvidiaSmi("/usr/bin/nvidia-smi", gpus=[dict(gpu) for _ in range(count)])


def test_torch_that_will_not_import_fails_with_a_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    report = run_doctor(smoke=True, devices=["cpu"], data_dir=tmp_path)
    torch_check = report.check("torch")
    assert torch_check.status == "fail"
    assert "make install" in torch_check.hint
    assert not report.ok
    assert report.exit_status() == 1
    names = [check.name for check in report.checks]
    assert "cuda" not in names
    assert "train cpu" not in names
    assert report.check("gemm numpy cpu").status == "ok"  # NumPy still gets timed

    assert main(["doctor", "--no-smoke", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  torch" in out
    assert out.splitlines()[-1].startswith("FAIL: 1 failed (torch)")


def test_torch_that_crashes_on_import_fails_as_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = __import__

    def import_without_cuda_libraries(name, *args, **kwargs):
        if name == "torch":
            raise OSError("libcudnn.so.9: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", import_without_cuda_libraries)
    module, check = doctor.import_torch()
    assert module is None
    assert check.status == "fail"
    assert "libcudnn" in check.value
    assert "--force-reinstall torch" in check.hint


def test_a_wrong_matmul_fails_the_smoke_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        doctor.smoke, "matmul_on_device", lambda torch, device, left, right: left @ right + 1.0
    )
    report = run_doctor(smoke=True, devices=["cpu"])
    matmul = report.check("matmul cpu")
    assert matmul.status == "fail"
    assert matmul.details["max_abs_error"] > matmul.details["tolerance"]
    assert "reinstall" in matmul.hint
    assert report.check("train cpu").status == "ok"
    assert report.exit_status() == 1


def test_a_loss_that_does_not_fall_fails_the_smoke_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        doctor.smoke, "train_steps_on_device", lambda torch, device: [0.7, 0.69, 0.7]
    )
    check = doctor.smoke_train_check(torch, "cpu")
    assert check.status == "fail"
    assert "did not decrease" in check.value
    monkeypatch.setattr(
        doctor.smoke, "train_steps_on_device", lambda torch, device: [0.7, float("nan")]
    )
    assert doctor.smoke_train_check(torch, "cpu").status == "fail"


def test_training_steps_leave_the_global_random_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    losses = doctor.train_steps_on_device(torch, "cpu", steps=5)
    assert torch.equal(torch.rand(3), expected)
    assert losses[-1] < losses[0]


class FakeDeviceProperties(SimpleNamespace):
    pass


def fake_cuda(monkeypatch: pytest.MonkeyPatch, gpus: list[FakeDeviceProperties], arch: list[str]):
    """Make torch believe it is a CUDA 12.6 build that sees `gpus`."""
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(gpus))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: gpus[index])
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: arch)
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    monkeypatch.setattr(doctor, "query_nvidia_smi", lambda: nvidia_smi_with_gpus(len(gpus)))


def h100(**overrides) -> FakeDeviceProperties:
    fields = {
        "name": "NVIDIA H100 80GB HBM3",
        "total_memory": 80 * GIB,
        "major": 9,
        "minor": 0,
        "multi_processor_count": 132,
    }
    return FakeDeviceProperties(**{**fields, **overrides})


def test_simulated_gpus_get_one_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [h100(), h100(name="NVIDIA GeForce GTX 750", total_memory=2 * GIB, major=5, minor=0)]
    fake_cuda(monkeypatch, gpus, arch=["sm_80", "sm_90"])
    report = run_doctor(smoke=False)
    assert report.ok
    cuda = report.check("cuda")
    assert cuda.status == "ok"
    assert "2 GPU(s)" in cuda.value and "550.54.15" in cuda.value
    first = report.check("gpu cuda:0")
    assert first.status == "ok"
    assert "NVIDIA H100 80GB HBM3, 80.0 GiB, compute capability 9.0" in first.value
    assert "driver 550.54.15" in first.value
    assert first.details == {
        "name": "NVIDIA H100 80GB HBM3",
        "memory_gib": 80.0,
        "capability": "9.0",
        "multiprocessors": 132,
    }
    old = report.check("gpu cuda:1")
    assert old.status == "warn"  # sm_50 has no kernels in a build for sm_80 and sm_90
    assert "sm_50" in old.hint
    assert report.check("cudnn").value == "9.1.0, enabled"
    assert "gpu" in format_table(report)


def test_smoke_tests_run_on_every_simulated_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda(monkeypatch, [h100(), h100()], arch=["sm_90"])
    # The fake GPUs compute on the CPU; the GEMM timing is replaced by a fixed line.
    monkeypatch.setattr(
        doctor.smoke,
        "matmul_on_device",
        lambda torch, device, left, right: left.astype(np.float64) @ right.astype(np.float64),
    )
    monkeypatch.setattr(
        doctor.smoke, "train_steps_on_device", lambda torch, device: [0.7, 0.3, 0.1]
    )

    def fake_gemm(torch, device):
        return Check(f"gemm torch {device}", "ok", "1.0 GFLOP/s", details={"gflops": 1.0})

    monkeypatch.setattr(doctor, "torch_gemm_check", fake_gemm)
    report = run_doctor(smoke=True)
    assert report.devices == ["cpu", "cuda:0", "cuda:1"]
    for device in report.devices:
        assert report.check(f"matmul {device}").status == "ok"
        assert report.check(f"train {device}").status == "ok"
        assert report.check(f"gemm torch {device}").section == "speed"

    only_second = run_doctor(smoke=True, devices=["cuda:1"])
    assert only_second.devices == ["cuda:1"]
    assert "gemm numpy cpu" not in [check.name for check in only_second.checks]


def test_a_crashing_gpu_fails_its_smoke_test(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda(monkeypatch, [h100()], arch=["sm_90"])

    def crash(torch, device, left, right):
        if device != "cpu":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return left @ right

    monkeypatch.setattr(doctor.smoke, "matmul_on_device", crash)
    monkeypatch.setattr(doctor.smoke, "train_steps_on_device", lambda torch, device: [0.7, 0.1])
    monkeypatch.setattr(doctor, "torch_gemm_check", lambda torch, device: [])
    report = run_doctor(smoke=True, devices=["cpu", "cuda"])
    check = report.check("matmul cuda:0")
    assert check.status == "fail"
    assert "illegal memory access" in check.value
    assert "CUDA_VISIBLE_DEVICES" in check.hint
    assert report.check("matmul cpu").status == "ok"
    assert report.exit_status() == 1


def test_a_requested_device_that_is_absent_is_a_warning(no_nvidia_smi: None) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    report = run_doctor(smoke=True, devices=["cpu", "cuda:3", "cpu"])
    assert report.devices == ["cpu"]
    absent = report.check("device cuda:3")
    assert absent.status == "warn"
    assert absent.hint
    assert report.ok


def test_unknown_device_names_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DlccError, match="expected cpu, cuda, cuda:N or mps"):
        run_doctor(smoke=False, devices=["tpu"])
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", "--device", "gpu"])
    assert exit_info.value.code == 2
    assert "unknown device 'gpu'" in capsys.readouterr().err


def test_cpu_torch_on_a_machine_with_nvidia_smi_says_install_the_cuda_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    smi = nvidia_smi_with_gpus(1)
    build = doctor.torch_build_check(torch, smi)
    assert build.status == "warn"
    assert "download.pytorch.org/whl/cu" in build.hint
    [cuda] = doctor.cuda_checks(torch, smi)
    assert cuda.status == "warn"
    assert "CPU-only" in cuda.value
    assert "download.pytorch.org/whl/cu" in cuda.hint
    assert doctor.torch_build_check(torch, None).status == "ok"
    [no_gpu] = doctor.cuda_checks(torch, None)
    assert no_gpu.status == "warn"
    assert "no CUDA GPU visible" in no_gpu.value
    assert 'TORCH_INSTALL="torch --index-url' in no_gpu.hint


def test_cuda_build_that_cannot_use_the_driver_explains_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def unavailable_with_warning() -> bool:
        import warnings

        warnings.warn("The NVIDIA driver on your system is too old", UserWarning, stacklevel=1)
        return False

    monkeypatch.setattr(torch.cuda, "is_available", unavailable_with_warning)
    [cuda] = doctor.cuda_checks(torch, nvidia_smi_with_gpus(1))
    assert cuda.status == "warn"
    assert "driver on your system is too old" in cuda.value
    assert "update the driver" in cuda.hint
    [broken] = doctor.cuda_checks(torch, NvidiaSmi("/usr/bin/nvidia-smi", error="NVML mismatch"))
    assert "NVML mismatch" in broken.value
    assert "reboot" in broken.hint
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    [hidden] = doctor.cuda_checks(torch, nvidia_smi_with_gpus(1))
    assert "unset CUDA_VISIBLE_DEVICES" in hidden.hint


def test_python_older_than_3_10_fails() -> None:
    check = doctor.python_check((3, 9, 18))
    assert check.status == "fail"
    assert "3.9.18" in check.value
    assert "Python >= 3.10" in check.hint
    assert doctor.python_check((3, 10, 0)).status == "ok"


def test_missing_numpy_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)
    check = doctor.numpy_check()
    assert check.status == "fail"
    assert "pip install numpy" in check.hint


def test_numpy_without_blas_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor.numeric, "numpy_blas_pools", lambda: [])
    monkeypatch.setattr(
        doctor.numeric, "numpy_blas_build", lambda: {"name": "none", "found": False}
    )
    check = doctor.blas_check()
    assert check.status == "warn"
    assert "--force-reinstall" in check.hint
    monkeypatch.setattr(
        doctor.numeric,
        "numpy_blas_build",
        lambda: {"name": "accelerate", "found": True, "version": ""},
    )
    assert doctor.blas_check().status == "ok"  # Apple's BLAS, invisible to threadpoolctl


def test_missing_optional_package_is_a_warning() -> None:
    check = doctor.optional_package_check("dlcc-surely-not-installed")
    assert check.status == "warn"
    assert "pip install dlcc-surely-not-installed" in check.hint


def test_more_torch_threads_than_cores_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor.gpu, "usable_cores", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)
    check = doctor.torch_threads_check(torch)
    assert check.status == "warn"
    assert "OMP_NUM_THREADS=2" in check.hint
    monkeypatch.setattr(doctor.gpu, "usable_cores", lambda: 32)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert doctor.torch_threads_check(torch).status == "warn"


def test_little_disk_or_ram_is_a_warning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * GIB, 9.5 * GIB, GIB // 2))
    check = doctor.disk_check(tmp_path / "not" / "yet" / "made")
    assert check.status == "warn"
    assert "DLCC_DATA_DIR" in check.hint
    import psutil

    memory = SimpleNamespace(total=2 * GIB, available=GIB)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: memory)
    assert doctor.ram_check().status == "warn"


def test_a_crashing_check_becomes_a_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode() -> Check:
        raise RuntimeError("surprise")

    monkeypatch.setattr(doctor, "os_check", explode)
    report = run_doctor(smoke=False)
    check = report.check("os")
    assert check.status == "warn"
    assert "RuntimeError: surprise" in check.value
    assert check.hint
    assert report.ok


def test_table_keeps_commands_whole_and_marks_failures() -> None:
    command = '`make install TORCH_INSTALL="torch --index-url https://example.org/whl/cu126"`'
    report = DoctorReport(
        checks=[
            Check("torch", "fail", "not installed", f"install it: {command}", section="pytorch"),
            Check("cuda", "warn", "no CUDA GPU visible", "x " * 80, section="gpu"),
        ]
    )
    table = format_table(report, width=60)
    assert command in table
    assert "  FAIL  torch  not installed" in table
    assert all(len(line) <= 60 for line in table.splitlines() if "`" not in line)
    assert table.splitlines()[-1] == (
        "FAIL: 1 failed (torch), 1 warning; fix the failures above, then rerun `dlcc doctor`"
    )
    assert report.status == "fail"
    assert report.counts() == {"ok": 0, "warn": 1, "fail": 1}
    with pytest.raises(KeyError, match="it has: torch, cuda"):
        report.check("gpu cuda:0")
    with pytest.raises(ValueError, match="check status must be one of"):
        Check("x", "bad", "y")  # type: ignore[arg-type]
