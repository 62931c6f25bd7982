"""`flashsale demo` says where its review and its live board are, and `--serve` opens the board on
the demo's own data: the board's figures are the demo's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from flashsale.cli.main import app
from tests.integration.edge_server import SERVE
from tests.integration.servers import free_port

SMALL = ["--shoppers", "600", "--quota-scale", "0.06", "--seed", "7"]
START_TIMEOUT_S = 120.0  # the demo runs first, then the server starts


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
    return {**env, "FLASHSALE_DATA_DIR": str(data_dir), "COLUMNS": "200"}


def test_the_demo_prints_where_its_review_is_and_how_to_open_its_board(tmp_path: Path) -> None:
    runner = CliRunner(env=clean_env(tmp_path / "operator"))
    kept = tmp_path / "kept"

    with_data = runner.invoke(app, ["demo", *SMALL, "--data-dir", str(kept)])

    assert with_data.exit_code == 0, with_data.output
    assert f"FLASHSALE_DATA_DIR={kept} flashsale serve" in with_data.output
    assert "http://127.0.0.1:8000/board" in with_data.output
    review = tmp_path / "operator" / "reports" / "demo-seed-7" / "review.html"
    assert f"campaign review (KPIs, charts): {review}" in with_data.output and review.exists()


def test_demo_serve_opens_the_board_on_the_demos_own_numbers(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "demo.json"
    with out.open("wb") as stdout, (tmp_path / "demo.log").open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "demo", *SMALL, "--json", "--serve", "--port", str(port)],
            env=clean_env(tmp_path / "operator"),
            cwd=tmp_path,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        wait_until_listening(proc, port, tmp_path / "demo.log")
        report = json.loads(out.read_text(encoding="utf-8"))
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            board = http.get("/board/view").json()
            page = http.get("/board")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "live board: http://127.0.0.1" in (tmp_path / "demo.log").read_text(encoding="utf-8")

    assert report["ok"] and Path(report["review"]).exists()
    shown = {i["id"]: i for s in board["sessions"] for i in s["items"]}
    assert set(shown) == {i["item_id"] for i in report["items"]}
    for item in report["items"]:
        on_board = shown[item["item_id"]]
        assert (on_board["sold"], on_board["held"], on_board["available"]) == (
            item["sold"],
            item["held"],
            item["available"],
        )
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the demo exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the demo's server did not listen: {log.read_text(errors='replace')[-2000:]}")
