"""One strict build of the course site, shared by every test that only reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from site_helpers import ROOT, build_site


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    build_site(ROOT, out)
    return out
