"""One source: a sentence added to a handout, and to the README, shows on the built site."""

from __future__ import annotations

import os
import shutil

from site_helpers import ROOT, build_site

MARKER = "This sentence was added by the one-source test, dlcc-site-marker-7f3a."


def test_a_changed_handout_and_readme_show_on_the_site(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", course / "mkdocs.yml")
    shutil.copy(ROOT / "README.md", course / "README.md")
    shutil.copytree(ROOT / "docs", course / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "assignments", course / "assignments")
    for tree in ("src", "tests"):  # the API pages and the catalogue's checks read them
        os.symlink(ROOT / tree, course / tree)
    handout = course / "assignments" / "a3" / "README.md"
    handout.write_text(handout.read_text(encoding="utf-8") + f"\n{MARKER}\n", encoding="utf-8")
    readme = course / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(text.replace("## GPU install\n", f"## GPU install\n\n{MARKER}\n", 1))

    build_site(course, course / "site")
    a3 = (course / "site" / "assignments" / "a3" / "index.html").read_text(encoding="utf-8")
    assert f"<p>{MARKER}</p>" in a3
    setup = (course / "site" / "setup" / "index.html").read_text(encoding="utf-8")
    assert f"<p>{MARKER}</p>" in setup
    a2 = (course / "site" / "assignments" / "a2" / "index.html").read_text(encoding="utf-8")
    assert MARKER not in a2
    assert MARKER not in (ROOT / "assignments" / "a3" / "README.md").read_text(encoding="utf-8")
