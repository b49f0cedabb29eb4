"""The test harness: real databases, a real server process, the admin CLI and the official SDK.

Nothing of zbmc is mocked. A ``Stack`` is one database (SQLite file or a fresh PostgreSQL
database) with the schema and the demo catalogue, served by a ``zbmc serve`` subprocess.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from click.testing import CliRunner
from sqlalchemy import Engine

from zbmc.cli.main import main as cli_main
from zbmc.db.engine import create_db_engine
from zbmc.signature import sign

POSTGRES_ADMIN_URL = os.environ.get(
    "ZBMC_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)
V2022, V2026 = "2022-11-20", "2026-02-01"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), connect_timeout=3):
            return None
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {exc}".strip()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    """A fresh, empty database for one stack; PostgreSQL ones are dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'zbmc.sqlite3'}"
        return
    import psycopg

    name = f"zbmc_test_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Admin:
    """Runs ``zbmc admin ...`` in-process through click, exactly as a shell would."""

    def __init__(self, database_url: str) -> None:
        self.env = {"ZBMC_DATABASE_URL": database_url}

    def run(self, *args: str) -> str:
        result = CliRunner().invoke(
            cli_main, ["admin", *args], env=self.env, catch_exceptions=False
        )
        if result.exit_code != 0:
            raise AssertionError(f"zbmc admin {' '.join(args)} failed: {result.output}")
        return result.output

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json"), parse_float=Decimal)

    def fails(self, *args: str) -> str:
        result = CliRunner().invoke(cli_main, ["admin", *args], env=self.env)
        assert result.exit_code != 0, result.output
        return result.output

    def balance(self, tenant_id: str) -> Decimal:
        return Decimal(str(self.json("balance", tenant_id)["balance"]))

    def instance(self, tenant_id: str, **options: Any) -> str:
        defaults: dict[str, Any] = {
            "zone": "SEL-A",
            "type": "M6C",
            "instance-charge-type": "PREPAID",
            "internet-charge-type": "ByBandwidth",
            "bandwidth": 100,
        }
        defaults.update({k.replace("_", "-"): v for k, v in options.items()})
        args = ["instance", "create", "--tenant", tenant_id]
        for key, value in defaults.items():
            if value is True:  # a flag such as --charge
                args.append(f"--{key}")
            elif value is not False:
                args += [f"--{key}", str(value)]
        return str(self.json(*args)["instanceId"])


@dataclass
class Tenant:
    tenant_id: str
    access_key_id: str
    access_key_password: str
    stack: Stack

    def client(self, version: str = V2026) -> Any:
        return self.stack.client(self.access_key_id, self.access_key_password, version)

    def instance(self, **options: Any) -> str:
        return self.stack.admin.instance(self.tenant_id, **options)

    def balance(self) -> Decimal:
        return self.stack.admin.balance(self.tenant_id)

    def orders(self) -> list[dict[str, Any]]:
        return list(self.stack.admin.json("orders", self.tenant_id))

    def ledger(self) -> list[dict[str, Any]]:
        return list(self.stack.admin.json("ledger", self.tenant_id))


