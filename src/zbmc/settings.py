"""All configuration in one frozen object, read from ``ZBMC_*`` variables (and CLI flags) once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = "./zbmc-data"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1024 * 1024
    # Slow clients (zbmc.connections, docs/security.md): a request must arrive within this
    # long; each API process keeps at most this many connections; idle keep-alive connections
    # are closed after this long
    request_read_timeout_seconds: float = 10.0
    max_connections: int = 1000
    keep_alive_seconds: int = 5
    signature_window_seconds: int = 300
    # HMAC requests must list x-zc-action in SignedHeaders (the official SDKs do not: opt-in)
    require_signed_action: bool = False
    # A signed write is applied once per signature (zbmc.replay); off only for test rigs that
    # send identical writes within one second on purpose
    replay_guard: bool = True
    clock: str = "system"  # "system" or "simulated"
    worker_interval_seconds: float = 1.0
    driver: str = "noop"
    driver_delay_seconds: float = 0.0
    driver_command: str | None = None  # the program run by the "command" driver
    # host operations (create, power, reboot, reinstall): docs/drivers.md
    host_driver: str = "noop"
    host_delay_seconds: float = 0.0  # noop: how long an operation takes (0 = next tick)
    host_driver_command: str | None = None  # the program run by the "command" host driver
    host_timeout_seconds: float = 600.0  # command: how long one run may take
    # RECYCLE instances are released this long after they entered the recycle bin
    release_after_seconds: int = 86400
    # DescribeInstanceIpmiUrl's answer: {instanceId} and {zoneId} are filled in
    ipmi_url: str = "https://ipmi.{zoneId}.zbmc.invalid/console/{instanceId}"
    log_level: str = "info"
    log_format: str = "text"  # "text" or "json" (one JSON object per line)
    run_worker: bool = True  # background worker in each API process
    # On SQLite with in-process drivers, that worker's ticks may run on the event loop between
    # batches instead of in a thread (zbmc.worker.LoopWorker, docs/operations.md): more
    # throughput, but a long tick holds every request (opt-in)
    worker_on_loop: bool = False
    # Requests ready at the same moment share one commit (docs/performance.md), and
    # under concurrent load a batch waits up to this long for the requests on their way
    group_commit: bool = True
    group_commit_wait_seconds: float = 0.0005
    # PostgreSQL: threads per API process that run the batches of DescribeInstances pages, so
    # that their waits for the database overlap (zbmc.edge.Batcher); 0 runs them on the loop
    reader_threads: int = 2
    # Each instance's encoded DescribeInstances answer is kept per process up to this many MiB
    # (zbmc.services.bmc.fragments); 0 keeps none
    describe_cache_mb: float = 64.0
    rate_limit: str | None = None  # e.g. "20/s,burst=40"; None = no default limit
    rate_limit_actions: str | None = None  # e.g. "ModifyInstanceBandwidth=5/s"
    # Shares rate-limit buckets across processes; may carry a password, so not in repr.
    redis_url: str | None = field(default=None, repr=False)
    redis_prefix: str = "zbmc"
    # Enables /admin/v1/* when set; kept out of repr so it never reaches a log line.
    admin_token: str | None = field(default=None, repr=False)
    # HTTPS: the operator's certificate chain and key, or the development CA (zbmc.certificates)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_dev: bool = False

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'zbmc.sqlite3').resolve()}"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(f"ZBMC_{name}")
    return value if value not in (None, "") else None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment; unset variables keep their defaults."""
    env = os.environ if env is None else env
    base = Settings()
    data_dir = _get(env, "DATA_DIR")
    values: dict[str, Any] = {
        "data_dir": Path(data_dir) if data_dir else None,
        "database_url": _get(env, "DATABASE_URL"),
        "host": _get(env, "HOST"),
        "clock": _get(env, "CLOCK"),
        "driver": _get(env, "DRIVER"),
        "driver_command": _get(env, "DRIVER_COMMAND"),
        "host_driver": _get(env, "HOST_DRIVER"),
        "host_driver_command": _get(env, "HOST_DRIVER_COMMAND"),
        "ipmi_url": _get(env, "IPMI_URL"),
        "log_level": _get(env, "LOG_LEVEL"),
        "admin_token": _get(env, "ADMIN_TOKEN"),
        "log_format": _get(env, "LOG_FORMAT"),
        "rate_limit": _get(env, "RATE_LIMIT"),
        "rate_limit_actions": _get(env, "RATE_LIMIT_ACTIONS"),
        "redis_url": _get(env, "REDIS_URL"),
        "redis_prefix": _get(env, "REDIS_PREFIX"),
    }
    for name in ("TLS_CERT", "TLS_KEY"):
        path = _get(env, name)
        values[name.lower()] = Path(path) if path else None
    booleans = ("RUN_WORKER", "GROUP_COMMIT", "TLS_DEV", "REQUIRE_SIGNED_ACTION", "REPLAY_GUARD")
    for name in (*booleans, "WORKER_ON_LOOP"):
        flag = _get(env, name)
        if flag is not None:
            if flag.lower() not in ("0", "1", "true", "false", "yes", "no"):
                raise ValueError(f"ZBMC_{name} must be a boolean, got {flag!r}")
            values[name.lower()] = flag.lower() in ("1", "true", "yes")
    for name, kind in (
        ("PORT", int),
        ("MAX_BODY_BYTES", int),
        ("REQUEST_READ_TIMEOUT_SECONDS", float),
        ("MAX_CONNECTIONS", int),
        ("KEEP_ALIVE_SECONDS", int),
        ("SIGNATURE_WINDOW_SECONDS", int),
        ("WORKER_INTERVAL_SECONDS", float),
        ("DRIVER_DELAY_SECONDS", float),
        ("GROUP_COMMIT_WAIT_SECONDS", float),
        ("HOST_DELAY_SECONDS", float),
        ("HOST_TIMEOUT_SECONDS", float),
        ("RELEASE_AFTER_SECONDS", int),
        ("DESCRIBE_CACHE_MB", float),
        ("READER_THREADS", int),
    ):
        raw = _get(env, name)
        if raw is not None:
            try:
                values[name.lower()] = kind(raw)
            except ValueError as exc:
                raise ValueError(f"ZBMC_{name} must be a number, got {raw!r}") from exc
    settings = base.with_overrides(**values)
    if not 0 < settings.request_read_timeout_seconds <= 3600:
        raise ValueError("ZBMC_REQUEST_READ_TIMEOUT_SECONDS must be more than 0 and at most 3600")
    if not 1 <= settings.max_connections <= 1_000_000:
        raise ValueError("ZBMC_MAX_CONNECTIONS must be between 1 and 1000000")
    if not 1 <= settings.keep_alive_seconds <= 3600:
        raise ValueError("ZBMC_KEEP_ALIVE_SECONDS must be between 1 and 3600")
    if not 0 <= settings.group_commit_wait_seconds <= 0.1:
        raise ValueError("ZBMC_GROUP_COMMIT_WAIT_SECONDS must be between 0 and 0.1")
    if not 0 <= settings.reader_threads <= 32:
        raise ValueError("ZBMC_READER_THREADS must be between 0 and 32")
    if not 0 <= settings.describe_cache_mb <= 1024 * 1024:
        raise ValueError("ZBMC_DESCRIBE_CACHE_MB must be between 0 and 1048576")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ValueError("ZBMC_TLS_CERT and ZBMC_TLS_KEY go together: set both or neither")
    if settings.host_delay_seconds < 0 or settings.release_after_seconds < 0:
        raise ValueError("ZBMC_HOST_DELAY_SECONDS and ZBMC_RELEASE_AFTER_SECONDS must be >= 0")
    try:
        settings.ipmi_url.format(instanceId="1", zoneId="Z")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"ZBMC_IPMI_URL may use {{instanceId}} and {{zoneId}} only: {exc}"
        ) from None
    if settings.host_timeout_seconds <= 0:
        raise ValueError("ZBMC_HOST_TIMEOUT_SECONDS must be positive")
    if settings.clock not in ("system", "simulated"):
        raise ValueError(f"ZBMC_CLOCK must be 'system' or 'simulated', got {settings.clock!r}")
    if settings.log_format not in ("text", "json"):
        raise ValueError(f"ZBMC_LOG_FORMAT must be 'text' or 'json', got {settings.log_format!r}")
    return settings
