"""The HTTP API keeps the contract its OpenAPI document states, on a live worker (real broker,
a table holding windows, a token file): the document served at ``/api/openapi.json`` is valid
OpenAPI 3.1, and every operation in it, fuzzed by schemathesis with valid and invalid input,
answers no 5xx, only documented statuses, the documented content types, bodies of the
documented schemas, and refuses requests without a valid token where it declares security.

The operations come from the live document, so routes added later are fuzzed with no change
here. Streaming operations (``text/event-stream``) never end, so they are left out of the fuzzer;
their error answers are checked by ``test_api_auth``."""

from __future__ import annotations

from typing import Any

import hypothesis
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from tests.integration.api_worker import USERS, ApiWorker, call, token_of

#: examples per operation and generation mode; the whole fuzz stays well under a minute
EXAMPLES = 30
FUZZ = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]
NEGATIVE_CHECKS = [*POSITIVE_CHECKS, negative_data_rejection]
#: valid input is accepted: what the document allows, the server takes (no 400). Not for the
#: ingest route: whether an event is valid depends on its source's key and timestamp fields and
#: on the clock (an event time more than max_future ahead), which no schema can state; its
#: refusals are checked by test_http_ingest.
ACCEPTING_CHECKS = [*POSITIVE_CHECKS, positive_data_acceptance]
#: query parameters whose valid values only the server hands out (position tokens, scan
#: cursors): a positive case leaves them out; the read-your-writes and scan tests use real ones
ISSUED_BY_THE_SERVER = ("after", "cursor")


def streaming(operation: Any) -> bool:
    """Whether an answer of the operation is a stream (``text/event-stream``)."""
    answers = operation.definition.raw.get("responses", {}).values()
    return any("text/event-stream" in answer.get("content", {}) for answer in answers)


def aimed(strategy: Any, tables: list[str]) -> Any:
    """``strategy``'s cases, where about half of those that name a table or a key name one the
    worker holds (a table of its pipeline, a key with windows), so the fuzzer reaches past the
    404 of an unknown name."""

    def aim(drawn: tuple[Any, bool, bool]) -> Any:
        case, known_table, known_key = drawn
        parameters = case.path_parameters or {}
        if known_table and "table" in parameters:
            parameters["table"] = tables[0]
        if known_key and "key" in parameters:
            parameters["key"] = USERS[0]
        for name in ISSUED_BY_THE_SERVER:
            (case.query or {}).pop(name, None)
        return case

    return st.tuples(strategy, st.booleans(), st.booleans()).map(aim)


def has_input(operation: Any) -> bool:
    """Whether the operation takes parameters or a body (else no input can be invalid)."""
    raw = operation.definition.raw
    return bool(raw.get("parameters")) or "requestBody" in raw


def live_document(api_worker: ApiWorker) -> dict[str, Any]:
    status, headers, body = call(f"{api_worker.base_url}/api/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    return dict(orjson.loads(body))


def test_the_served_document_is_valid_openapi_3_1(api_worker: ApiWorker) -> None:
    document = live_document(api_worker)
    assert document["openapi"].startswith("3.1")
    errors = [f"{e.instance_path}: {e.message}" for e in OPENAPI_31_VALIDATOR.iter_errors(document)]
    assert errors == []
    # schemathesis's own check of the document, the one its fuzzer relies on
    schemathesis.openapi.from_dict(document).validate()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            in_path = {part[1:-1] for part in path.split("/") if part.startswith("{")}
            assert declared == in_path, f"{method.upper()} {path}: path parameters"
            assert "default" in operation["responses"], f"{method.upper()} {path}: errors undocumented"
            if operation["security"]:
                assert {"401", "403"} <= set(operation["responses"]), f"{method.upper()} {path}"


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_keeps_its_documented_contract_under_fuzzing(
    api_worker: ApiWorker, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{api_worker.base_url}/api/openapi.json")
    admin = {"Authorization": f"Bearer {token_of('admin')}"}
    positive = mode is GenerationMode.POSITIVE
    failures: list[str] = []
    #: per fuzzed operation, the statuses it answered
    answered: dict[str, list[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if streaming(operation) or (mode is GenerationMode.NEGATIVE and not has_input(operation)):
            continue

        strategy = operation.as_strategy(generation_mode=mode)
        if positive:  # a negative case aimed at a known name may be valid
            strategy = aimed(strategy, ["clicks_per_user"])
        ingest = operation.label.startswith("POST /api/sources/")
        checks = (POSITIVE_CHECKS if ingest else ACCEPTING_CHECKS) if positive else NEGATIVE_CHECKS

        @FUZZ
        @given(case=strategy, checks=st.just(checks))
        def fuzz(case: Any, checks: list[Any]) -> None:
            response = case.call_and_validate(base_url=api_worker.base_url, headers=admin, checks=checks)
            answered.setdefault(case.operation.label, []).append(response.status_code)

        try:
            fuzz()
        except Exception as exc:  # every operation is fuzzed; the failures are reported together
            failures.append(f"{operation.label}: {exc}")
    assert failures == [], "\n\n".join(failures)
    point_query = answered["GET /api/tables/{table}/keys/{key}"]
    assert len(point_query) >= EXAMPLES // 2, point_query
    if mode is GenerationMode.POSITIVE:
        assert {"GET /health", "GET /metrics"} <= set(answered)
        assert set(point_query) == {200}, point_query  # the document names every table
    else:
        # invalid values are refused (negative_data_rejection checks each); a case that only
        # adds query parameters the route does not know is answered, as HTTP APIs do
        assert 400 in point_query, sorted(set(point_query))
    assert api_worker.worker.proc.poll() is None, api_worker.worker.log_tail()
