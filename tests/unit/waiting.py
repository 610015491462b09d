"""Polling with a deadline, for the unit tests that run real tasks and threads (shared; not a
test module): a condition is awaited, never a guessed sleep."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def eventually(
    what: str, probe: Callable[[], object | Awaitable[object]], within: float = 5.0
) -> None:
    """Until `probe()` (awaited if it is a coroutine) is true; AssertionError naming `what`
    after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = probe()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(0.01)
