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

from zbmc import replay
from zbmc.auth import Caller, Credentials, KeyMemo, authenticate
from zbmc.clock import Clock
from zbmc.context import Context
from zbmc.db.direct import DirectDb, Tx
from zbmc.db.engine import Checkpointer, WriteTurns, unit_of_work
from zbmc.errors import (
    ApiError,
    InternalServerError,
    InvalidAction,
    InvalidParameter,
    InvalidVersion,
    MissingParameter,
)
from zbmc.registry import SERVICES, ActionSpec, Prefetch, load_actions
from zbmc.settings import Settings
from zbmc.wire import WireModel

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
    h = os.urandom(16).hex().upper()
    # version 4 in the 13th digit; the RFC 4122 variant (10xx) in the 17th, keeping 2 random bits
    return f"T{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_VARIANT = {f"{n:X}": "89AB"[n & 3] for n in range(16)}


# Built once: json.dumps with any non-default option builds an encoder per call (0.6 µs).
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


def error_body(request_id: str, error: ApiError) -> bytes:
    return _ENCODE({"requestId": request_id, "code": error.code, "message": error.message}).encode()


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


# PostgreSQL: how long a shared transaction waits for a row lock before its calls run alone.
SHARED_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '50ms'"


class _Prepared(NamedTuple):
    """A call that passed every check needing no database: its action and validated body."""

    call: Call
    spec: ActionSpec
    version: str
    request: WireModel


class _Failed(Exception):
    """An API error inside a shared transaction, with the caller when already known."""

    def __init__(self, error: ApiError, tenant_id: str | None) -> None:
        self.error = error
        self.tenant_id = tenant_id


