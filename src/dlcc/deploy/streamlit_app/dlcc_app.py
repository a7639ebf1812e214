"""The Streamlit app of `dlcc app`: classify a digit image, detect the beats of an ECG.

It does what the server's page does, through the server's own code: models are loaded by
`dlcc.deploy.models.load_models` (ONNX files, run directories exported at startup, the ECG
detector, models:/ registered models), every upload is decoded and checked by the model's
`from_upload` (`dlcc.deploy.inputs`), and answered by `predict_one` (the server's
answers, field for field). A refused input is shown as the server's message, never a
traceback.

Streamlit has no drawing canvas of its own, so instead of the page's canvas the app offers
ten example digits drawn in pen strokes (`dlcc.deploy.examples.digit_example_png`) and an
upload of any PNG/JPEG (a photo of a digit on paper works: it is inverted, as the server
does).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from dlcc.deploy.streamlit_app import MODELS_ENV, STORE_ENV

EXAMPLE_DIGIT = "An example digit"
UPLOAD_IMAGE = "Upload an image"
EXAMPLE_ECG = "The example record (synthetic, 12 s at 250 Hz)"
UPLOAD_ECG = "Upload a record"


def model_sources() -> dict[str, str]:
    """{name: source} from $DLCC_APP_MODELS (JSON), else the server's defaults."""
    from dlcc.deploy.models import ServeError, default_model_sources

    text = os.environ.get(MODELS_ENV)
    if not text:
        return default_model_sources()
    try:
        sources = json.loads(text)
    except ValueError:
        sources = None
    if not isinstance(sources, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in sources.items()
    ):
        raise ServeError(
            f"${MODELS_ENV} must be a JSON object {{name: source}}; received {text[:80]!r}"
        )
    return sources


def digit_examples_fit(model) -> bool:
    """The drawn examples fit a one-channel classifier of the digits 0-9."""
    return (
        model.kind == "image_classifier"
        and model.channels == 1
        and model.labels == [str(i) for i in range(10)]
    )


def predict_files(model, files: list[tuple[str, bytes]], fields: dict) -> dict:
    """The server's answer to an upload of `files` (and form `fields`) to `model`.

    Raises dlcc.deploy.errors.InputError with the server's message for a refused input."""
    from dlcc.deploy.models import predict_one
    from dlcc.deploy.settings import DEFAULT_MAX_SIDE, ServeSettings

    sample, option = model.from_upload(files, fields, DEFAULT_MAX_SIDE)
    return predict_one(model, sample, option, ServeSettings().top_k)


def refusal(error: Exception) -> str:
    """What the app shows for an input it cannot answer."""
    from dlcc.deploy.errors import InputError
    from dlcc.errors import DlccError

    if isinstance(error, InputError):
        return f"This input was refused: {error.message}"
    if isinstance(error, DlccError):
        return str(error)
    traceback.print_exc(file=sys.stderr)  # for the terminal; the page gets one line
    return f"The app failed ({type(error).__name__}); see the terminal that runs `dlcc app`."


# ---- the page ---------------------------------------------------------------------------


def main() -> None:
    import streamlit as st

    st.set_page_config(page_title="dlcc: try a model", layout="centered")
    st.title("dlcc: try a trained model")
    st.caption(
        "The models of `dlcc serve`, in a Streamlit app. Not a medical device: teaching "
        "models only."
    )
    try:
        models = _load(json.dumps(model_sources(), sort_keys=True), os.environ.get(STORE_ENV))
    except Exception as error:
        st.error(f"The models could not be loaded. {refusal(error)}")
        st.stop()
    name = st.selectbox(
        "Model", list(models), key="model", format_func=lambda n: f"{n} ({models[n].kind})"
    )
    model = models[name]
    with st.expander("About this model"):
        st.json(model.describe())
    if model.kind == "ecg_beats":
        ecg_section(st, model)
    else:
        image_section(st, model)


def _load(sources_json: str, store: str | None):
    import streamlit as st

    @st.cache_resource(show_spinner="Loading the models (a run directory is exported first)")
    def load(sources_json: str, store: str | None):
        from dlcc.deploy.models import load_models

        named = bool(os.environ.get(MODELS_ENV))  # else the defaults: serve what runs
        return load_models(json.loads(sources_json), registry_uri=store, skip_unwritten=not named)

    return load(sources_json, store)


