"""schemathesis against the admin API's own OpenAPI document (in-process, through WSGI): valid
and invalid calls to every operation, with a valid token, never get a server error, and every
answer matches the document (status, content type, schema)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_schema_conformance, status_code_conformance,
)

from mwhost.admin.openapi import document
from tests.admin.support import admin_client, bearer, tagger

AUTH = bearer()
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = [(method.upper(), path) for path, methods in document()["paths"].items() for method in methods]
EXAMPLES = 30

# uploads are raw bytes, sent like application/octet-stream
schemathesis.serializer.alias("application/wasm", "application/octet-stream")


@pytest.fixture(scope="module")
def admin_schema(tmp_path_factory):
    client = admin_client(tmp_path_factory.mktemp("fuzz"), ("a", tagger("a", "1"), {}),
                          ("b", tagger("b", "1"), {}))
    return schemathesis.openapi.from_wsgi("/_admin/openapi.json", client.app, headers=AUTH)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_call_makes_the_admin_api_fail_or_break_its_document(admin_schema, method, path, mode):
    operation = admin_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    run()
