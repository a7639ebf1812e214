"""A model server for exported dlcc models: FastAPI on uvicorn, ONNX Runtime inside.

    from dlcc.deploy import create_app, load_models, ServeSettings
    app = create_app(load_models({"digits": "digits.onnx"}), ServeSettings())

`dlcc serve` runs it (`dlcc.deploy.commands`). Modules: `settings` (limits, batching, key,
CORS), `errors` (the one JSON error shape), `inputs` (decoding and checking requests),
`models` (a served model: exported files, run directories, the ECG detector), `batching`
(the micro-batcher), `metrics` (Prometheus text), `app` (the FastAPI application),
`static/` (the web page at /). Importing this package is cheap: FastAPI, ONNX Runtime and
torch load when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["ServeSettings", "create_app", "default_model_sources", "load_models"]

if TYPE_CHECKING:
    from dlcc.deploy.app import create_app
    from dlcc.deploy.models import default_model_sources, load_models
    from dlcc.deploy.settings import ServeSettings


def __getattr__(name: str):
    if name == "create_app":
        from dlcc.deploy.app import create_app

        return create_app
    if name in ("load_models", "default_model_sources"):
        from dlcc.deploy import models

        return getattr(models, name)
    if name == "ServeSettings":
        from dlcc.deploy.settings import ServeSettings

        return ServeSettings
    raise AttributeError(f"module 'dlcc.deploy' has no attribute {name!r}")
