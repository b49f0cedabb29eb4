"""Explicit action registration: ``@action("ModifyInstanceBandwidth", ...)`` on each handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from zbmc.wire import V2022, V2026, VERSIONS, WireModel

if TYPE_CHECKING:
    from zbmc.context import Context
    from zbmc.db.direct import Tx

Req = TypeVar("Req", bound=WireModel)
Resp = TypeVar("Resp", bound=WireModel)
Handler = Callable[["Context", Any], WireModel]
# Given the calls of a batch (caller's tenant id, validated request), loads and locks in one
# statement the rows their handlers will load (``Pipeline._shared``, PostgreSQL).
Prefetch = Callable[["Tx", list[tuple[str, Any]]], None]


@dataclass(frozen=True)
class ActionSpec:
    service: str
    name: str
    request: type[WireModel]
    response: type[WireModel]
    handler: Handler
    write: bool
    description: str
    # Runs on a DBAPI transaction without a SQLAlchemy connection (zbmc.db.direct): for the
    # actions whose cost is measured against a budget (docs/performance.md).
    direct: bool = False
    # The API versions that have this action (the SDK's clients differ: spec README §8);
    # another version answers 400 INVALID_ACTION, as for an unknown action.
    versions: tuple[str, ...] = VERSIONS
    # PostgreSQL group commit: what to load for the batch's calls of this action at once.
    prefetch: Prefetch | None = None
    # A read that spends much of its time waiting for PostgreSQL (a page of many objects): on
    # PostgreSQL its calls are batched apart and run in reader threads (``zbmc.edge.Batcher``).
    reader: bool = False


@dataclass(frozen=True)
class Service:
    """One ``/api/v2/{name}`` endpoint: its API versions and the one a request without
    ``X-ZC-Version`` gets."""

    name: str
    versions: tuple[str, ...]
    default_version: str


ZRM_V20251014 = "2025-10-14"
SERVICES: dict[str, Service] = {
    "bmc": Service("bmc", (V2022, V2026), V2022),  # spec Q4: no version means the older API
    "zrm": Service("zrm", (ZRM_V20251014,), ZRM_V20251014),  # the resource manager (tags)
}

ACTIONS: dict[tuple[str, str], ActionSpec] = {}


def action(
    name: str,
    *,
    request: type[Req],
    response: type[Resp],
    write: bool,
    direct: bool = False,
    service: str = "bmc",
    versions: tuple[str, ...] | None = None,  # None: every version of the service
    prefetch: Prefetch | None = None,
    reader: bool = False,
) -> Callable[[Callable[[Context, Req], Resp]], Callable[[Context, Req], Resp]]:
    def register(handler: Callable[[Context, Req], Resp]) -> Callable[[Context, Req], Resp]:
        key = (service, name)
        if key in ACTIONS:
            raise RuntimeError(f"action {service}/{name} registered twice")
        if reader and write:
            raise RuntimeError(f"action {service}/{name}: a reader does not write")
        ACTIONS[key] = ActionSpec(
            service,
            name,
            request,
            response,
            handler,
            write,
            (handler.__doc__ or "").strip(),
            direct,
            SERVICES[service].versions if versions is None else versions,
            prefetch,
            reader,
        )
        return handler

    return register


def load_actions() -> dict[tuple[str, str], ActionSpec]:
    """Import every service module (registering its actions) and return the registry."""
    import zbmc.services.bmc
    import zbmc.services.zrm  # noqa: F401

    return ACTIONS
