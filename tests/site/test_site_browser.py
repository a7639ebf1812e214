"""The built course site in headless Chromium (Debian's `chromium`), driven by Playwright.

It visits every page reachable from the home page over a real HTTP server on loopback,
checks that every internal link answers 200 and that every `#fragment` is an id on its
target page, and that the search box finds a handout. Skipped, with the reason, where
Chromium is absent (and failed instead when DLCC_REQUIRE_BROWSER is set, as in .ci/run).
"""

from __future__ import annotations

from urllib.parse import unquote, urldefrag, urlsplit

import pytest
from site_helpers import serve_folder

import chromium

pytestmark = chromium.REQUIRED


@pytest.fixture(scope="module")
def site_url(built_site):
    server, url = serve_folder(built_site)
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = chromium.launch(playwright)
        yield browser
        browser.close()


def test_every_internal_link_resolves(browser, site_url):
    origin = urlsplit(site_url).netloc
    page = browser.new_page()
    elsewhere, failed = [], []
    page.on("request", lambda r: urlsplit(r.url).netloc in ("", origin) or elsewhere.append(r.url))
    page.on("response", lambda r: r.status < 400 or failed.append(f"{r.status} {r.url}"))

    ids: dict[str, set[str]] = {}  # page url -> the ids on it
    fragments: list[tuple[str, str, str]] = []  # (from page, target page, fragment)
    status: dict[str, int] = {}
    queue = [site_url + "/"]
    while queue:
        url = queue.pop()
        if url in ids:
            continue
        response = page.goto(url)
        assert response is not None and response.status == 200, f"{url}: {response}"
        ids[url] = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            if urlsplit(href).netloc != origin:
                continue  # another site
            target, fragment = urldefrag(href)
            if fragment:
                fragments.append((url, target, unquote(fragment)))
            if target not in status:
                status[target] = page.request.get(target).status
            if target.endswith("/") or target.endswith(".html"):
                queue.append(target)
    page.close()

    assert len(ids) >= 30, f"only {len(ids)} pages reached from the home page"
    assert len(fragments) >= 100, "the pages' tables of contents link to their headings"
    broken = [f"{target}: {code}" for target, code in status.items() if code != 200]
    assert not broken, f"internal links that do not answer 200: {broken}"
    missing = sorted(
        {f"{source} -> {target}#{fragment}" for source, target, fragment in fragments
         if fragment not in ids[target]}
    )  # fmt: skip
    assert not missing, f"fragments that are no id on their page: {missing}"
    assert not elsewhere, f"requests to other origins (the site must work offline): {elsewhere}"
    assert not failed, f"failed requests: {failed}"


def test_search_finds_the_handout(browser, site_url):
    page = browser.new_page()
    page.goto(site_url + "/")
    page.locator("label.md-search__icon, .md-search__input").first.click()
    search = page.locator("input.md-search__input")
    search.press_sequentially("Dice", delay=50)
    results = page.locator("a.md-search-result__link")
    results.first.wait_for(timeout=20_000)
    hrefs = results.evaluate_all("els => els.map(e => e.href)")
    assert any("/assignments/a3/" in href for href in hrefs), hrefs
    page.close()
