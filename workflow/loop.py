"""The loop shared by everything that claims rows (inbox worker, outbox dispatcher, timer scheduler):
run a batch; when there was nothing to do, wait for a wake-up or the idle interval; after a failure
(the batch rolled back) wait with jittered backoff and try again. It never dies but for cancellation."""
from __future__ import annotations

import asyncio
import logging
import random
from typing import Awaitable, Callable


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff (attempt counts from 1)."""
    return random.uniform(base / 2, min(cap, base * 2 ** (attempt - 1)))


async def claim_loop(run_once: Callable[[], Awaitable[int]], wake: asyncio.Event, idle: float,
                     log: logging.Logger, what: str) -> None:
    failures = 0
    while True:
        try:
            n = await run_once()
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception:
            failures += 1
            log.exception("%s failed; it is rolled back and will be retried", what)
            await asyncio.sleep(backoff_delay(failures, 0.5, 30))
            continue
        if n == 0:
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), idle)
            except asyncio.TimeoutError:
                pass
