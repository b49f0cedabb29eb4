"""The agents' admin endpoints: what a host must enforce, and what its kernel now has.

``POST /admin/v1/agent/state``  ``{"host": H}`` -> ``{"now": T, "instances": [desired, ...]}``
``POST /admin/v1/agent/report`` ``{"host": H, "applied": [...], "failed": [...]}``
-> ``{"enabled": n, "failed": m}``

Both live behind the admin token like the traffic endpoint the agent posts its samples to.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from zbmc.store import attachments

STATE_PATH = "/admin/v1/agent/state"
REPORT_PATH = "/admin/v1/agent/report"


class ReportError(ValueError):
    pass


def _host(body: dict[str, Any]) -> str:
    host = body.get("host")
    if not isinstance(host, str) or not host:
        raise ReportError("`host` (the agent's host name) is required")
    return host


def _items(body: dict[str, Any], key: str, fields: dict[str, type]) -> list[dict[str, Any]]:
    items = body.get(key, [])
    if not isinstance(items, list):
        raise ReportError(f"`{key}` must be a list")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ReportError(f"{key}[{index}] must be an object")
        for name, kind in fields.items():
            value = item.get(name)
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ReportError(f"{key}[{index}].{name} must be a {kind.__name__}")
    return items


def state(
    conn: Connection, now: int, body: dict[str, Any], _path: dict[str, str]
) -> dict[str, Any]:
    return {
        "now": now,
        "instances": [d.as_dict() for d in attachments.desired(conn, _host(body), now)],
    }


def report(
    conn: Connection, now: int, body: dict[str, Any], _path: dict[str, str]
) -> dict[str, Any]:
    host = _host(body)
    applied = _items(body, "applied", {"instanceId": str, "orderNumber": str, "mbps": int})
    failed = _items(body, "failed", {"instanceId": str, "orderNumber": str, "error": str})
    return {
        "enabled": attachments.confirm(conn, host, applied, now),
        "failed": attachments.record_failures(conn, host, failed, now),
    }
