"""What a server is allowed to do: limits, batching, the API key and CORS."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

API_KEY_ENV = "DLCC_API_KEY"  # read when --api-key is not given
API_KEY_HEADER = "X-API-Key"
DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024  # bytes of a request body, counted while reading
DEFAULT_MAX_SIDE = 4096  # pixels: larger images are refused before they are decoded


@dataclass
class ServeSettings:
    """Settings of one server (`create_app`); the defaults are those of `dlcc serve`.

    max_body_bytes: the largest request body; a longer one gets 413 as soon as the byte
      past the limit arrives (the declared Content-Length is checked first).
    max_image_side: images wider or taller than this are refused (413), before decoding.
    batching: gather concurrent requests to one model into one inference call;
      max_batch samples at most, waiting at most max_wait_ms after the first one.
    api_key: when set, POST /models/{name}/predict needs the header X-API-Key with it.
    cors_origins: origins allowed to call the API from a browser; empty: no CORS headers.
    top_k: how many classes a classifier's answer lists, unless the request says.
    """

    max_body_bytes: int = DEFAULT_MAX_UPLOAD
    max_image_side: int = DEFAULT_MAX_SIDE
    batching: bool = True
    max_batch: int = 64
    max_wait_ms: float = 2.0
    api_key: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    top_k: int = 3
    inference_threads: int = 1  # threads running batched inference (one per model)

    def __post_init__(self) -> None:
        from dlcc.errors import DlccError

        if self.max_body_bytes < 1024:
            raise DlccError(f"max_body_bytes must be >= 1024, received {self.max_body_bytes}")
        if self.max_batch < 1:
            raise DlccError(f"--max-batch must be >= 1, received {self.max_batch}")
        if not 0 <= self.max_wait_ms <= 1000:
            raise DlccError(f"--max-wait-ms must lie in 0..1000, received {self.max_wait_ms}")
        if self.top_k < 1:
            raise DlccError(f"top_k must be >= 1, received {self.top_k}")
        if self.api_key is not None and not self.api_key.strip():
            raise DlccError("the API key is empty: pass a non-empty --api-key, or none")


def api_key_from(option: str | None) -> str | None:
    """--api-key if given, else $DLCC_API_KEY if set and non-empty, else None."""
    if option:
        return option
    return os.environ.get(API_KEY_ENV) or None