class _FailedAfterChanges(Exception):
    """A call of a shared transaction raised an API error after it changed rows, or one of
    its signatures was recorded before (``replay.remember_all``)."""

    def __init__(self, call: Call | None) -> None:
        if call is None:
            super().__init__("a signed write of the batch was applied before")
        else:
            super().__init__(f"{call.action} (request {call.request_id}) failed after its changes")


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock,
        checkpointer: Checkpointer | None = None,
        turns: WriteTurns | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.actions = load_actions()
        self.direct = DirectDb(engine, checkpointer, turns)
        self.group_commit = settings.group_commit
        self._sqlite = engine.dialect.name == "sqlite"
        self.replay_guard = settings.replay_guard

    def close(self) -> None:
        self.direct.close()

    def _caller(self, tx: Tx, call: Call, keys: KeyMemo | None) -> Caller:
        """Who calls (or a 401), inside the request's transaction."""
        settings = self.settings
        return authenticate(
            tx,
            call.credentials,
            self.clock.wall(),
            settings.signature_window_seconds,
            keys,
            settings.require_signed_action,
        )

    def _prepare(self, call: Call) -> _Prepared:
        service = SERVICES[call.service]
        version = call.version or service.default_version
        if version not in service.versions:
            raise InvalidVersion(version=version)
        if not call.action:
            raise MissingParameter(name="X-ZC-Action")
        spec = self.actions.get((call.service, call.action))
        if spec is None or version not in spec.versions:
            raise InvalidAction(action=call.action)
        return _Prepared(call, spec, version, validate(spec, decode_body(call.credentials.body)))

    def _respond(
        self,
        tx: Tx,
        conn: Connection | None,
        p: _Prepared,
        keys: KeyMemo | None = None,
        seen: list[tuple[int, int]] | None = None,
        known: Caller | ApiError | None = None,
    ) -> Outcome:
        """Authenticate (``known``: done already) and run the handler in the open transaction;
        the success outcome. ``seen``: the replay guard's records are collected there, for the
        caller to write (``replay.remember_all``), instead of one statement each."""
        tenant_id: str | None = None
        try:
            caller = self._caller(tx, p.call, keys) if known is None else known
            if isinstance(caller, ApiError):
                raise caller
            tenant_id = caller.tenant_id
            now = self.clock.at(caller.clock_mode, caller.clock_offset)
            ctx = Context(tx, tenant_id, now, p.version, self.settings, conn)
            response = p.spec.handler(ctx, p.request)
            if p.spec.write and caller.signature is not None and self.replay_guard:
                # After the handler: only an applied write burns its signature (zbmc.replay).
                if seen is None:
                    replay.remember(tx, caller.signature, caller.signed_at, p.spec.name)
                else:
                    seen.append((caller.signed_at, replay.digest(caller.signature, p.spec.name)))
        except ApiError as error:
            raise _Failed(error, tenant_id) from None
        request_id = p.call.request_id
        data = {"requestId": request_id, **response.wire(p.version)}
        body = response.finish(_ENCODE({"requestId": request_id, "response": data}))
        return Outcome(200, body, "OK", tenant_id)

    def _run(self, p: _Prepared) -> Outcome:
        """One prepared call in its own transaction. A call whose held connection turns out to
        be broken before its COMMIT (PostgreSQL restarted since the last request) runs once
        more on a new connection: nothing of it was committed."""
        if p.spec.direct:
            transaction = self.direct.transaction(write=p.spec.write)
            try:
                with transaction as tx:
                    return self._respond(tx, None, p)
            except Exception:
                if not transaction.lost:
                    raise
            log.warning("the database connection was lost; %s runs again", p.call.action)
            with self.direct.transaction(write=p.spec.write) as tx:
                return self._respond(tx, None, p)
        with unit_of_work(self.engine, write=p.spec.write) as conn:
            return self._respond(Tx.of(conn), conn, p)

    def handle(self, call: Call) -> Outcome:
        prepared = self._checked(call)
        return prepared if isinstance(prepared, Outcome) else self._run_alone(prepared)

    def _checked(self, call: Call) -> _Prepared | Outcome:
        try:
            return self._prepare(call)
        except ApiError as error:
            return error_outcome(call.request_id, error)
        except Exception:
            return self._internal_error(call)

    def handle_batch(self, calls: list[Call]) -> list[Outcome]:
        """Several calls that arrived together, each with the outcome it would have alone.

        With group commit, the direct actions among them run in ONE transaction and the
        responses wait for the one commit (which costs about as much as all of a request's
        statements). An API error that a call raises before it changed anything (the usual
        case: validation, authentication, the change rules, a balance too low) leaves nothing
        to undo and becomes its answer. Any other failure (an API error after a change, an
        unexpected error, the commit itself) rolls the whole transaction back, and every call
        of it runs again on its own, so one bad request costs the others only time.
        """
        outcomes: list[Outcome | None] = [None] * len(calls)
        shared: list[tuple[int, _Prepared]] = []
        for index, call in enumerate(calls):
            prepared = self._checked(call)
            if isinstance(prepared, Outcome):
                outcomes[index] = prepared
            elif self.group_commit and prepared.spec.direct:
                shared.append((index, prepared))
            else:
                outcomes[index] = self._run_alone(prepared)
        if len(shared) == 1:
            index, prepared = shared[0]
            outcomes[index] = self._run_alone(prepared)
        elif shared:
            try:
                together = self._shared([prepared for _, prepared in shared])
                for (index, _), outcome in zip(shared, together, strict=True):
                    outcomes[index] = outcome
            except Exception as exc:
                if isinstance(exc, _FailedAfterChanges):
                    log.debug("%s; running the batch's requests one by one", exc)
                else:
                    log.warning("a shared transaction failed; running its requests one by one")
                for index, prepared in shared:
                    outcomes[index] = self._run_alone(prepared)
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(calls)
        return done

    def _shared(self, batch: list[_Prepared]) -> list[Outcome]:
        """The calls of a batch in one transaction (``handle_batch``).

        On SQLite the database-wide write lock makes it exactly the requests one after the
        other. On PostgreSQL (READ COMMITTED, row locks) the calls likewise see each other's
        changes in order, but the transaction holds every row a call locked until the batch
        commits: a batch that waits for a lock longer than ``SHARED_LOCK_TIMEOUT`` (a row the
        worker's tick holds, or another process's batch, which could otherwise wait for this
        one: a deadlock, detected only after a second) fails, and its calls run one by one.
        """
        outcomes = []
        # The calls of a batch mostly use the same access key: it is read once per transaction
        # (nothing on the request path writes access keys or the clock; on SQLite the
        # transaction holds the write lock, so a second read would find the same row; on
        # PostgreSQL a key revoked by another process while the batch runs, milliseconds,
        # counts as revoked after the batch, as if its calls had all come first).
        keys: KeyMemo = {}
        # The batch's replay-guard records go in one statement after its calls
        # (docs/performance.md); a signature seen before sends every call of the batch down the
        # one-by-one path, where ``replay.remember`` tells a replay from a duplicate.
        seen: list[tuple[int, int]] = []
        with self.direct.transaction(write=any(p.spec.write for p in batch)) as tx:
            callers: list[Caller | ApiError | None] = [None] * len(batch)
            if self._sqlite:
                # Rows inserted, updated or deleted on this connection so far, whatever ran
                # the statement (an UPDATE ... RETURNING included): unchanged means nothing to
                # undo. (A savepoint per call instead cost 4-6 µs of a ~75 µs call: SQLite
                # journals the first change of every page within a savepoint.)
                connection = tx.dbapi

                def changes() -> int:
                    return int(connection.total_changes)
            else:
                # The direct actions write only through ``tx`` (they have no SQLAlchemy
                # connection), which counts the statements that may change rows.
                tx.dbapi.execute(SHARED_LOCK_TIMEOUT)
                callers = self._prefetch(tx, batch, keys)

                def changes() -> int:
                    return tx.writes

            for prepared, known in zip(batch, callers, strict=True):
                before = changes()
                try:
                    outcome = self._respond(tx, None, prepared, keys, seen, known)
                except _Failed as failed:
                    if changes() != before:
                        raise _FailedAfterChanges(prepared.call) from None
                    outcome = error_outcome(
                        prepared.call.request_id, failed.error, failed.tenant_id
                    )
                outcomes.append(outcome)
            if seen and not replay.remember_all(tx, seen):
                raise _FailedAfterChanges(None)
        return outcomes

    def _prefetch(
        self, tx: Tx, batch: list[_Prepared], keys: KeyMemo
    ) -> list[Caller | ApiError | None]:
        """PostgreSQL: authenticate every call of the batch first (its access key is read once
        per transaction anyway), then load and lock, in one statement per action, the rows
        that the handlers of the authenticated calls will load (``ActionSpec.prefetch``): one
        round trip per batch instead of one per call. Returns each call's caller or error."""
        callers: list[Caller | ApiError | None] = []
        wanted: dict[Prefetch, list[tuple[str, Any]]] = {}
        for prepared in batch:
            try:
                caller = self._caller(tx, prepared.call, keys)
            except ApiError as error:
                callers.append(error)
                continue
            callers.append(caller)
            if prepared.spec.prefetch is not None:
                wanted.setdefault(prepared.spec.prefetch, []).append(
                    (caller.tenant_id, prepared.request)
                )
        for prefetch, calls in wanted.items():
            if len(calls) > 1:
                prefetch(tx, calls)
        return callers

    def _run_alone(self, prepared: _Prepared) -> Outcome:
        """One prepared call in its own transaction; an error becomes its envelope."""
        call = prepared.call
        try:
            return self._run(prepared)
        except _Failed as failed:
            return error_outcome(call.request_id, failed.error, failed.tenant_id)
        except Exception:
            return self._internal_error(call)

    def _internal_error(self, call: Call) -> Outcome:
        # The request id goes into the message itself so that any log format shows it.
        log.exception(
            "internal error in %s, request %s",
            call.action,
            call.request_id,
            extra={"request_id": call.request_id},
        )
        return error_outcome(call.request_id, InternalServerError())
