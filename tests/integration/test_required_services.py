"""FLASHSALE_TEST_REQUIRE_SERVICES=1 fails a skipped service-marked test, on one process and on xdist workers.

Each case runs a small suite in a pytest subprocess with the project's plugin (tests/services.py) and
no Redis URL: its `redis` test is skipped, which must fail the run and be named in the summary, also
when a worker ran the test and the controller prints the summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SUITE = """
import pytest

@pytest.mark.redis
def test_needs_redis():
    pass

def test_needs_nothing():
    pass
"""


@pytest.mark.parametrize("workers", ["0", "2"], ids=["one-process", "two-workers"])
def test_a_skipped_redis_test_fails_the_run_and_is_named_in_the_summary(tmp_path: Path, workers: str) -> None:
    (tmp_path / "test_gate.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    redis: needs Redis\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASHSALE_", "PYTEST_"))}
    # Only xdist and the project's plugin: the other installed plugins (schemathesis…) are slow to load.
    env |= {
        "FLASHSALE_TEST_REQUIRE_SERVICES": "1",
        "PYTHONPATH": str(ROOT),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "xdist.plugin", "-p", "tests.services", "-n", workers],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 passed, 1 error" in out, out
    assert "this test is marked redis and must run" in out, out
    assert "1 test(s) needing Redis/PostgreSQL/chromium were skipped" in out, out
    assert "1 x FLASHSALE_TEST_REDIS_URL is not set" in out, out