def image_section(st, model) -> None:
    choices = [EXAMPLE_DIGIT, UPLOAD_IMAGE] if digit_examples_fit(model) else [UPLOAD_IMAGE]
    source = st.radio("Input", choices, key="image_source", horizontal=True)
    fields = {}
    if model.kind == "image_classifier" and len(model.labels) > 1:
        top_k = st.slider("Classes to list", 1, len(model.labels), min(3, len(model.labels)),
                          key="top_k")  # fmt: skip
        fields["top_k"] = str(top_k)
    if source == EXAMPLE_DIGIT:
        from dlcc.deploy.examples import digit_example_png

        digit = st.selectbox("Example", list(range(10)), key="example_digit")
        files = [(f"digit_{digit}.png", digit_example_png(digit))]
    else:
        upload = st.file_uploader(
            "A PNG or JPEG image (any size: a classifier's input is resized; dark ink on "
            "light paper is inverted)",
            type=["png", "jpg", "jpeg"], key="image_upload",
        )  # fmt: skip
        if upload is None:
            st.info("Upload an image to see the model's prediction.")
            return
        files = [(upload.name, upload.getvalue())]
    try:
        answer = predict_files(model, files, fields)
    except Exception as error:
        st.error(refusal(error))
        return
    left, right = st.columns([1, 2])
    left.image(files[0][1], caption=files[0][0], width=160)
    if model.kind == "image_classifier":
        top = answer["probabilities"][0]
        right.metric("Prediction", answer["label"], help="the class of highest probability")
        right.caption(f"probability {top['probability']:.1%}")
        right.dataframe(
            [
                {"class": p["label"], "probability": round(p["probability"], 4)}
                for p in answer["probabilities"]
            ],
            hide_index=True,
        )
    else:
        right.image(_mask_view(answer), caption="predicted mask (classes as grey levels)",
                    width=240)  # fmt: skip
        right.json(answer["pixel_counts"])


def _mask_view(answer: dict):
    """The answer's class-index mask, stretched to grey levels so it can be seen."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["mask_png"]))))
    top = max(1, len(answer["labels"]) - 1)
    return (mask.astype(np.float64) / top * 255).astype(np.uint8)


def ecg_section(st, model) -> None:
    from dlcc.deploy.examples import ecg_example_csv

    source = st.radio("Record", [EXAMPLE_ECG, UPLOAD_ECG], key="ecg_source", horizontal=True)
    if source == EXAMPLE_ECG:
        files, fields = [("example.csv", ecg_example_csv())], {}
    else:
        uploads = st.file_uploader(
            "A CSV (time_s,signal, or one column of mV with the sampling rate below) or a "
            "WFDB record (its .hea and .dat files together)",
            type=["csv", "txt", "hea", "dat"], accept_multiple_files=True, key="ecg_upload",
        )  # fmt: skip
        fs = st.number_input("Sampling rate of a one-column CSV (Hz)", 100.0, 100000.0, 360.0,
                             key="fs")  # fmt: skip
        if not uploads:
            st.info("Upload a record, or choose the example.")
            return
        files, fields = [(u.name, u.getvalue()) for u in uploads], {"fs": str(fs)}
    try:
        answer = predict_files(model, files, fields)
    except Exception as error:
        st.error(refusal(error))
        return
    rate = answer["heart_rate_bpm"]
    left, middle, right = st.columns(3)
    left.metric("Beats", len(answer["beats"]))
    middle.metric("Heart rate (bpm)", "-" if rate is None else f"{rate:.1f}")
    right.metric("Length (s)", f"{answer['samples'] / answer['fs']:.1f}")
    st.pyplot(_ecg_figure(answer), clear_figure=True)
    st.dataframe(
        [{"beat": i + 1, "sample": b, "time (s)": t} for i, (b, t) in
         enumerate(zip(answer["beats"], answer["beat_times_s"], strict=True))],
        hide_index=True,
    )  # fmt: skip


def _ecg_figure(answer: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    display = answer["display"]
    signal = np.asarray(display["signal"])
    times = np.arange(len(signal)) * display["step"] / answer["fs"]
    figure, axes = plt.subplots(figsize=(9, 2.6))
    axes.plot(times, signal, linewidth=0.8, color="#1f4e79")
    beats = np.asarray(answer["beats"], dtype=np.int64)
    index = np.clip(beats // display["step"], 0, len(signal) - 1)
    axes.plot(beats / answer["fs"], signal[index], "v", color="#c0392b", label="detected beat")
    axes.set_xlabel("time (s)")
    axes.set_ylabel("signal")
    axes.legend(loc="upper right")
    figure.tight_layout()
    return figure


if __name__ == "__main__":  # Streamlit runs the script as __main__; importing it does not
    main()
