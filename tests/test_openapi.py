"""The OpenAPI document (/openapi.json) and a short schemathesis run against a live server.

The schemathesis run is the CI "short run": a few examples per action and generation mode.
``ZBMC_SCHEMATHESIS_EXAMPLES`` raises the budget (scripts/schemathesis_run.py does that).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_spec
from schemathesis import Case, CheckContext, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import _make_stack_factory
from tests.harness import Stack, Tenant
from zbmc.openapi import build_document
from zbmc.registry import load_actions
from zbmc.signature import sign

ACTIONS = sorted(name for (service, name) in load_actions() if service == "bmc")
# Every service's actions, by their path (the zrm tag actions too).
PATHS = {f"/api/v2/{service}/{name}": name for (service, name) in load_actions()}
EXAMPLES = int(os.environ.get("ZBMC_SCHEMATHESIS_EXAMPLES", "15"))
# CI replays the same cases on every run; a search for new failures sets this to 1.
RANDOM = os.environ.get("ZBMC_SCHEMATHESIS_RANDOM") == "1"


# --- the document ------------------------------------------------------------------------------


def test_document_is_valid_openapi_31_and_lists_every_action() -> None:
    document = build_document(load_actions())
    validate_spec(document)  # raises on an invalid document
    assert document["openapi"] == "3.1.0"
    operations = {path: item["post"]["operationId"] for path, item in document["paths"].items()}
    assert operations == PATHS
    assert {f"/api/v2/bmc/{name}" for name in ACTIONS} < set(PATHS)
    assert "/api/v2/zrm/ModifyResourceTags" in PATHS
    assert set(document["components"]["securitySchemes"]) == {"ZC2-HMAC-SHA256", "Bearer"}


def test_every_operation_documents_success_and_error_envelopes() -> None:
    document = build_document(load_actions())
    for item in document["paths"].values():
        responses = item["post"]["responses"]
        assert responses["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "Envelope"
        )
        errors = {status for status in responses if status != "200"}
        assert {"400", "401", "413", "500"} <= errors
        for status in errors:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}


def test_v2026_only_keys_are_optional_in_responses() -> None:
    zone = build_document(load_actions())["components"]["schemas"]["Zone"]
    assert "isByoipEnabled" in zone["properties"]
    assert "isByoipEnabled" not in zone["required"]
    assert "zoneId" in zone["required"]


def test_request_schemas_say_what_the_server_accepts() -> None:
    document = build_document(load_actions())
    schemas = document["components"]["schemas"]
    # RequiredStr: "" is MISSING_PARAMETER
    assert schemas["InstanceIdRequestInput"]["properties"]["instanceId"]["minLength"] == 1
    # WireFloat: JSON numbers only
    package = schemas["ModifyInstanceTrafficPackageRequestInput"]["properties"]
    assert package["trafficPackageSize"]["type"] == "number"
    # an explicit top-level null means absent (spec Q6)
    page = schemas["DescribeInstancesRequestInput"]["properties"]["pageNum"]
    assert {"type": "null"} in page["anyOf"]
    # an empty body is {}: optional only when nothing is required
    bodies = {path: item["post"]["requestBody"] for path, item in document["paths"].items()}
    assert bodies["/api/v2/bmc/DescribeZones"]["required"] is False
    assert bodies["/api/v2/bmc/StopInstances"]["required"] is True


def test_served_document_matches_the_registry(stack: Stack) -> None:
    served = requests.get(f"http://{stack.host}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/json")
    document = served.json()
    assert document == json.loads(json.dumps(build_document(load_actions())))
    schema = schemathesis.openapi.from_dict(document)
    labels = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        labels.add(result.ok().label)
    assert labels == {f"POST {path}" for path in PATHS}


# --- the action path extension -----------------------------------------------------------------


def test_action_in_the_path_equals_the_header(tenant: Tenant) -> None:
    key = (tenant.access_key_id, tenant.access_key_password)
    by_path = tenant.stack.raw({}, action=None, key=key, path="/api/v2/bmc/DescribeZones")
    by_header = tenant.stack.raw({}, action="DescribeZones", key=key)
    assert by_path.status_code == by_header.status_code == 200
    assert by_path.json()["response"]["zoneSet"] == by_header.json()["response"]["zoneSet"]


def test_action_path_and_header_must_agree(tenant: Tenant) -> None:
    key = (tenant.access_key_id, tenant.access_key_password)
    same = tenant.stack.raw({}, action="DescribeZones", key=key, path="/api/v2/bmc/DescribeZones")
    assert same.status_code == 200
    clash = tenant.stack.raw(
        {}, action="DescribeInstances", key=key, path="/api/v2/bmc/DescribeZones"
    )
    assert clash.status_code == 400
    assert clash.json()["code"] == "INVALID_ACTION"
    unknown = tenant.stack.raw({}, action=None, key=key, path="/api/v2/bmc/NoSuchAction")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "INVALID_ACTION")
    nested = tenant.stack.raw({}, action=None, key=key, path="/api/v2/bmc/DescribeZones/x")
    assert (nested.status_code, nested.json()["code"]) == (404, "INVALID_PATH")
    method = tenant.stack.raw({}, key=key, path="/api/v2/bmc/DescribeZones", method="GET")
    assert (method.status_code, method.json()["code"]) == (405, "INVALID_HTTP_METHOD")


# --- schemathesis against a live server --------------------------------------------------------


class HmacAuth(requests.auth.AuthBase):
    """ZC2-HMAC-SHA256 over the exact bytes and header values requests is about to send."""

    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id = key_id
        self.secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        data = body.encode() if isinstance(body, str) else body
        # urllib3 would add Host itself; setting it here makes the signed value the sent one.
        host = urlsplit(request.url or "").netloc
        request.headers["Host"] = host
        content_type = str(request.headers.get("Content-Type", ""))
        timestamp = str(int(time.time()))
        signature = sign(self.secret, content_type, host, timestamp, bytes(data))
        request.headers["X-ZC-Timestamp"] = timestamp
        request.headers["X-ZC-Signature-Method"] = "ZC2-HMAC-SHA256"
        request.headers["Authorization"] = (
            f"ZC2-HMAC-SHA256 Credential={self.key_id}, SignedHeaders=content-type;host, "
            f"Signature={signature}"
        )
        return request


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def envelope_conformance(
    ctx: CheckContext, response: schemathesis.Response, case: Case[Any]
) -> None:
    """Every answer is a JSON object in one of the two envelopes, with a requestId."""
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    assert body["requestId"].startswith("T"), body
    assert response.headers["x-zc-request-id"] == [body["requestId"]]
    if response.status_code == 200:
        assert set(body) == {"requestId", "response"}, body
        assert body["response"]["requestId"] == body["requestId"]
    else:
        assert set(body) == {"requestId", "code", "message"}, body
        assert response.status_code >= 400


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    envelope_conformance,
]


class Target:
    """A fresh server with one tenant owning instances of several kinds, and its schema."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.tenant = stack.tenant(balance="100000.00")
        self.instance_ids = [
            self.tenant.instance(),
            self.tenant.instance(instance_charge_type="POSTPAID", status="STOPPED"),
            self.tenant.instance(internet_charge_type="ByTrafficPackage", traffic_package="2"),
            self.tenant.instance(type="M6C-HA"),
            self.tenant.instance(zone="FRA-A", bandwidth=50),
        ]
        token = stack.admin.json("token", "create", self.tenant.tenant_id)["token"]
        self.auths: list[requests.auth.AuthBase] = [
            HmacAuth(self.tenant.access_key_id, self.tenant.access_key_password),
            BearerAuth(token),
        ]
        self.schema = schemathesis.openapi.from_url(f"http://{stack.host}/openapi.json")


