"""`flashsale demo --serve` says where its review is and opens the live board on the demo's own data:
the board's figures are the review's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.edge_server import SERVE
from tests.integration.servers import free_port

SMALL = ["--shoppers", "600", "--quota-scale", "0.06", "--seed", "7"]
START_TIMEOUT_S = 120.0  # the demo runs first, then the server starts


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
    return {**env, "FLASHSALE_DATA_DIR": str(data_dir), "COLUMNS": "200"}


def test_demo_serve_prints_its_review_and_opens_the_board_on_the_demos_own_numbers(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "demo.txt"
    with out.open("wb") as stdout, (tmp_path / "demo.log").open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "demo", *SMALL, "--serve", "--port", str(port)],
            env=clean_env(tmp_path / "operator"),
            cwd=tmp_path,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        wait_until_listening(proc, port, tmp_path / "demo.log")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            board = http.get("/board/view").json()
            page = http.get("/board")
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    printed = out.read_text(encoding="utf-8")
    review = tmp_path / "operator" / "reports" / "demo-seed-7"
    assert f"campaign review (KPIs, charts): {review / 'review.html'}" in printed
    assert f"live board of the demo's sale: http://127.0.0.1:{port}/board" in printed
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    # The board and the review show the same sale: every unit of every flash item, sold; of the
    # regular items (the basket shoppers'), what the paid checkouts took, nothing left held.
    (figures,) = json.loads((review / "review.json").read_text(encoding="utf-8"))
    reviewed = {i["item"]["id"]: i for s in figures["sessions"] for i in s["items"]}
    shown = {i["id"]: i for s in board["sessions"] for i in s["items"]}
    assert set(shown) == set(reviewed)
    regular = {item_id for item_id, i in reviewed.items() if i["item"]["regular"]}
    assert len(regular) == 2
    for item_id, item in shown.items():
        assert item["sold"] == reviewed[item_id]["kpis"]["units_sold"]
        if item_id in regular:
            assert 0 < item["sold"] < item["quota"] and item["held"] == 0
        else:
            assert item["sold"] == item["quota"]
            assert (item["held"], item["available"]) == (0, 0)


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
