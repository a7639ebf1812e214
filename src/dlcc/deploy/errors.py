"""The one error shape of the API: ``{"error": CODE, "message": TEXT}`` with a 4xx status.

`InputError` is raised by the input checks (`dlcc.deploy.inputs`) and by the models; the
app turns it, FastAPI's own validation errors and any HTTP error into that shape. The
message says what was expected, what was received, and what to do.
"""

from __future__ import annotations


class InputError(Exception):
    """A request the server refuses: status (4xx), a short code, and a readable message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# The codes, for the OpenAPI description and the tests.
CODES = {
    400: ["bad_request", "bad_json", "bad_form"],
    401: ["unauthorized"],
    404: ["not_found", "unknown_model"],
    405: ["method_not_allowed"],
    413: ["too_large", "image_too_large"],
    415: ["unsupported_media_type"],
    422: ["invalid_input", "bad_shape", "not_finite", "out_of_range", "bad_image", "bad_record"],
}


def error_body(code: str, message: str) -> dict:
    return {"error": code, "message": message}