@dataclass
class Stack:
    backend: str
    database_url: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1  # API processes (`zbmc serve --workers N`)
    tls_ca: Path | None = None  # served over HTTPS, with a certificate this CA issued

    @property
    def scheme(self) -> str:
        return "http" if self.tls_ca is None else "https"

    @property
    def verify(self) -> str | bool:
        """What ``requests`` (and the SDK's ``certification``) trusts for this stack."""
        return True if self.tls_ca is None else str(self.tls_ca)

    @property
    def admin(self) -> Admin:
        return Admin(self.database_url)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}/api/v2/bmc"

    def engine(self) -> Engine:
        return create_db_engine(self.database_url)

    def start(self, log_path: Path, **env: str) -> None:
        self.log_path = log_path
        environment = {
            **os.environ,
            "ZBMC_DATABASE_URL": self.database_url,
            "ZBMC_WORKER_INTERVAL_SECONDS": "0.05",
            **self.env,
            **env,
        }
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "zbmc", "serve", "--port", str(self.port)]
                + (["--workers", str(self.workers)] if self.workers > 1 else []),
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {log_path.read_text()}")
            try:
                health = requests.get(
                    f"{self.scheme}://{self.host}/healthz", timeout=1, verify=self.verify
                )
                if health.status_code == 200:
                    return
            except OSError:  # not listening yet (or, with TLS, its CA not written yet)
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start: {log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def tenant(self, balance: str = "1000.00", name: str = "test") -> Tenant:
        data = self.admin.json("tenant", "create", "--name", name, "--balance", balance)
        return Tenant(data["tenantId"], data["accessKeyId"], data["accessKeyPassword"], self)

    def client(self, key_id: str, password: str, version: str = V2026) -> Any:
        from zenlayercloud.common.config import Config
        from zenlayercloud.common.credential import Credential

        module = "v20260201" if version == V2026 else "v20221120"
        bmc = __import__(f"zenlayercloud.bmc.{module}.bmc_client", fromlist=["BmcClient"])
        config = Config(
            scheme=self.scheme,
            domain=self.host,
            rate_limit_max_retries=0,
            certification=None if self.tls_ca is None else str(self.tls_ca),
        )
        return bmc.BmcClient(Credential(key_id, password), config)

    def token_client(self, token: str, version: str = V2026) -> Any:
        from zenlayercloud.common.config import Config
        from zenlayercloud.common.credential import TokenCredential

        module = "v20260201" if version == V2026 else "v20221120"
        bmc = __import__(f"zenlayercloud.bmc.{module}.bmc_client", fromlist=["BmcClient"])
        config = Config(
            scheme=self.scheme,
            domain=self.host,
            certification=None if self.tls_ca is None else str(self.tls_ca),
        )
        return bmc.BmcClient(TokenCredential(token), config)

    def raw(
        self,
        body: bytes | str | dict[str, Any],
        *,
        action: str | None = "DescribeZones",
        version: str | None = V2026,
        key: tuple[str, str] | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
        path: str = "/api/v2/bmc",
        method: str = "POST",
    ) -> requests.Response:
        """A hand-made request, signed like the SDK signs unless ``key`` is None."""
        sent, data = self.prepared(
            body, action=action, version=version, key=key, timestamp=timestamp, headers=headers
        )
        return requests.request(
            method,
            f"{self.scheme}://{self.host}{path}",
            data=data,
            headers=sent,
            timeout=30,
            verify=self.verify,
        )

    def prepared(
        self,
        body: bytes | str | dict[str, Any],
        *,
        action: str | None = "DescribeZones",
        version: str | None = V2026,
        key: tuple[str, str] | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body of ``raw``'s request."""
        if isinstance(body, dict):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        sent: dict[str, str] = {"Content-Type": "application/json", "Host": self.host}
        if action is not None:
            sent["X-ZC-Action"] = action
        if version is not None:
            sent["X-ZC-Version"] = version
        if key is not None:
            ts = str(int(time.time()) if timestamp is None else timestamp)
            signature = sign(key[1], sent["Content-Type"], sent["Host"], ts, data)
            sent["X-ZC-Timestamp"] = ts
            sent["X-ZC-Signature-Method"] = "ZC2-HMAC-SHA256"
            sent["Authorization"] = (
                f"ZC2-HMAC-SHA256 Credential={key[0]}, SignedHeaders=content-type;host, "
                f"Signature={signature}"
            )
        sent.update(headers or {})
        return sent, data


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns a truthy value (as SDK users poll Describe*)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value {value!r}")
        time.sleep(interval)


def next_second() -> None:
    """Wait for the wall clock's next second. Two identical signed write requests within one
    second carry the same signature, and the replay guard applies only the first
    (docs/security.md); a test that repeats a write on purpose waits for this in between."""
    start = int(time.time())
    wait_until(lambda: int(time.time()) > start, timeout=5, interval=0.01)
