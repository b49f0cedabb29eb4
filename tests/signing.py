"""The official SDK client, extended the way a user would: signing more headers than
``content-type;host``, or keeping a copy of each request it sends (as an eavesdropper on a
plain-HTTP connection would).

Everything but the one overridden method is the vendor's code: the request is built, sent and
answered by the SDK as usual.
"""

from __future__ import annotations

from typing import Any

import requests

from tests.harness import V2026, Stack, Tenant
from zbmc.signature import sign_headers

ACTION_SIGNED = ("content-type", "host", "x-zc-action", "x-zc-version")


def _client_class(version: str) -> Any:
    module = "v20260201" if version == V2026 else "v20221120"
    bmc = __import__(f"zenlayercloud.bmc.{module}.bmc_client", fromlist=["BmcClient"])
    return bmc.BmcClient


def signing_client(
    tenant: Tenant, version: str = V2026, names: tuple[str, ...] = ACTION_SIGNED
) -> Any:
    """An SDK client whose Authorization signs ``names`` (in that order) with the spec's
    canonical form: ``name:value`` lines, the names joined by ``;``."""
    from zenlayercloud.common.config import Config
    from zenlayercloud.common.credential import Credential

    base = _client_class(version)

    class SigningClient(base):  # type: ignore[misc,valid-type]
        def _build_zc2_authorization(self, req: Any) -> str:
            headers = {name.lower(): value for name, value in req.header.items()}
            signed = [(name, str(headers[name])) for name in names]
            timestamp = headers["x-zc-timestamp"]
            body = req.data.encode()
            signature = sign_headers(self.credential.access_key_password, signed, timestamp, body)
            return (
                f"ZC2-HMAC-SHA256 Credential={self.credential.access_key_id}, "
                f"SignedHeaders={';'.join(names)}, Signature={signature}"
            )

    config = Config(scheme="http", domain=tenant.stack.host, rate_limit_max_retries=0)
    return SigningClient(Credential(tenant.access_key_id, tenant.access_key_password), config)


class Captured:
    """The requests an SDK client sent: headers and body exactly as they went out."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []

    def last(self) -> tuple[dict[str, str], bytes]:
        return self.requests[-1]

    def resend(
        self, stack: Stack, index: int = -1, replace: dict[str, str] | None = None
    ) -> requests.Response:
        """Send a captured request again, byte for byte (``replace``: header values)."""
        headers, body = self.requests[index]
        lower = {name.lower(): name for name in headers}
        sent = dict(headers)
        for name, value in (replace or {}).items():
            sent[lower.get(name.lower(), name)] = value
        return requests.post(stack.url, data=body, headers=sent, timeout=30)


def capturing_client(
    tenant: Tenant,
    version: str = V2026,
    captured: Captured | None = None,
    names: tuple[str, ...] | None = None,
) -> tuple[Any, Captured]:
    """An SDK client (signing like the vendor's, or ``names``) that keeps what it sends."""
    seen = captured or Captured()
    base = type(signing_client(tenant, version, names)) if names else _client_class(version)
    from zenlayercloud.common.config import Config
    from zenlayercloud.common.credential import Credential

    class CapturingClient(base):  # type: ignore[misc,valid-type]
        def _send_request(self, req: Any) -> Any:
            headers = {str(k): str(v) for k, v in req.header.items()}
            seen.requests.append((headers, req.data.encode()))
            return super()._send_request(req)

    config = Config(scheme="http", domain=tenant.stack.host, rate_limit_max_retries=0)
    credential = Credential(tenant.access_key_id, tenant.access_key_password)
    return CapturingClient(credential, config), seen
