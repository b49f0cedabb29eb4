"""The OpenAPI 3.1 document, generated from the action registry and the error classes.

The real protocol selects the action with the ``X-ZC-Action`` header on ``POST /api/v2/bmc``.
OpenAPI allows one operation per path and method, so the document describes the zbmc extension
``POST /api/v2/bmc/{Action}`` (equivalent to the header; the edge accepts both) and keeps the
header form in the description. Request schemas come from pydantic in validation mode, response
schemas in serialization mode, both with camelCase aliases.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, get_args

from zbmc.errors import ApiError, MethodNotAllowed, PathNotFound, all_error_classes
from zbmc.registry import SERVICES, ActionSpec
from zbmc.wire import VERSIONS, RequiredStr, WireModel

OPENAPI_VERSION = "3.1.0"
REQUEST_ID_PATTERN = r"^T[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$"
_REQUEST_ID = {"type": "string", "pattern": REQUEST_ID_PATTERN}
HMAC_SCHEME = "ZC2-HMAC-SHA256"
BEARER_SCHEME = "Bearer"
# Errors that no POST to an action path can produce: they belong to other paths or methods.
_NOT_PER_ACTION: tuple[type[ApiError], ...] = (MethodNotAllowed, PathNotFound)
_NON_EMPTY = get_args(RequiredStr)[1:]  # the validator that turns "" into MISSING_PARAMETER

_DESCRIPTION = """\
Zenlayer Cloud Bare Metal (BMC) API 2.0 as served by zbmc.

Official SDKs call `POST /api/v2/bmc` and name the action in the `X-ZC-Action` header. zbmc also
accepts the action as the last path segment (`POST /api/v2/bmc/{Action}`); this document describes
that form because OpenAPI allows only one operation per path. Both forms are equivalent; when
both are given they must agree. The resource manager's tag actions (`zrm`, version 2025-10-14)
are served the same way at `POST /api/v2/zrm`.

Every response is JSON. Success (HTTP 200): `{"requestId", "response": {"requestId", ...}}`.
Failure (HTTP 4xx/5xx): `{"requestId", "code", "message"}`.
"""

_HMAC_DESCRIPTION = """\
`Authorization: ZC2-HMAC-SHA256 Credential=<accessKeyId>, SignedHeaders=content-type;host, \
Signature=<hex>` plus `X-ZC-Timestamp: <unix seconds>`. The signature is
HMAC-SHA256(accessKeyPassword, StringToSign) over the exact Content-Type and Host header values
and the SHA-256 of the raw body bytes; the canonical URI is always `/`.
"""


def _subclasses(cls: type[WireModel]) -> list[type[WireModel]]:
    found: list[type[WireModel]] = []
    stack = [cls]
    while stack:
        subs = stack.pop().__subclasses__()
        found += subs
        stack += subs
    return found


def _wire_models() -> dict[str, list[type[WireModel]]]:
    found: dict[str, list[type[WireModel]]] = {}
    for sub in _subclasses(WireModel):
        found.setdefault(sub.__name__, []).append(sub)
    return found


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def _numbers_only(schema: dict[str, Any]) -> None:
    # Request decimals (WireFloat) accept only JSON numbers; pydantic documents Decimal as
    # number-or-string, which would invite strings the server rejects.
    for node in _nodes(schema):
        alternatives = node.get("anyOf")
        if (
            isinstance(alternatives, list)
            and len(alternatives) == 2
            and alternatives[0] == {"type": "number"}
            and alternatives[1].get("type") == "string"
        ):
            del node["anyOf"]
            node["type"] = "number"


def _shape_response_object(node: dict[str, Any], cls: type[WireModel] | None) -> None:
    """Make a serialised model exact: every key it emits is required, nothing else may appear.

    ``to_wire`` emits every field (null when unset) except ``omitted`` ones and, for
    2022-11-20, the ``v2026_only`` ones, which therefore stay optional.
    """
    properties: dict[str, Any] = node.get("properties", {})
    if cls is None:  # an unknown or ambiguous model name: stay permissive
        node.pop("required", None)
        return
    alias = {name: info.alias or name for name, info in cls.model_fields.items()}
    for name in cls.omitted:
        properties.pop(alias[name], None)
    # Handlers may return a subclass that omits more keys (InstanceTypeNoImages).
    optional = {alias[name] for name in cls.v2026_only}
    for sub in _subclasses(cls):
        optional |= {alias[name] for name in sub.omitted | sub.v2026_only if name in alias}
    node["required"] = [key for key in properties if key not in optional]
    node["additionalProperties"] = False


def _null_means_absent(schema: dict[str, Any]) -> None:
    # The server drops explicit top-level nulls from the request body (spec Q6), so an optional
    # top-level property also accepts null.
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        alternatives = prop.get("anyOf", [prop])
        if name in required or {"type": "null"} in alternatives:
            continue
        keep = {key: prop.pop(key) for key in ("title", "default", "description") if key in prop}
        schema["properties"][name] = {"anyOf": [prop, {"type": "null"}], **keep}


def _non_empty_strings(schema: dict[str, Any], cls: type[WireModel] | None) -> None:
    # RequiredStr rejects "" as missing; pydantic's schema cannot show an AfterValidator.
    if cls is None:
        return
    for name, info in cls.model_fields.items():
        prop = schema.get("properties", {}).get(info.alias or name)
        if prop is not None and any(item in _NON_EMPTY for item in info.metadata):
            prop["minLength"] = 1


class _Components:
    """Collects component schemas, refusing two different schemas under one name."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}
        self.models = _wire_models()

    def add(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        existing = self.schemas.setdefault(name, schema)
        if existing != schema:
            raise RuntimeError(f"two different schemas are named {name}")
        return {"$ref": f"#/components/schemas/{name}"}

    def model(self, cls: type[WireModel], *, response: bool) -> dict[str, str]:
        suffix = "" if response else "Input"
        schema = cls.model_json_schema(
            by_alias=True,
            mode="serialization" if response else "validation",
            ref_template="#/components/schemas/{model}" + suffix,
        )
        definitions: dict[str, Any] = schema.pop("$defs", {})
        if response:  # the success payload repeats the envelope's requestId
            schema["properties"] = {"requestId": _REQUEST_ID, **schema.get("properties", {})}
        else:
            _null_means_absent(schema)
        definitions[cls.__name__] = schema
        for name, definition in definitions.items():
            candidates = self.models.get(name, [])
            if response:
                _shape_response_object(definition, candidates[0] if len(candidates) == 1 else None)
            else:
                _numbers_only(definition)
                _non_empty_strings(definition, candidates[0] if len(candidates) == 1 else None)
            self.add(name + suffix, definition)
        return {"$ref": f"#/components/schemas/{cls.__name__}{suffix}"}


def _error_schema() -> dict[str, Any]:
    codes = sorted({cls.code for cls in all_error_classes()} | {ApiError.code})
    return {
        "type": "object",
        "properties": {
            "requestId": _REQUEST_ID,
            "code": {"type": "string", "enum": codes},
            "message": {"type": "string"},
        },
        "required": ["requestId", "code", "message"],
        "additionalProperties": False,
    }


def _error_responses() -> dict[str, Any]:
    by_status: dict[int, set[str]] = {500: {ApiError.code}}
    for cls in all_error_classes():
        if not issubclass(cls, _NOT_PER_ACTION):
            by_status.setdefault(cls.status, set()).add(cls.code)
    return {
        str(status): {
            "description": "Error envelope; codes: " + ", ".join(sorted(codes)),
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}
            },
        }
        for status, codes in sorted(by_status.items())
    }


