"""``dlcc serve`` (the model server: FastAPI on uvicorn) and ``dlcc app`` (the same models
in a Streamlit app). Registration and handlers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

SERVE_EPILOG = """\
Without --model it serves the shipped models: `digits` (an MNIST classifier, see
src/dlcc/deploy/default_models/MODEL_CARD.md) and `ecg` (the beat detector of `dlcc ecg`).
Then open http://127.0.0.1:8000 for the page, /docs for the API.

--model NAME=SOURCE, repeatable; SOURCE is an ONNX or TorchScript file of `dlcc export`,
a run directory of `dlcc train` (exported to ONNX at startup), `ecg`, or a registered
model models:/REGISTERED/VERSION or models:/REGISTERED/latest (`dlcc track register`),
read from $MLFLOW_TRACKING_URI if set, else from RUNS/mlflow.db (--runs, default runs).
The API key is read from --api-key, else from $DLCC_API_KEY; with one, POST
/models/{name}/predict needs the header X-API-Key.
"""


APP_EPILOG = """\
--model takes the sources of `dlcc serve --model`: an exported file, a run directory,
`ecg`, or models:/REGISTERED/VERSION (or /latest). Then open the URL it prints.
"""


def register(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve models over HTTP: a JSON/upload API, Prometheus metrics and a web page",
        description="Serve exported models (ONNX Runtime) and the ECG detector over HTTP.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--model", action="append", default=[], metavar="NAME=SOURCE",
        help="a model to serve (repeatable; default: the shipped digits and ecg models)",
    )  # fmt: skip
    add_runs_option(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--api-key", default=None, help="require X-API-Key on predict")
    serve.add_argument(
        "--cors-origin", action="append", default=[], metavar="ORIGIN",
        help="allow browser calls from this origin (repeatable; default: CORS off)",
    )  # fmt: skip
    serve.add_argument(
        "--no-batching", dest="batching", action="store_false",
        help="run every request on its own (default: micro-batch concurrent requests)",
    )  # fmt: skip
    serve.add_argument("--max-batch", type=int, default=64, help="samples per batch (64)")
    serve.add_argument(
        "--max-wait-ms", type=float, default=2.0,
        help="how long a batch waits for more requests after its first (default: 2 ms)",
    )  # fmt: skip
    serve.add_argument(
        "--max-body-mb", type=float, default=10.0, help="largest request body (default: 10 MB)"
    )
    serve.add_argument("--log-level", default="warning", help="uvicorn's log level (warning)")
    serve.set_defaults(handler=serve_command)

    app = commands.add_parser(
        "app",
        help="the page's uses in a Streamlit app: classify a digit, detect ECG beats",
        description="Start a Streamlit app (headless, usage statistics off) that classifies "
        "an uploaded or example digit image and finds the beats of an uploaded or example "
        "ECG record, with the models and input checks of `dlcc serve`. Ctrl-C stops it.",
        epilog=APP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    app.add_argument(
        "--model", action="append", default=[], metavar="NAME=SOURCE",
        help="a model to offer, as for `dlcc serve` (default: the shipped digits and ecg)",
    )  # fmt: skip
    add_runs_option(app)
    app.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    app.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    app.set_defaults(handler=app_command)


def add_runs_option(parser) -> None:
    parser.add_argument(
        "--runs", default="runs",
        help="the folder of run directories whose store (RUNS/mlflow.db) holds models:/ "
        "sources, unless $MLFLOW_TRACKING_URI is set (default: runs)",
    )  # fmt: skip


def build_app(args: argparse.Namespace):
    from dlcc.deploy.app import create_app
    from dlcc.deploy.models import (
        default_model_sources,
        load_models,
        parse_model_option,
        registry_store,
    )
    from dlcc.deploy.settings import ServeSettings, api_key_from

    settings = ServeSettings(
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        batching=args.batching,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        api_key=api_key_from(args.api_key),
        cors_origins=list(args.cors_origin),
    )
    named = dict(parse_model_option(text) for text in args.model)
    sources = named or default_model_sources()
    models = load_models(sources, registry_uri=registry_store(args.runs), skip_unwritten=not named)
    return create_app(models, settings), {name: sources[name] for name in models}


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    app, sources = build_app(args)
    names = ", ".join(f"{name} ({source})" for name, source in sources.items())
    print(f"serving {names} on http://{args.host}:{args.port} (docs: /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


def streamlit_command(host: str, port: int) -> list[str]:
    """`streamlit run` of the app script, headless, on host:port, usage statistics off."""
    from dlcc.deploy.streamlit_app import APP_SCRIPT

    return [
        sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.address", host,
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--server.maxUploadSize", "10",  # MB, as the server's body limit
        "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal",  # no "Deploy" button
    ]  # fmt: skip


def app_command(args: argparse.Namespace) -> int:
    import importlib.util

    import dlcc
    from dlcc.deploy.models import (
        ServeError,
        default_model_sources,
        parse_model_option,
        registry_store,
    )
    from dlcc.deploy.streamlit_app import MODELS_ENV, STORE_ENV

    if importlib.util.find_spec("streamlit") is None:
        raise ServeError(
            "dlcc app needs Streamlit, which is not installed: pip install streamlit==1.67.0"
        )
    sources = dict(parse_model_option(text) for text in args.model) or default_model_sources()
    for name, source in sources.items():
        if source != "ecg" and not source.startswith("models:/") and not Path(source).exists():
            raise ServeError(
                f"--model {name}={source}: {source} does not exist; pass an exported file, a "
                "run directory of `dlcc train`, models:/NAME/VERSION, or 'ecg'"
            )
        if not source.startswith("models:/") and source != "ecg":
            sources[name] = str(Path(source).resolve())
    package_root = str(Path(dlcc.__file__).resolve().parents[1])
    env = {
        **os.environ,
        MODELS_ENV: json.dumps(sources),
        STORE_ENV: registry_store(args.runs),
        "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p),
    }
    url = f"http://{args.host}:{args.port}"
    names = ", ".join(f"{name} ({source})" for name, source in sources.items())
    print(f"dlcc app: {url} (models: {names}; Ctrl-C stops it)", flush=True)
    from dlcc.foreground import run_until_interrupted

    return run_until_interrupted(streamlit_command(args.host, args.port), env)
