"""The README's `mkdocs serve` command, run as written in a fresh shell from the repository root."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from site_helpers import ROOT, free_port

from dlcc.course.site import section
from processes import stop_process


def readme_commands() -> list[str]:
    """The command lines of the README's "### Course site" code block, comments removed."""
    text = section((ROOT / "README.md").read_text(encoding="utf-8"), "### Course site")
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_names_the_commands_the_tests_run():
    # The build fixture runs `python -m mkdocs build --strict`, the same as the second line.
    assert readme_commands() == [".venv/bin/mkdocs serve", ".venv/bin/mkdocs build --strict"]


@pytest.mark.skipif(
    not (ROOT / ".venv" / "bin" / "mkdocs").is_file(),
    reason="no .venv/bin/mkdocs in this checkout: `make install` makes it (make test does)",
)
def test_mkdocs_serve_as_written_answers(tmp_path):
    serve = readme_commands()[0]
    port = free_port()
    env = {
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "DLCC_SITE_ADDR": f"127.0.0.1:{port}",
        "NO_MKDOCS_2_WARNING": "1",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["bash", "-c", serve], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline, body = time.monotonic() + 120, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    body = response.read().decode("utf-8")
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        assert body is not None, f"`{serve}` did not answer on port {port}:\n{log.read_text()}"
        assert "dlcc: the Deep Learning Crash Course" in body
    finally:
        stop_process(process)
