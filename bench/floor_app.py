"""The HTTP floor: a bare FastAPI POST with a Pydantic body, a lock and a counter, nothing else.

Served by the same uvicorn and worker count as the buy path, it is the most any FastAPI route can
do on this machine, so the buy path is reported as a fraction of it.
"""

from __future__ import annotations

import threading

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
_lock = threading.Lock()
_count = 0


class PurchaseIn(BaseModel):
    item_id: int
    quantity: int


@app.post("/purchases", status_code=201)
async def purchase(body: PurchaseIn) -> dict[str, int]:
    """Count the request under a lock, as the cheapest possible stand-in for a decision."""
    global _count
    with _lock:
        _count += 1
        return {"item_id": body.item_id, "n": _count}
