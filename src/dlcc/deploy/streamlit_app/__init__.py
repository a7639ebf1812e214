"""The Streamlit app of `dlcc app`: the web page's two uses, in Python.

`dlcc_app.py` is the script `streamlit run` executes (it sits alone in this folder because
Streamlit puts the script's folder on sys.path). It reads its models from the
environment that `dlcc app` sets: DLCC_APP_MODELS ({name: source} as JSON; default: the
shipped digits and ECG models) and DLCC_APP_STORE (the MLflow store of models:/ sources).
"""

from __future__ import annotations

from pathlib import Path

APP_SCRIPT = Path(__file__).with_name("dlcc_app.py")
MODELS_ENV = "DLCC_APP_MODELS"
STORE_ENV = "DLCC_APP_STORE"
