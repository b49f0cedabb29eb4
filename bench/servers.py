"""The processes under test: the ceiling app, ``zbmc serve`` (with its databases) and moto."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
POSTGRES_ADMIN_URL = os.environ.get(
    "ZBMC_BENCH_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    """A fresh, empty database; PostgreSQL ones are dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'bench-{secrets.token_hex(4)}.sqlite3'}"
        return
    import psycopg

    name = f"zbmc_bench_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def zbmc(
    database_url: str,
    *args: str,
    timeout: float | None = None,
    extra_env: dict[str, str] | None = None,
) -> str:
    """Run the ``zbmc`` command line as an operator would; return its output. ``extra_env``
    (e.g. ``PYTHONPATH`` of another checkout) runs another version's command line."""
    env = {
        **os.environ,
        "ZBMC_DATABASE_URL": database_url,
        "ZBMC_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "zbmc", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"zbmc {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def zbmc_json(database_url: str, *args: str, extra_env: dict[str, str] | None = None) -> Any:
    return json.loads(zbmc(database_url, *args, "--json", extra_env=extra_env))


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    # `zbmc worker` beside an API process started with --no-worker (zbmc_serve)
    worker: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        for process in (self.process, self.worker):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _start(name: str, command: list[str], port: int, log: Path, env: dict[str, str]) -> Server:
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(name, port, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{name} did not start: {log.read_text()[-3000:]}")


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


def ceiling(workdir: Path) -> Server:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(BENCH_DIR),
        "ceiling:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return _start("ceiling", command, port, workdir / "ceiling.log", {})


# The server's worker tick in the benchmarks: short enough that a pass of the Modify pool
# never finds an instance still Processing (bench/README.md).
WORKER_INTERVAL = 0.05


def zbmc_serve(
    workdir: Path,
    database_url: str,
    worker_interval: float = WORKER_INTERVAL,
    extra: dict[str, str] | None = None,
    *,
    worker_process: bool = False,
) -> Server:
    """One API process. Its worker is a thread of it, or with ``worker_process`` the layout
    of docs/operations.md: the API process with --no-worker and one `zbmc worker` process."""
    port = free_port()
    env = {
        "ZBMC_DATABASE_URL": database_url,
        "ZBMC_LOG_LEVEL": "warning",
        "ZBMC_WORKER_INTERVAL_SECONDS": str(worker_interval),
        **(extra or {}),
    }
    command = [sys.executable, "-m", "zbmc", "serve", "--port", str(port)]
    if worker_process:
        command.append("--no-worker")
    server = _start("zbmc", command, port, workdir / "zbmc.log", env)
    if worker_process:
        with (workdir / "zbmc-worker.log").open("ab") as out:
            server.worker = subprocess.Popen(
                [sys.executable, "-m", "zbmc", "worker"],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    _wait_healthy(server)
    return server


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{server.host}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"zbmc is not healthy: {server.log.read_text()[-3000:]}")


def moto(workdir: Path) -> Server:
    port = free_port()
    command = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1"]
    command += ["-p", str(port)]
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return _start("moto", command, port, workdir / "moto.log", env)
