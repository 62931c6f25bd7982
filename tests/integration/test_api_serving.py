"""The factory uvicorn workers run: the same app, in a process whose collector is tuned for serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flashsale.heap import SALE_GC_THRESHOLDS

PROBE = """
import gc, json
from flashsale.api.main import serving_app_factory
app = serving_app_factory()
seen = {"routes": len(app.routes), "frozen": gc.get_freeze_count(), "thresholds": gc.get_threshold()}
print(json.dumps(seen))
app.state.platform.close()
"""


def test_a_serving_worker_freezes_its_start_up_objects_and_collects_young_ones_less_often(
    tmp_path: Path,
) -> None:
    # In its own process: the tuning is process-wide and must not leak into the test run.
    env = {**os.environ, "FLASHSALE_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["routes"] > 1 and seen["frozen"] > 0
    assert tuple(seen["thresholds"]) == SALE_GC_THRESHOLDS


SALE_HEAP_PROBE = """
import gc, json
from flashsale.heap import SALE_GC_THRESHOLDS, sale_heap
before = gc.get_threshold()
with sale_heap():
    inside = {"frozen": gc.get_freeze_count(), "thresholds": gc.get_threshold()}
after = {"thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count()}
print(json.dumps({"inside": inside, "before": before, "after": after}))
"""


def test_the_demos_heap_tuning_lasts_only_for_its_block() -> None:
    # The demo runs more than once in one process (tests): what it froze must be collectable after.
    done = subprocess.run([sys.executable, "-c", SALE_HEAP_PROBE], capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["inside"]["frozen"] > 0 and tuple(seen["inside"]["thresholds"]) == SALE_GC_THRESHOLDS
    assert seen["after"] == {"thresholds": seen["before"], "frozen": 0}
