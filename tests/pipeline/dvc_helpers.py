"""A hermetic, offline `dvc`: its config, caches and analytics kept inside a test's tmp dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def dvc_env(tmp: Path, pythonpath: Path) -> dict:
    """The environment of every dvc (and stage) process: nothing outside `tmp` is read or
    written by DVC, nothing is sent anywhere, and tracking is left to the stage commands."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env.pop("DLCC_TRACK", None)  # the stages' own --no-track must be what keeps MLflow off
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(pythonpath),
        HOME=str(tmp / "home"),
        XDG_CONFIG_HOME=str(tmp / "home/.config"),
        XDG_CACHE_HOME=str(tmp / "home/.cache"),
        DVC_NO_ANALYTICS="1",
        DVC_STUDIO_OFFLINE="1",
        DVC_GLOBAL_CONFIG_DIR=str(tmp / "dvc-global"),
        DVC_SYSTEM_CONFIG_DIR=str(tmp / "dvc-system"),
        DVC_SITE_CACHE_DIR=str(tmp / "dvc-site-cache"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
    )
    (tmp / "home").mkdir(exist_ok=True)
    return env


def need_dvc() -> str:
    dvc = shutil.which("dvc", path=str(BIN))
    if dvc is None:
        pytest.skip("dvc is not installed beside this Python: pip install -e '.[dev]'")
    return dvc


def run(args: list[str], cwd: Path, env: dict) -> str:
    """Run a command; return stdout + stderr; fail the test with both on a non-zero exit."""
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{output}"
    return output


def init_repo(root: Path, env: dict) -> None:
    """git init + dvc init, analytics and update checks off in the repository's config."""
    dvc = need_dvc()
    run(["git", "init", "-q"], root, env)
    run([dvc, "init", "-q"], root, env)
    run([dvc, "config", "core.analytics", "false"], root, env)
    run([dvc, "config", "core.check_update", "false"], root, env)
