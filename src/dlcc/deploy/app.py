"""The FastAPI application: `create_app(models, settings)`.

    GET  /health                 the process is up
    GET  /ready                  every model is loaded and has run once (503 otherwise)
    GET  /models                 name, version, kind, input spec, labels, test metrics
    POST /models/{name}/predict  JSON ({"input": ...} or {"signal": ..., "fs": ...}), or
                                 multipart form data with the upload in the field `file`
    GET  /metrics                Prometheus text: requests, latency, errors, batch sizes
    GET  /docs, /openapi.json    the API's schema
    GET  /                       the web page (static files, `static/`)

Every refusal is a 4xx JSON `{"error", "message"}` (`dlcc.deploy.errors`); an unexpected
failure is a 500 with the same shape and no traceback. The request body is limited while
it is read (`BodyLimit`), before FastAPI or the multipart parser sees it.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

import dlcc
from dlcc.deploy.batching import MicroBatcher
from dlcc.deploy.errors import CODES, InputError, error_body
from dlcc.deploy.metrics import CONTENT_TYPE, ServerMetrics
from dlcc.deploy.models import ServedModel
from dlcc.deploy.settings import API_KEY_HEADER, ServeSettings

STATIC = Path(__file__).with_name("static")
MAX_UPLOAD_FILES = 8
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for a body over `limit` bytes, counted as it arrives."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send, int(declared))
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, received)

    async def _refuse(self, send, size: int):
        body = json.dumps(
            error_body(
                "too_large",
                f"the request body is over the limit of {self.limit} bytes (received at least "
                f"{size}); send a smaller file",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RequestMetrics:
    """ASGI middleware: count and time every request by its route template."""

    def __init__(self, app, metrics: ServerMetrics, routes: list):
        self.app = app
        self.metrics = metrics
        self.routes = routes

    def _template(self, scope) -> str:
        from starlette.routing import Match

        for route in self.routes:
            try:
                match, _ = route.matches(scope)
            except Exception:  # a route that cannot match this scope
                continue
            if match == Match.FULL:
                return getattr(route, "path", "<unmatched>") or "<unmatched>"
        return "<unmatched>"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def tracking_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            template = getattr(scope.get("route"), "path", None) or self._template(scope)
            self.metrics.observe_request(
                template, scope["method"], status, time.perf_counter() - started
            )


def create_app(models: dict[str, ServedModel], settings: ServeSettings | None = None) -> FastAPI:
    """The server for `models` ({name: ServedModel}, loaded and warm) under `settings`."""
    settings = settings or ServeSettings()
    metrics = ServerMetrics()
    metrics.models_loaded.set(len(models))
    executors = {name: ThreadPoolExecutor(settings.inference_threads) for name in models}
    batchers: dict[str, MicroBatcher] = {}
    for name, model in models.items():
        if model.batchable and settings.batching:
            batchers[name] = MicroBatcher(
                model.run_batch,
                max_batch=settings.max_batch,
                max_wait_ms=settings.max_wait_ms,
                executor=executors[name],
                on_batch=lambda size, seconds, n=name: _record_batch(metrics, n, size, seconds),
            )
    no_batch_pool = ThreadPoolExecutor(max(4, settings.inference_threads))
    ecg_locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def lifespan(app):
        # The models and libraries loaded so far live as long as the server: freezing them
        # keeps the garbage collector's full passes from rescanning them, which otherwise
        # stall every request in flight for tens of milliseconds now and then (the p99).
        gc.collect()
        gc.freeze()
        yield
        # The batchers' workers stop; the thread pools stay, so an app that is started
        # again (a test client per request) still runs. Their threads end with the process.
        for batcher in batchers.values():
            await batcher.close()

    app = FastAPI(
        lifespan=lifespan,
        title="dlcc model server",
        version=dlcc.__version__,
        description=(
            "Predictions of models exported by `dlcc export` (ONNX Runtime), and the ECG "
            "beat detector. Errors are JSON `{error, message}` with a 4xx status."
        ),
    )
    app.state.models = models
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.batchers = batchers

    # ---- errors: one JSON shape -------------------------------------------------------

    @app.exception_handler(InputError)
    async def _input_error(request: Request, error: InputError):
        return JSONResponse(error_body(error.code, error.message), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            error.status_code, "bad_request"
        )
        return JSONResponse(
            error_body(code, str(error.detail)),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
        return JSONResponse(error_body("invalid_input", "; ".join(parts)), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception):
        return JSONResponse(
            error_body("internal", f"the server failed ({type(error).__name__}); see its log"),
            status_code=500,
        )

    # ---- metrics middleware -------------------------------------------------------------

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(
        RequestMetrics, metrics=metrics, routes=app.router.routes
    )  # outermost: it counts the 413s too
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", API_KEY_HEADER],
        )

    # ---- endpoints ----------------------------------------------------------------------

    errors = _error_responses()

    @app.get("/health", tags=["service"], summary="The process is up")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["service"],
        summary="Every model is loaded and warm",
        responses={503: {"description": "not ready", "content": _json_error()}},
    )
    async def ready():
        if not models:
            return JSONResponse(error_body("not_ready", "no model is loaded"), status_code=503)
        return {"status": "ready", "models": sorted(models)}

    @app.get("/models", tags=["models"], summary="The served models and their input specs")
    async def list_models() -> dict:
        return {"models": [model.describe() for model in models.values()]}

    @app.post(
        "/models/{name}/predict",
        tags=["models"],
        summary="Predict with one model",
        responses=errors,
        openapi_extra={"requestBody": _request_body(), "security": _security(settings)},
    )
    async def predict(name: str, request: Request):
        if settings.api_key is not None:
            given = request.headers.get(API_KEY_HEADER, "")
            if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
                raise InputError(
                    401, "unauthorized",
                    f"this server needs an API key: send it in the header {API_KEY_HEADER}",
                )  # fmt: skip
        model = models.get(name)
        if model is None:
            raise InputError(
                404, "unknown_model",
                f"no model named {name!r}; the server has: {', '.join(sorted(models)) or 'none'}",
            )  # fmt: skip
        sample, option = await _read_request(request, model, settings)
        loop = asyncio.get_running_loop()
        if model.kind == "ecg_beats":
            lock = ecg_locks.setdefault(name, asyncio.Lock())
            async with lock:
                output = await loop.run_in_executor(executors[name], model.run_one, sample)
            return model.answer(output, sample)
        if name in batchers:
            output = await batchers[name].submit(sample)
        else:
            started = time.perf_counter()
            output = (await loop.run_in_executor(no_batch_pool, model.run_batch, sample[None]))[0]
            _record_batch(metrics, name, 1, time.perf_counter() - started)
        return model.answer(output, option or settings.top_k)

    @app.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics (text format 0.0.4)",
        response_class=PlainTextResponse,
    )
    async def prometheus():
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/examples/ecg.csv", include_in_schema=False)
    async def ecg_example():
        from dlcc.deploy.examples import ecg_example_csv

        return Response(ecg_example_csv(), media_type="text/csv")

    if settings.api_key is not None:
        _declare_api_key(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    return app


def _record_batch(metrics: ServerMetrics, name: str, size: int, seconds: float) -> None:
    metrics.batch_size.observe(size, name)
    metrics.inference.observe(seconds, name)


async def _read_request(request: Request, model: ServedModel, settings: ServeSettings):
    """(the model's input sample, its option) from a JSON or multipart request."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await request.body()
        try:
            payload = json.loads(body)
        except RecursionError:
            raise InputError(400, "bad_json", "the JSON body is nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as error:
            raise InputError(
                400, "bad_json", f"the body is not valid JSON ({error}); send an object"
            ) from None
        if not isinstance(payload, dict):
            raise InputError(
                422, "invalid_input",
                f"the JSON body must be an object, e.g. {{\"input\": [...]}}; received "
                f"{type(payload).__name__}",
            )  # fmt: skip
        return model.from_json(payload)
    if content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=16)
        except StarletteHTTPException as error:
            raise InputError(400, "bad_form", f"the form does not parse: {error.detail}") from None
        except Exception as error:
            if isinstance(error.__cause__, BodyTooLarge) or isinstance(error, BodyTooLarge):
                raise BodyTooLarge from None
            raise InputError(
                400, "bad_form", f"the multipart form does not parse ({type(error).__name__})"
            ) from None
        uploads = [item for key, item in form.multi_items() if key == "file"]
        files = []
        for upload in uploads:
            if isinstance(upload, str):
                raise InputError(
                    422, "invalid_input", "the field 'file' must be a file upload, not text"
                )
            files.append((Path(upload.filename or "upload").name, await upload.read()))
            await upload.close()
        if not files:
            raise InputError(
                422, "invalid_input",
                "the form has no field 'file': upload the image or record as `file`",
            )  # fmt: skip
        fields = {k: v for k, v in form.multi_items() if k != "file" and isinstance(v, str)}
        return await asyncio.get_running_loop().run_in_executor(
            None, model.from_upload, files, fields, settings.max_image_side
        )
    raise InputError(
        415, "unsupported_media_type",
        f"the content type must be application/json or multipart/form-data; received "
        f"{content_type or 'none'}",
    )  # fmt: skip


def _json_error() -> dict:
    return {"application/json": {"schema": ERROR_SCHEMA}}


def _error_responses() -> dict:
    descriptions = {
        400: "the body is not valid JSON or not a readable form",
        401: "the API key is missing or wrong",
        404: "no model of that name",
        413: "the body or image is over the size limit",
        415: "not JSON or multipart form data; or an image that is not PNG/JPEG",
        422: "the input does not fit the model (shape, values, image, record)",
    }
    return {
        status: {"description": f"{text} ({', '.join(CODES[status])})", "content": _json_error()}
        for status, text in descriptions.items()
    }


def _request_body() -> dict:
    number = {"type": "number"}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "an image model: {'input': pixels in [0, 1], (H, W) or "
                    "(C, H, W), 'top_k'}; the ECG model: {'signal': [...], 'fs': Hz}",
                    "properties": {
                        "input": {"type": "array", "items": {}},
                        "top_k": {"type": "integer", "minimum": 1},
                        "signal": {"type": "array", "items": number},
                        "fs": number,
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "top_k": {"type": "integer", "minimum": 1},
                        "fs": number,
                    },
                }
            },
        },
    }


def _security(settings: ServeSettings) -> list:
    return [{"APIKeyHeader": []}] if settings.api_key is not None else []


def _declare_api_key(app: FastAPI) -> None:
    """The OpenAPI schema names the API key header that /predict needs."""
    build = app.openapi

    def openapi():
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {
                "APIKeyHeader": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
