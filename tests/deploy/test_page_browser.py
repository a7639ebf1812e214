"""The web page in headless Chromium (Debian's `chromium`), driven by Playwright.

It draws a stroke, uploads a digit image and a bad file, and uses the ECG example, against
a real `dlcc serve` on loopback. Skipped, with the reason, where Chromium is absent.
"""

from __future__ import annotations

import pytest
from deploy_helpers import digit_image, png_bytes, start_server, stop_server

import chromium

pytestmark = chromium.REQUIRED


@pytest.fixture(scope="module")
def server(digits_export):
    process, url = start_server("--model", f"digits={digits_export.path}", "--model", "ecg=ecg")
    yield url
    stop_server(process)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = chromium.launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    page.goto(server + "/")
    yield page
    page.close()


DIGITS = [str(i) for i in range(10)]


def test_drawing_a_stroke_shows_a_prediction(page):
    pad = page.locator("#pad").bounding_box()
    x, top = pad["x"] + pad["width"] / 2, pad["y"] + 50
    page.mouse.move(x, top)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + step, top + step * 18)
    page.mouse.up()  # the page predicts when the stroke ends
    label = page.get_by_test_id("digit-label")
    label.filter(has_text="Prediction:").wait_for(timeout=20_000)
    assert label.inner_text().removeprefix("Prediction: ") in DIGITS
    assert page.locator("#digit-bars > div").count() == 3


def test_uploading_a_png_shows_its_label(page, tmp_path):
    image = tmp_path / "digit.png"
    image.write_bytes(png_bytes(digit_image(size=56)))
    page.set_input_files("#digit-file", str(image))
    label = page.get_by_test_id("digit-label")
    label.filter(has_text="Prediction:").wait_for(timeout=20_000)
    assert label.inner_text().removeprefix("Prediction: ") in DIGITS


def test_a_bad_upload_shows_a_readable_error(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    page.set_input_files("#digit-file", str(bad))
    error = page.locator("#digit-error")
    error.wait_for(state="visible", timeout=20_000)
    assert "HTTP 422" in error.inner_text() and "does not decode" in error.inner_text()


def test_the_ecg_example_shows_beats(page):
    page.click("#ecg-example")
    summary = page.get_by_test_id("ecg-summary")
    summary.filter(has_text="beats in 12.0 s").wait_for(timeout=60_000)
    assert int(summary.inner_text().split()[0]) > 10