def _version_header(spec: ActionSpec) -> dict[str, Any]:
    service = SERVICES[spec.service]
    if spec.versions == service.versions:
        return {
            "required": False,
            "description": f"API version; {service.default_version} when absent or empty.",
            "schema": {"type": "string", "enum": ["", *service.versions]},
        }
    return {
        "required": True,
        "description": f"API version: this action exists in {', '.join(spec.versions)} only.",
        "schema": {"type": "string", "enum": list(spec.versions)},
    }


def _operation(spec: ActionSpec, components: _Components) -> dict[str, Any]:
    inner = components.model(spec.response, response=True)
    envelope_name = f"{spec.name}Envelope"
    components.add(
        envelope_name,
        {
            "type": "object",
            "properties": {
                "requestId": _REQUEST_ID,
                "response": inner,
            },
            "required": ["requestId", "response"],
            "additionalProperties": False,
        },
    )
    request = components.model(spec.request, response=False)
    summary = spec.description.splitlines()[0] if spec.description else spec.name
    return {
        "operationId": spec.name,
        "summary": summary,
        "description": spec.description or spec.name,
        "tags": [spec.service],
        "x-zc-action": spec.name,
        "x-zc-write": spec.write,
        "parameters": [
            {
                "name": "X-ZC-Version",
                "in": "header",
                **_version_header(spec),
            }
        ],
        "requestBody": {
            # An empty body means {}: optional unless the action has required parameters.
            "required": bool(spec.request.model_json_schema().get("required")),
            "content": {"application/json": {"schema": request}},
        },
        "responses": {
            "200": {
                "description": "Success envelope",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{envelope_name}"}
                    }
                },
            },
            **_error_responses(),
        },
    }


def build_document(actions: Mapping[tuple[str, str], ActionSpec]) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing every action in ``actions``."""
    components = _Components()
    components.add("ErrorEnvelope", _error_schema())
    paths: dict[str, Any] = {}
    for (service, name), spec in sorted(actions.items()):
        paths[f"/api/v2/{service}/{name}"] = {"post": _operation(spec, components)}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "zbmc: Zenlayer Cloud BMC API",
            "version": VERSIONS[-1],
            "description": _DESCRIPTION,
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                HMAC_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": _HMAC_DESCRIPTION,
                },
                BEARER_SCHEME: {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{HMAC_SCHEME: []}, {BEARER_SCHEME: []}],
    }
