"""A tenant's own account, read-only: ``POST /account/v1`` with ``X-ZC-Action`` one of
``DescribeBalance``, ``DescribeLedger``, ``DescribeOrders``.

The BMC API has no action for the balance, the ledger or orders (Zenlayer shows them in its
console), yet the web console (``/console``) must show them through the API's rules. So these
three reads take exactly the API's authentication (ZC2-HMAC-SHA256 over the same headers and
raw body, or a bearer token; ``zbmc.auth``) and answer in the API's envelopes, and a tenant sees
only its own account. They change nothing. docs/console.md documents them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from zbmc.auth import Credentials, authenticate
from zbmc.clock import Clock
from zbmc.db.engine import unit_of_work
from zbmc.errors import ApiError, BodyTooLarge, InvalidAction, InvalidParameter
from zbmc.pipeline import decode_body, error_body, new_request_id
from zbmc.settings import Settings
from zbmc.store import accounts

MAX_PAGE_SIZE = 1000


def _page(payload: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    number, size = payload.get("pageNum", 1), payload.get("pageSize", 20)
    for name, value in (("pageNum", number), ("pageSize", size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidParameter(detail=f"`{name}` must be a whole number from 1")
    if size > MAX_PAGE_SIZE:
        raise InvalidParameter(detail=f"`pageSize` must be at most {MAX_PAGE_SIZE}")
    start = (number - 1) * size
    return {"totalCount": len(rows), "dataSet": rows[start : start + size]}


def _balance(conn: Connection, tenant_id: str, _payload: dict[str, Any]) -> dict[str, Any]:
    report = accounts.balance_report(conn, tenant_id)
    return {"balance": report["balance"], "currency": report["currency"]}


def _ledger(conn: Connection, tenant_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    # newest first: what a person looks for
    return _page(payload, accounts.list_ledger(conn, tenant_id)[::-1])


def _orders(conn: Connection, tenant_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    instance_id = payload.get("instanceId")
    if instance_id is not None and not isinstance(instance_id, str):
        raise InvalidParameter(detail="`instanceId` must be a string")
    rows = accounts.list_orders(conn, tenant_id, instance_id)[::-1]
    for row in rows:
        row.pop("tenantId", None)
    return _page(payload, rows)


ACTIONS: dict[str, Callable[[Connection, str, dict[str, Any]], dict[str, Any]]] = {
    "DescribeBalance": _balance,
    "DescribeLedger": _ledger,
    "DescribeOrders": _orders,
}


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # money has two decimals: the shortest float repr shows them exactly
    raise TypeError(f"not JSON: {type(value).__name__}")


class AccountApi:
    def __init__(self, engine: Engine, clock: Clock, settings: Settings) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings

    async def endpoint(self, request: Request) -> Response:
        request_id = new_request_id()
        try:
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > self.settings.max_body_bytes:
                    raise BodyTooLarge(limit=self.settings.max_body_bytes)
            headers = request.headers
            credentials = Credentials(
                authorization=headers.get("authorization"),
                timestamp=headers.get("x-zc-timestamp"),
                content_type=headers.get("content-type", ""),
                host=headers.get("host", ""),
                body=bytes(body),
            )
            action = headers.get("x-zc-action", "")
            result = await run_in_threadpool(self._run, action, credentials)
        except ApiError as error:
            return _respond(request_id, error.status, error_body(request_id, error))
        result["requestId"] = request_id
        envelope = {"requestId": request_id, "response": result}
        return _respond(request_id, 200, json.dumps(envelope, default=_number).encode())

    def _run(self, action: str, credentials: Credentials) -> dict[str, Any]:
        handler = ACTIONS.get(action)
        if handler is None:
            raise InvalidAction(action=action)
        payload = decode_body(credentials.body)
        with unit_of_work(self.engine, write=False) as conn:
            caller = authenticate(
                conn, credentials, self.clock.wall(), self.settings.signature_window_seconds
            )
            return handler(conn, caller.tenant_id, payload)

    def routes(self) -> list[BaseRoute]:
        return [Route("/account/v1", self.endpoint, methods=["POST"])]


def _respond(request_id: str, status: int, body: bytes) -> Response:
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers={"x-zc-request-id": request_id},
    )
