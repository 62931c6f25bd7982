"""PostgreSQL and Redis for the benchmarks: the URLs from the environment, or throwaway loopback servers.

FLASHSALE_BENCH_POSTGRES_URL / FLASHSALE_BENCH_REDIS_URL win when set. Otherwise the Debian binaries
are started in a temporary directory on a free 127.0.0.1 port (PostgreSQL as the `postgres` user,
since initdb refuses root) and stopped, directory and all, when the context exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PG_URL_ENV = "FLASHSALE_BENCH_POSTGRES_URL"
REDIS_URL_ENV = "FLASHSALE_BENCH_REDIS_URL"

Starter = Callable[[Path], AbstractContextManager[str]]


@dataclass(frozen=True)
class Service:
    """A reachable server, or the reason it is not available."""

    url: str | None
    detail: str


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def psycopg_url(url: str) -> str:
    """Turn a SQLAlchemy URL (postgresql+psycopg://) into one libpq accepts."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _wait(predicate: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout_s:.0f} s")


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def _throwaway_redis(workdir: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    # The same durability the CI services use: AOF with a one-second fsync, no RDB snapshots.
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir), "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "everysec", "--logfile", str(workdir / "redis.log")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: _redis_answers(port), "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _pg_bin() -> Path:
    found = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")), key=lambda p: float(p.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    return found[-1]


def _as_postgres(*args: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True)


@contextlib.contextmanager
def _throwaway_postgres(workdir: Path) -> Iterator[str]:
    pg_bin, port = _pg_bin(), free_port()
    data, log = workdir / "data", workdir / "pg.log"
    shutil.chown(workdir, "postgres", "postgres")
    _as_postgres(str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    # Stock settings (fsync and synchronous_commit on): the baselines run as they would in production.
    options = f"-h 127.0.0.1 -p {port} -k {workdir} -c max_connections=200"
    _as_postgres(str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o", options, "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_postgres(str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")


@contextlib.contextmanager
def _service(env: str, start: Starter, label: str, wanted: bool) -> Iterator[Service]:
    if not wanted:
        yield Service(None, "not needed by the selected benchmarks")
        return
    if os.environ.get(env):
        yield Service(os.environ[env], f"from {env}")
        return
    workdir = Path(tempfile.mkdtemp(prefix=f"flashsale-bench-{label}-"))
    workdir.chmod(0o755)
    try:
        with contextlib.ExitStack() as stack:
            try:
                url = stack.enter_context(start(workdir))
            except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                yield Service(None, f"could not start {label}: {exc}")
                return
            yield Service(url, "throwaway server started by the bench on loopback")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def services(*, postgres: bool, redis: bool) -> Iterator[tuple[Service, Service]]:
    """Yield (postgres, redis) services for the run, stopping whatever this started on exit."""
    with (
        _service(PG_URL_ENV, _throwaway_postgres, "postgres", postgres) as pg,
        _service(REDIS_URL_ENV, _throwaway_redis, "redis", redis) as rds,
    ):
        yield replace(pg, url=pg.url and psycopg_url(pg.url)), rds
