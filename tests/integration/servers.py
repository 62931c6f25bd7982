"""Servers a test owns: a redis-server it may kill and restart, a fresh PostgreSQL database, and
a proxy that can cut a server off (an outage as the client sees it)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from flashsale.config import Settings
from tests.services import POSTGRES_URL, REDIS_SERVER


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnRedis:
    """A redis-server process of one test, persisting writes to an AOF in `data_dir`."""

    def __init__(self, data_dir: Path, *, appendfsync: str = "always") -> None:
        self.data_dir = data_dir
        self.appendfsync = appendfsync
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        # "always" fsyncs every write, so what was acknowledged before a SIGKILL is on disk;
        # "everysec" (Redis' default) may lose the last second.
        options = ["--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", ""]
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir),
                *options,
            ],
            stdout=subprocess.DEVNULL,
        )
        with redis.Redis(port=self.port) as probe:
            for _ in range(200):
                try:
                    if probe.ping():
                        return
                except redis.ConnectionError:  # not listening yet, or still loading the AOF
                    time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not come up")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def shutdown_nosave(self) -> None:
        assert self.process is not None
        # Without retries: redis-py would otherwise retry the dropped connection for seconds.
        with redis.Redis(port=self.port, retry=Retry(NoBackoff(), 0)) as client:
            client.shutdown(nosave=True)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


def database_name(kind: str = "fs") -> str:
    """A fresh database name that says which pytest-xdist worker made it (`main` without xdist).

    The uuid alone keeps names apart; the worker in the name tells whose a left-over database was.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{kind}_{worker}_{uuid.uuid4().hex[:12]}"


@contextmanager
def fresh_postgres_database(template: str | None = None, *, name: str | None = None) -> Iterator[str]:
    """Create a database on the test server (a copy of `template` if given), yield its URL, drop it after."""
    assert POSTGRES_URL is not None
    name = name or database_name()
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        try:
            yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def scale_out_stack(
    tmp_path: Path, secrets: dict[str, str], *, appendfsync: str = "always"
) -> Iterator[tuple[OwnRedis, Settings]]:
    """A redis-server of the test's own (AOF under tmp_path/redis), a fresh PostgreSQL database, and the
    Settings of the scale-out engine on both (`secrets`: jwt_secret, admin_token, payment_secret)."""
    (tmp_path / "redis").mkdir()
    server = OwnRedis(tmp_path / "redis", appendfsync=appendfsync)
    server.start()
    try:
        with fresh_postgres_database() as db_url:
            yield (
                server,
                Settings(
                    data_dir=tmp_path,
                    database_url=db_url,
                    backend="redis",
                    redis_url=f"{server.url}?prefix=fs",
                    **secrets,
                ),
            )
    finally:
        server.stop()


class TcpOutage:
    """A TCP proxy in front of a server, whose `down()` is an outage as the client sees one.

    Down, every open connection is cut and new ones are refused (nothing listens on the port), as
    when PostgreSQL is stopped or the network to it fails; `up()` listens on the same port again.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    def up(self) -> None:
        """Listen (again); a no-op while up."""
        if self._listener is not None:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            cut, self._sockets = self._sockets, set()
        if listener is not None:
            listener.close()
        for sock in cut:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by down()
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # went down meanwhile
                    client.close()
                    server.close()
                    return
                self._sockets |= {client, server}
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
