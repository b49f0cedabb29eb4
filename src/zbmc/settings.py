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
    signature_window_seconds: int = 300
    clock: str = "system"  # "system" or "simulated"
    worker_interval_seconds: float = 1.0
    driver: str = "noop"
    driver_delay_seconds: float = 0.0
    log_level: str = "info"
    # Enables /admin/v1/* when set; kept out of repr so it never reaches a log line.
    admin_token: str | None = field(default=None, repr=False)

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
        "log_level": _get(env, "LOG_LEVEL"),
        "admin_token": _get(env, "ADMIN_TOKEN"),
    }
    for name, kind in (
        ("PORT", int),
        ("MAX_BODY_BYTES", int),
        ("SIGNATURE_WINDOW_SECONDS", int),
        ("WORKER_INTERVAL_SECONDS", float),
        ("DRIVER_DELAY_SECONDS", float),
    ):
        raw = _get(env, name)
        if raw is not None:
            try:
                values[name.lower()] = kind(raw)
            except ValueError as exc:
                raise ValueError(f"ZBMC_{name} must be a number, got {raw!r}") from exc
    settings = base.with_overrides(**values)
    if settings.clock not in ("system", "simulated"):
        raise ValueError(f"ZBMC_CLOCK must be 'system' or 'simulated', got {settings.clock!r}")
    return settings
