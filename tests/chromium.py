"""Debian's Chromium for the browser tests, driven by Playwright.

``pytestmark = chromium.REQUIRED`` skips a module, with the reason, where Chromium is absent;
with DLCC_REQUIRE_BROWSER set (as in .ci/run) its absence is an error instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ABSENT = not CHROMIUM.is_file() and shutil.which("chromium") is None
if ABSENT and os.environ.get("DLCC_REQUIRE_BROWSER"):  # .ci/run: the browser tests must run
    raise RuntimeError(
        "DLCC_REQUIRE_BROWSER is set but Chromium is absent: apt-get install chromium"
    )
REQUIRED = pytest.mark.skipif(
    ABSENT, reason="no Chromium at /usr/bin/chromium: `apt-get install chromium` (make test tries)"
)


def launch(playwright):
    """A headless Chromium browser (Playwright's `Browser`), as the tests run it."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM if CHROMIUM.is_file() else shutil.which("chromium")),
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    )
