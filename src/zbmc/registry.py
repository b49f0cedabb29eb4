"""Explicit action registration: ``@action("ModifyInstanceBandwidth", ...)`` on each handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from zbmc.wire import VERSIONS, WireModel

if TYPE_CHECKING:
    from zbmc.context import Context

Req = TypeVar("Req", bound=WireModel)
Resp = TypeVar("Resp", bound=WireModel)
Handler = Callable[["Context", Any], WireModel]


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


ACTIONS: dict[tuple[str, str], ActionSpec] = {}


def action(
    name: str,
    *,
    request: type[Req],
    response: type[Resp],
    write: bool,
    direct: bool = False,
    service: str = "bmc",
    versions: tuple[str, ...] = VERSIONS,
) -> Callable[[Callable[[Context, Req], Resp]], Callable[[Context, Req], Resp]]:
    def register(handler: Callable[[Context, Req], Resp]) -> Callable[[Context, Req], Resp]:
        key = (service, name)
        if key in ACTIONS:
            raise RuntimeError(f"action {service}/{name} registered twice")
        ACTIONS[key] = ActionSpec(
            service,
            name,
            request,
            response,
            handler,
            write,
            (handler.__doc__ or "").strip(),
            direct,
            versions,
        )
        return handler

    return register


def load_actions() -> dict[tuple[str, str], ActionSpec]:
    """Import every service module (registering its actions) and return the registry."""
    import zbmc.services.bmc  # noqa: F401

    return ACTIONS
