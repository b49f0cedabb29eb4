"""Operators' HTTP endpoints under ``/admin/v1``: traffic ingestion, the simulated clock, top-ups,
snapshots and reset, fault injection.

They exist only when ``ZBMC_ADMIN_TOKEN`` is set (otherwise every path answers 404 like any
unknown path) and require ``Authorization: Bearer <token>``. Each request is one transaction and
answers JSON; errors use the API's envelope ``{"requestId", "code", "message"}``.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from zbmc import faults
from zbmc.agent import protocol as agent_protocol
from zbmc.clock import MAX_ADVANCE_SECONDS, Clock, iso
from zbmc.db.engine import unit_of_work
from zbmc.domain.pricing import from_cents
from zbmc.errors import (
    ApiError,
    BodyTooLarge,
    InternalServerError,
    InvalidAuthorization,
    StateBusy,
)
from zbmc.errors import InvalidParameter as BadRequest
from zbmc.pipeline import error_body, new_request_id
from zbmc.snapshots import Busy, SnapshotError, SnapshotNotFound, Snapshots
from zbmc.store import overview, traffic
from zbmc.tenancy import MAX_AMOUNT, NotFound, top_up

# Agents send big batches (10k samples is about 1.5 MB), well above the API's body limit.
MAX_ADMIN_BODY_BYTES = 64 * 1024 * 1024
log = logging.getLogger("zbmc.admin")

# (transaction, billing now, JSON body, path parameters) -> JSON result
Work = Callable[[Connection, int, dict[str, Any], dict[str, str]], dict[str, Any]]
# (JSON body, path parameters) -> JSON result; runs its own transactions
Task = Callable[[dict[str, Any], dict[str, str]], Any]


class ResourceNotFound(ApiError):
    # The generic not-found code of the spec (README §5); only operators' endpoints use it.
    code, status, template = "OPERATION_FAILED_RESOURCE_NOT_FOUND", 404, "{detail}"


def _respond(request_id: str, status: int, body: bytes) -> Response:
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers={"x-zc-request-id": request_id},
    )


async def _read_json(request: Request) -> dict[str, Any]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_ADMIN_BODY_BYTES:
            raise BodyTooLarge(limit=MAX_ADMIN_BODY_BYTES)
        chunks.append(chunk)
    try:
        data = json.loads(b"".join(chunks) or b"{}", parse_float=Decimal)
    except (ValueError, RecursionError):
        raise BadRequest(detail="the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest(detail="the request body must be a JSON object")
    return data


class AdminApi:
    def __init__(self, engine: Engine, clock: Clock, token: str) -> None:
        self.engine = engine
        self.clock = clock
        self._token = token.encode()
        self.snapshots = Snapshots(engine, clock)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/admin/v1/traffic", self._endpoint(self._traffic), methods=["POST"]),
            Route("/admin/v1/clock/advance", self._endpoint(self._advance), methods=["POST"]),
            Route(
                "/admin/v1/tenants/{tenant_id}/topup",
                self._endpoint(self._topup),
                methods=["POST"],
            ),
            *(
                Route(f"/admin/v1/{name}", self._endpoint(_reader(read)), methods=["GET"])
                for name, read in (
                    ("tenants", overview.tenant_rows),
                    ("catalogue", overview.catalogue),
                    ("worker", lambda conn: overview.worker(conn, self.clock)),
                    ("events", overview.events),
                    ("clock", lambda conn: overview.clock_state(conn, self.clock)),
                )
            ),
            Route("/admin/v1/snapshots", self._task(self._snapshot_list), methods=["GET"]),
            Route("/admin/v1/snapshots", self._task(self._snapshot_save), methods=["POST"]),
            Route(
                "/admin/v1/snapshots/{name}/restore",
                self._task(lambda _body, path: self.snapshots.restore(path["name"]).as_dict()),
                methods=["POST"],
            ),
            Route(
                "/admin/v1/snapshots/{name}",
                self._task(self._snapshot_delete),
                methods=["DELETE"],
            ),
            Route("/admin/v1/reset", self._task(self._reset), methods=["POST"]),
            Route(
                agent_protocol.STATE_PATH,
                self._endpoint(agent_protocol.state, write=False),  # polled every second
                methods=["POST"],
            ),
            Route(
                agent_protocol.REPORT_PATH,
                self._endpoint(agent_protocol.report),
                methods=["POST"],
            ),
            Route("/admin/v1/faults", self._endpoint(self._add_fault), methods=["POST"]),
            Route("/admin/v1/faults/list", self._endpoint(self._list_faults), methods=["POST"]),
            Route("/admin/v1/faults/clear", self._endpoint(self._clear_faults), methods=["POST"]),
        ]

    def _authorize(self, request: Request) -> None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise InvalidAuthorization(
                detail="an `Authorization: Bearer <admin token>` is required"
            )
        if not hmac.compare_digest(presented.strip().encode(), self._token):
            raise InvalidAuthorization(detail="the admin token is not valid")

    def _endpoint(
        self, work: Work, *, write: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        return self._task(lambda body, path: self._run(work, body, path, write))

    def _task(self, task: Task) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = new_request_id()
            try:
                self._authorize(request)
                body = await _read_json(request)
                path = {k: str(v) for k, v in request.path_params.items()}
                result = await run_in_threadpool(_snapshot_errors, task, body, path)
                return _respond(request_id, 200, json.dumps(result).encode())
            except ApiError as error:
                return _respond(request_id, error.status, error_body(request_id, error))
            except Exception:
                log.exception("internal error in %s", request.url.path)
                failure = InternalServerError()
                return _respond(request_id, failure.status, error_body(request_id, failure))

        return endpoint

    def _run(
        self, work: Work, body: dict[str, Any], path: dict[str, str], write: bool = True
    ) -> dict[str, Any]:
        try:
            with unit_of_work(self.engine, write=write) as conn:
                return work(conn, self.clock.now(conn), body, path)
        except NotFound as exc:
            raise ResourceNotFound(detail=str(exc)) from None
        except ValueError as exc:  # SampleError, clock and amount rules: the caller's mistake
            raise BadRequest(detail=str(exc)) from None
        except ArithmeticError as exc:  # a number beyond what a column or Decimal holds
            raise BadRequest(detail=f"a number is out of range ({exc})") from None

    def _traffic(
        self, conn: Connection, _now: int, body: dict[str, Any], _path: dict[str, str]
    ) -> dict[str, Any]:
        if "samples" not in body:
            raise BadRequest(detail='the body must be {"samples": [...]}')
        result = traffic.ingest(conn, traffic.parse_samples(body["samples"]))
        return {"accepted": result.accepted, "duplicates": result.duplicates}

    def _advance(
        self, conn: Connection, _now: int, body: dict[str, Any], _path: dict[str, str]
    ) -> dict[str, Any]:
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise BadRequest(
                detail=f"`seconds` must be a whole number of seconds, 0 to {MAX_ADVANCE_SECONDS}"
            )
        return {"now": iso(self.clock.advance(conn, seconds))}

    def _topup(
        self, conn: Connection, now: int, body: dict[str, Any], path: dict[str, str]
    ) -> dict[str, Any]:
        tenant_id = path["tenant_id"]
        raw = body.get("amount")
        if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
            raise BadRequest(
                detail=f'`amount` must be a decimal string such as "12.34", 0.01 to {MAX_AMOUNT}'
            )
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            raise BadRequest(
                detail=f"`amount` {raw!r} is not a decimal number (0.01 to {MAX_AMOUNT})"
            ) from None
        balance = top_up(conn, tenant_id, amount, now, "top-up (admin API)")
        return {"tenantId": tenant_id, "balance": str(from_cents(balance))}

    def _add_fault(
        self, conn: Connection, now: int, body: dict[str, Any], _path: dict[str, str]
    ) -> dict[str, Any]:
        fields = {}
        for name in ("operation", "tenantId", "instanceId"):
            value = body.get(name)
            if value is not None and not isinstance(value, str):
                raise BadRequest(detail=f"`{name}` must be a string")
            fields[name] = value
        operation = fields["operation"]
        if operation is None:
            raise BadRequest(detail=f"`operation` is required ({' or '.join(faults.OPERATIONS)})")
        return faults.add(conn, now, operation, fields["tenantId"], fields["instanceId"])

    def _list_faults(
        self, conn: Connection, _now: int, _body: dict[str, Any], _path: dict[str, str]
    ) -> dict[str, Any]:
        return {"faults": faults.list_all(conn)}

    def _clear_faults(
        self, conn: Connection, _now: int, body: dict[str, Any], _path: dict[str, str]
    ) -> dict[str, Any]:
        fault_id = body.get("faultId")
        if fault_id is not None and (isinstance(fault_id, bool) or not isinstance(fault_id, int)):
            raise BadRequest(detail="`faultId` must be an integer")
        return {"cleared": faults.clear(conn, fault_id)}

    # --- snapshots and reset (zbmc.snapshots) ---------------------------------------------------

    def _snapshot_list(self, _body: dict[str, Any], _path: dict[str, str]) -> Any:
        return {"snapshots": [found.as_dict() for found in self.snapshots.list()]}

    def _snapshot_save(self, body: dict[str, Any], _path: dict[str, str]) -> Any:
        name = body.get("name")
        if not isinstance(name, str):
            raise BadRequest(detail='the body must be {"name": "..."}')
        return self.snapshots.save(name).as_dict()

    def _snapshot_delete(self, _body: dict[str, Any], path: dict[str, str]) -> Any:
        self.snapshots.delete(path["name"])
        return {"deleted": path["name"]}

    def _reset(self, body: dict[str, Any], _path: dict[str, str]) -> Any:
        demo = body.get("demo", False)
        if not isinstance(demo, bool):
            raise BadRequest(detail="`demo` must be true or false")
        return {"demo": self.snapshots.reset(demo) or None}


def _reader(read: Callable[[Connection], dict[str, Any]]) -> Work:
    """A read for the console's operator page (zbmc.store.overview)."""
    return lambda conn, _now, _body, _path: read(conn)


def _snapshot_errors(task: Task, body: dict[str, Any], path: dict[str, str]) -> Any:
    try:
        return task(body, path)
    except SnapshotNotFound as exc:
        raise ResourceNotFound(detail=str(exc)) from None
    except Busy as exc:
        raise StateBusy(detail=str(exc)) from None
    except SnapshotError as exc:
        raise BadRequest(detail=str(exc)) from None


def admin_routes(engine: Engine, clock: Clock, token: str | None) -> list[BaseRoute]:
    """The admin routes, or none at all when no admin token is configured."""
    return [] if token is None else AdminApi(engine, clock, token).routes()
