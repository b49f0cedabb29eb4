"""The agent's side of the admin endpoints (stdlib HTTP: the agent needs nothing more)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from zbmc.agent import protocol

TRAFFIC_PATH = "/admin/v1/traffic"


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class AdminClient:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                data = json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                message = str(json.loads(text).get("message", text))
            except ValueError:
                message = text
            raise ApiError(exc.code, message) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ApiError(0, f"{self.base_url}: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(0, "the answer is not a JSON object")
        return data

    def state(self, host: str) -> dict[str, Any]:
        return self.post(protocol.STATE_PATH, {"host": host})

    def report(
        self, host: str, applied: list[dict[str, Any]], failed: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return self.post(protocol.REPORT_PATH, {"host": host, "applied": applied, "failed": failed})

    def samples(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return self.post(TRAFFIC_PATH, {"samples": samples})
