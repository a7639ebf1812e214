"""``dlcc serve``: the model server (FastAPI on uvicorn). Registration and handler."""

from __future__ import annotations

import argparse

SERVE_EPILOG = """\
Without --model it serves the shipped models: `digits` (an MNIST classifier, see
src/dlcc/deploy/default_models/MODEL_CARD.md) and `ecg` (the beat detector of `dlcc ecg`).
Then open http://127.0.0.1:8000 for the page, /docs for the API.

--model NAME=SOURCE, repeatable; SOURCE is an ONNX or TorchScript file of `dlcc export`,
a run directory of `dlcc train` (exported to ONNX at startup), or `ecg`.
The API key is read from --api-key, else from $DLCC_API_KEY; with one, POST
/models/{name}/predict needs the header X-API-Key.
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


def build_app(args: argparse.Namespace):
    from dlcc.deploy.app import create_app
    from dlcc.deploy.models import default_model_sources, load_models, parse_model_option
    from dlcc.deploy.settings import ServeSettings, api_key_from

    settings = ServeSettings(
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        batching=args.batching,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        api_key=api_key_from(args.api_key),
        cors_origins=list(args.cors_origin),
    )
    sources = dict(parse_model_option(text) for text in args.model) or default_model_sources()
    return create_app(load_models(sources), settings), sources


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    app, sources = build_app(args)
    names = ", ".join(f"{name} ({source})" for name, source in sources.items())
    print(f"serving {names} on http://{args.host}:{args.port} (docs: /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
