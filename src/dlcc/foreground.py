"""Run a server (the MLflow UI, Streamlit) in the foreground until it exits or Ctrl-C."""

from __future__ import annotations

import subprocess


def run_until_interrupted(command: list[str], env: dict | None = None) -> int:
    """Start `command`, wait for it, and on Ctrl-C stop it (terminate, then kill after
    20 s). Returns its exit status, or 0 when stopped by Ctrl-C."""
    process = subprocess.Popen(command, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return 0