@pytest.fixture(scope="module")
def target(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with ExitStack() as resources:
        yield Target(_make_stack_factory(backend, tmp_path_factory, resources)())


def _iso(seconds_ago: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


# Values the demo catalogue and the tenant's instances know: random strings almost never name a
# zone or an instance, so half of the time a positive case gets one of these and reaches the
# business rules instead of stopping at INVALID_PARAMETER or *_NOT_FOUND.
def _known(ids: list[str]) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "instanceId": st.sampled_from(ids),
        "instanceIds": st.lists(st.sampled_from(ids), min_size=1, max_size=3),
        "zoneId": st.sampled_from(["SEL-A", "HKG-A", "FRA-A", "LAX-A"]),
        "instanceTypeId": st.sampled_from(["M6C", "M6S", "L6G", "M6C-HA"]),
        "instanceChargeType": st.sampled_from(["PREPAID", "POSTPAID"]),
        "internetChargeType": st.sampled_from(["ByBandwidth", "ByTrafficPackage"]),
        "bandwidthOutMbps": st.integers(min_value=1, max_value=12_000),
        "trafficPackageSize": st.integers(min_value=0, max_value=2_100).map(lambda n: n / 20),
        "instanceName": st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True),
        "period": st.integers(min_value=1, max_value=36),
        "startTime": st.integers(min_value=3_600, max_value=86_400).map(_iso),
        "endTime": st.integers(min_value=0, max_value=3_600).map(_iso),
    }


def _with_known_values(body: Any, ids: list[str], data: st.DataObject) -> Any:
    if not isinstance(body, dict):
        return body
    for key, strategy in _known(ids).items():
        if key in body and data.draw(st.booleans()):
            body[key] = data.draw(strategy)
    return body


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("action", ACTIONS)
def test_schemathesis(target: Target, action: str, mode: GenerationMode) -> None:
    operation = target.schema[f"/api/v2/bmc/{action}"]["POST"]
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
    base_url = f"http://{target.stack.host}"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: Case[Any], data: st.DataObject) -> None:
        if mode is GenerationMode.POSITIVE:
            case.body = _with_known_values(case.body, target.instance_ids, data)
        auth = data.draw(st.sampled_from(target.auths))
        response = case.call(base_url=base_url, auth=auth)
        case.validate_response(response, checks=checks)

    run()
