"""schemathesis against the server's own OpenAPI schema: no 500s, no schema violations.

A bounded number of generated requests per operation (`MAX_EXAMPLES`), through the ASGI
app in-process, with the random-weight digit model and the ECG detector.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dlcc.deploy import ServeSettings, create_app  # noqa: E402

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def schema(digits_model):
    app = create_app({"digits": digits_model}, ServeSettings(max_wait_ms=0))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_fuzz_every_operation(schema):
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)

        @settings(
            max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        @given(operation.as_strategy())
        def fuzz(case):
            case.call_and_validate(checks=CHECKS)

        fuzz()
    assert "POST /models/{name}/predict" in labels and "GET /metrics" in labels
