"""authenticate → find action → validate body → run the handler in ONE transaction → envelope.

Everything here is synchronous and knows nothing about HTTP frameworks; the edge hands in a
``Call`` and gets back a status and a JSON body.
"""

from __future__ import annotations

import json
import logging
import os
import re
from decimal import Decimal
from typing import Any, NamedTuple

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from zbmc.auth import Credentials, authenticate
from zbmc.clock import Clock
from zbmc.context import Context
from zbmc.db.direct import DirectDb, Tx
from zbmc.db.engine import Checkpointer, unit_of_work
from zbmc.errors import (
    ApiError,
    InternalServerError,
    InvalidAction,
    InvalidParameter,
    InvalidVersion,
    MissingParameter,
)
from zbmc.registry import ActionSpec, load_actions
from zbmc.settings import Settings
from zbmc.wire import DEFAULT_VERSION, VERSIONS, WireModel, to_wire

log = logging.getLogger("zbmc.api")


class Call(NamedTuple):
    """One API request as received, immutable. (NamedTuples here and in the other per-request
    records: a frozen dataclass costs several microseconds more to build.)"""

    request_id: str
    service: str
    action: str | None
    version: str | None
    credentials: Credentials


class Outcome(NamedTuple):
    status: int
    body: bytes
    code: str  # "OK" or the error code, for logs and metrics
    tenant_id: str | None = None


def new_request_id() -> str:
    """``T`` and an upper-case random (version 4) UUID, as the provider's request ids look."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex().upper()
    return f"T{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def error_body(request_id: str, error: ApiError) -> bytes:
    return json.dumps(
        {"requestId": request_id, "code": error.code, "message": error.message},
        ensure_ascii=False,
    ).encode()


def error_outcome(request_id: str, error: ApiError, tenant_id: str | None = None) -> Outcome:
    return Outcome(error.status, error_body(request_id, error), error.code, tenant_id)


def decode_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        # Strict UTF-8 (spec §1): json.loads on bytes would also accept UTF-16/32 and
        # surrogates encoded in UTF-8.
        data = _DECODER.decode(body.decode("utf-8"))
        # A `\ud800` escape without its pair decodes to a string that cannot be stored or sent.
        unpaired = _SURROGATE_ESCAPE.search(body) is not None and _has_lone_surrogate(data)
        # PostgreSQL text cannot hold NUL: a `\u0000` escape would fail in the query (a 500).
        nul = b"\\u0000" in body and _has_nul(data)
    except (ValueError, RecursionError, ArithmeticError):
        # ArithmeticError: a number whose exponent no Decimal can hold, e.g. 1e999999999999999999
        raise InvalidParameter(detail="the request body is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise InvalidParameter(detail="the request body must be a JSON object")
    if unpaired:
        raise InvalidParameter(detail="the request body contains an unpaired surrogate escape")
    if nul:
        raise InvalidParameter(detail="the request body contains a NUL character")
    # Fields left unset are omitted by the SDKs; an explicit null means the same (spec Q6).
    return {key: value for key, value in data.items() if value is not None}


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def validate(spec: ActionSpec, payload: dict[str, Any]) -> WireModel:
    try:
        return spec.request.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "missing":
            raise MissingParameter(name=where) from None
        raise InvalidParameter(detail=f"invalid parameter `{where}`: {first['msg']}") from None


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.actions = load_actions()
        self.direct = DirectDb(engine, checkpointer)

    def close(self) -> None:
        self.direct.close()

    def _context(self, tx: Tx, conn: Connection | None, call: Call, version: str) -> Context:
        """Who calls (or a 401) and the billing time, inside the request's transaction."""
        window = self.settings.signature_window_seconds
        caller = authenticate(tx, call.credentials, self.clock.wall(), window)
        now = self.clock.at(caller.clock_mode, caller.clock_offset)
        return Context(tx, caller.tenant_id, now, version, self.settings, conn)

    def handle(self, call: Call) -> Outcome:
        tenant_id: str | None = None
        try:
            version = call.version or DEFAULT_VERSION
            if version not in VERSIONS:
                raise InvalidVersion(version=version)
            if not call.action:
                raise MissingParameter(name="X-ZC-Action")
            spec = self.actions.get((call.service, call.action))
            if spec is None:
                raise InvalidAction(action=call.action)
            request = validate(spec, decode_body(call.credentials.body))
            if spec.direct:
                with self.direct.transaction(write=spec.write) as tx:
                    ctx = self._context(tx, None, call, version)
                    tenant_id = ctx.tenant_id
                    response = spec.handler(ctx, request)
            else:
                with unit_of_work(self.engine, write=spec.write) as conn:
                    ctx = self._context(Tx.of(conn), conn, call, version)
                    tenant_id = ctx.tenant_id
                    response = spec.handler(ctx, request)
            data = {"requestId": call.request_id, **to_wire(response, version)}
            body = json.dumps(
                {"requestId": call.request_id, "response": data}, ensure_ascii=False
            ).encode()
            return Outcome(200, body, "OK", tenant_id)
        except ApiError as error:
            return error_outcome(call.request_id, error, tenant_id)
        except Exception:
            # The request id goes into the message itself so that any log format shows it.
            log.exception(
                "internal error in %s, request %s",
                call.action,
                call.request_id,
                extra={"request_id": call.request_id},
            )
            return error_outcome(call.request_id, InternalServerError(), tenant_id)
