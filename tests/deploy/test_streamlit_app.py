"""`dlcc app`: the Streamlit app, run by Streamlit's AppTest, and a real `dlcc app` process.

The oracles: a drawn digit's own value (the shipped classifier must name it), the server's
answer to the same upload (the app must show the same label and probabilities), and the
synthetic example ECG's known R-peaks (the app's beats must match them).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from deploy_helpers import SRC, free_port

pytest.importorskip("streamlit")

from streamlit.testing.v1 import AppTest

from dlcc.deploy.examples import digit_example_png
from dlcc.deploy.streamlit_app import APP_SCRIPT, MODELS_ENV

TIMEOUT = 120  # seconds for one script run: the first loads the models


@pytest.fixture
def app(monkeypatch):
    monkeypatch.delenv(MODELS_ENV, raising=False)  # the shipped digits and ecg models
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _prediction(at) -> tuple[str, dict[str, float]]:
    label = at.metric[0].value
    table = at.dataframe[0].value
    return label, dict(zip(table["class"], table["probability"], strict=True))


def test_the_default_state_renders_the_models_and_an_example(app):
    assert app.title[0].value == "dlcc: try a trained model"
    assert app.selectbox(key="model").options == ["digits (image_classifier)", "ecg (ecg_beats)"]
    assert app.radio(key="image_source").value == "An example digit"
    assert not app.error


@pytest.fixture(scope="module")
def shipped_digits():
    from dlcc.deploy.models import DIGITS_MODEL, load_model

    return load_model("digits", str(DIGITS_MODEL))


@pytest.mark.parametrize("digit", range(10))
def test_every_example_digit_is_classified_as_itself(digit, shipped_digits):
    """The drawn examples, through the app's own handler (no Streamlit)."""
    from dlcc.deploy.streamlit_app.dlcc_app import predict_files

    answer = predict_files(shipped_digits, [("d.png", digit_example_png(digit))], {"top_k": "3"})
    assert answer["label"] == str(digit)
    assert answer["probabilities"][0]["probability"] > 0.5


def test_the_example_selectbox_shows_that_digits_prediction(app):
    app.selectbox(key="example_digit").set_value(4).run()
    label, shown = _prediction(app)
    assert label == "4" and len(shown) == 3


def test_an_uploaded_digit_gives_the_servers_prediction(app, make_client, shipped_digits):
    from PIL import Image

    # A 7 as dark ink on light paper, 100x100 JPEG: the upload path inverts and resizes.
    drawn = Image.open(io.BytesIO(digit_example_png(7))).resize((100, 100))
    paper = Image.eval(drawn, lambda v: 255 - v)
    buffer = io.BytesIO()
    paper.save(buffer, format="JPEG", quality=95)
    jpeg = buffer.getvalue()

    app.radio(key="image_source").set_value("Upload an image").run()
    assert app.info, "an empty uploader asks for an image"
    app.slider(key="top_k").set_value(10)
    app.file_uploader(key="image_upload").set_value(("seven.jpg", jpeg, "image/jpeg")).run()
    assert not app.exception and not app.error
    label, shown = _prediction(app)
    assert label == "7"
    assert len(shown) == 10
    assert abs(sum(shown.values()) - 1.0) < 1e-3

    server = make_client({"digits": shipped_digits})
    answer = server.post(
        "/models/digits/predict",
        files={"file": ("seven.jpg", jpeg, "image/jpeg")},
        data={"top_k": "10"},
    ).json()
    assert answer["label"] == label
    for item in answer["probabilities"]:
        assert abs(shown[item["label"]] - item["probability"]) < 1e-4


def test_a_file_that_is_not_an_image_is_a_message_not_an_exception(app):
    app.radio(key="image_source").set_value("Upload an image").run()
    not_image = b"%PDF-1.4 this is no picture"
    app.file_uploader(key="image_upload").set_value(("scan.png", not_image, "image/png")).run()
    assert not app.exception
    assert len(app.error) == 1
    assert "does not decode as an image" in app.error[0].value
    assert not app.metric  # no prediction shown


def test_the_example_ecg_shows_the_beats_it_holds(app):
    from dlcc.deploy.examples import EXAMPLE_FS, EXAMPLE_SECONDS, EXAMPLE_SEED
    from dlcc.ecg.synth import synthesize

    app.selectbox(key="model").set_value("ecg").run()
    assert app.radio(key="ecg_source").value.startswith("The example record")
    assert not app.exception and not app.error
    metrics = {m.label: m.value for m in app.metric}
    table = app.dataframe[0].value
    detected = np.asarray(table["sample"], dtype=np.int64)

    truth = synthesize(
        EXAMPLE_SECONDS, EXAMPLE_FS, np.random.default_rng(EXAMPLE_SEED), heart_rate=72.0,
        ectopic_fraction=0.1, min_pvcs=1, baseline_wander=0.1, emg_noise=0.02,
    ).beats  # fmt: skip
    assert int(metrics["Beats"]) == len(detected)
    tolerance = round(0.05 * EXAMPLE_FS)  # 50 ms
    matched = sum(np.abs(detected - t).min() <= tolerance for t in truth)
    assert matched >= len(truth) - 1
    assert len(detected) <= len(truth) + 1
    assert 60.0 <= float(metrics["Heart rate (bpm)"]) <= 85.0


def test_a_bad_ecg_upload_is_a_message(app):
    app.selectbox(key="model").set_value("ecg").run()
    app.radio(key="ecg_source").set_value("Upload a record").run()
    app.file_uploader(key="ecg_upload").set_value(("x.csv", b"time_s,mv\n0,1\n", "text/csv")).run()
    assert not app.exception
    assert "fewer than 2 rows" in app.error[0].value


def test_a_model_that_cannot_load_is_a_message(monkeypatch, tmp_path):
    monkeypatch.setenv(MODELS_ENV, json.dumps({"m": str(tmp_path / "missing.onnx")}))
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert "could not be loaded" in at.error[0].value and "missing.onnx" in at.error[0].value


@pytest.mark.slow
def test_dlcc_app_starts_streamlit_on_a_free_port_and_stops(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = tmp_path / "app.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "dlcc", "app", "--port", str(port)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        healthy = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                response = httpx.get(url + "/_stcore/health", timeout=2)
                healthy = response.status_code == 200 and response.text == "ok"
            except httpx.HTTPError:
                pass
            if healthy:
                break
            time.sleep(0.5)
        assert healthy, log.read_text()
        assert f"dlcc app: {url}" in log.read_text()
        assert httpx.get(url + "/", timeout=10).status_code == 200
    finally:
        import signal

        os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole group
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    assert code == 0, log.read_text()
    with pytest.raises(httpx.HTTPError):
        httpx.get(url + "/_stcore/health", timeout=2)


def test_import_dlcc_and_help_load_neither_streamlit_nor_mlflow():
    code = (
        "import sys, dlcc, dlcc.cli, dlcc.deploy.commands, dlcc.deploy.streamlit_app; "
        "dlcc.cli.build_parser(); print(sorted(m for m in ('streamlit', 'mlflow') "
        "if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.stdout.strip() == "[]", done.stderr
