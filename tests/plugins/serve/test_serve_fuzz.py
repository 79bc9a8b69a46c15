"""Schemathesis fuzzes the OpenAPI schema of `whyrec serve`: no input gets a 500 (bounded:
a few dozen generated requests per operation, derandomized so a failure reproduces)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

import schemathesis  # a test extra of whyrec-serve (pyproject: test; the Makefile installs it)
from schemathesis.checks import not_a_server_error


@pytest.fixture(scope="module")
def fuzz_app(served_run, tmp_path_factory):
    import shutil

    from fastapi.testclient import TestClient
    from whyrec_serve.app import create_app

    run = tmp_path_factory.mktemp("fuzz") / served_run.name
    shutil.copytree(served_run, run)  # generated events may be valid: they go to this copy's log
    app = create_app(run, background_warm=False)
    with TestClient(app):  # runs the start-up: the run is warm before the first generated request
        yield app


def test_no_input_gets_a_server_error(fuzz_app):
    from hypothesis import given

    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    fuzzed = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path == "/admin/reload":  # reloads the whole run per example (seconds); its bad input is tested by hand
            continue

        @settings(max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def check(case):
            case.call_and_validate(checks=[not_a_server_error])

        check()
        fuzzed.append(f"{op.method.upper()} {op.path}")
    assert sorted(fuzzed) == ["GET /healthz", "GET /metrics", "GET /readyz", "GET /recommend", "GET /why-above", "POST /events"]
