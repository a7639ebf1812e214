"""`mkdocs build --strict` of the course site, and what it holds."""

from __future__ import annotations

import re

from site_helpers import ROOT

from dlcc.course.catalogue import load_catalogue
from dlcc.course.site import API_MODULES


def page(site, uri: str) -> str:
    return (site / uri / "index.html").read_text(encoding="utf-8")


def test_every_page_is_built(built_site):
    catalogue = load_catalogue(ROOT)
    expected = ["", "setup", "schedule", "results", "api"]
    expected += [f"assignments/{a}" for a in catalogue.assignments]
    expected += [f"api/{module}" for module in API_MODULES]
    missing = [uri for uri in expected if not (built_site / uri / "index.html").is_file()]
    assert not missing, f"pages not built: {missing}"
    assert (built_site / "search" / "search_index.json").is_file()


def test_nothing_is_copied_into_docs():
    # One source: the pages are generated (dlcc.course.site); docs/ holds images and the hook.
    copies = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))
    assert copies == [], f"Markdown in docs/ (the site generates its pages): {copies}"


def test_pages_show_their_sources(built_site):
    a3 = page(built_site, "assignments/a3")
    assert "Assignment 3: CNNs for biomedical segmentation and detection" in a3
    assert "Part 2: the Dice loss" in a3
    schedule = page(built_site, "schedule")
    assert 'href="../assignments/a3/"' in schedule
    assert "Part 2: the Dice loss (22)" in schedule
    setup = re.sub(r"<[^>]+>", "", page(built_site, "setup"))  # code is highlighted in spans
    assert "dlcc doctor" in setup and "GPU install" in setup and "make demo" in setup
    results = page(built_site, "results")
    assert 'src="../images/isbi_unet_val.png"' in results
    assert (built_site / "images" / "isbi_unet_val.png").is_file()


def test_api_pages_hold_the_docstrings(built_site):
    from dlcc.numpy_nn.layers import Linear

    layers = page(built_site, "api/dlcc.numpy_nn.layers")
    assert 'id="dlcc.numpy_nn.layers.Linear"' in layers
    first_line = Linear.__doc__.strip().splitlines()[0]
    words = re.sub(r"[`*]", "", first_line).split()[:4]
    assert " ".join(words) in re.sub(r"<[^>]+>", "", layers)


def test_no_external_assets(built_site):
    # CI has no internet: no Google Fonts, no CDN scripts or styles.
    for html in built_site.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        external = re.findall(r'<(?:link|script|img)[^>]+(?:href|src)="(?:https?:)?//[^"]+"', text)
        assert not external, f"{html.relative_to(built_site)}: {external}"
    assert "fonts.googleapis" not in (built_site / "index.html").read_text(encoding="utf-8")
