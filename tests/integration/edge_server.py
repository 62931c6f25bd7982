"""A real `flashsale serve` process for edge tests, plus raw-socket helpers to talk to it badly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.servers import free_port

# `flashsale serve` exactly as the console script runs it (flashsale.cli.main has no __main__ block).
SERVE = "from flashsale.cli.main import app; app()"
SECRETS = {
    "FLASHSALE_JWT_SECRET": "edge-test-jwt-secret-0123456789abcdef",
    "FLASHSALE_ADMIN_TOKEN": "edge-test-admin-token",
    "FLASHSALE_PAYMENT_SECRET": "edge-test-payment-secret",
}
START_TIMEOUT_S = 60.0  # migrations and imports on a loaded 2-core machine


@dataclass(frozen=True)
class Served:
    port: int
    pid: int
    log: Path

    def connect(self, *, timeout_s: float = 10.0) -> socket.socket:
        """Open a TCP connection to the server; reads give up after `timeout_s`."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s)

    def rss_kib(self) -> int:
        """Return the server process's resident set size (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")


@contextmanager
def serving(data_dir: Path, *, workers: int = 1, **settings: str) -> Iterator[Served]:
    """Run `flashsale serve` on a free loopback port with FLASHSALE_<NAME>=value settings; stop it after."""
    port = free_port()
    env = {**os.environ, **SECRETS, "FLASHSALE_DATA_DIR": str(data_dir)}
    env.update({f"FLASHSALE_{name.upper()}": value for name, value in settings.items()})
    log = data_dir / "serve.log"
    cmd = [
        sys.executable,
        "-c",
        SERVE,
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=data_dir, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(proc, port, log)
        yield Served(port, proc.pid, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"flashsale serve exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            # uvicorn listens only once the app and its lifespan are up: a connection means ready.
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"flashsale serve did not listen: {log.read_text(errors='replace')[-2000:]}")


def read_until_closed(sock: socket.socket) -> bytes:
    """Read until the server closes the connection (EOF or reset); return what arrived before."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response with a Content-Length body; return status, headers and body."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete response head: {head!r}")
        head += chunk
    head, _, body = head.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (ln.partition(":") for ln in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of a response body")
        body += chunk
    return int(status_line.split()[1]), headers, body
