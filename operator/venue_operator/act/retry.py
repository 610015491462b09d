"""Optimistic concurrency, once for every writer: read, plan, write with a resourceVersion
test; when someone else wrote in between, read again and re-plan instead of overwriting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from venue_operator.act import ActError
from venue_operator.kube import calls

T = TypeVar("T")
TRIES = 5  # a busy object (a Deployment mid-rollout) moves a few times a second at most


async def retry_conflicts(attempt: Callable[[], Awaitable[T]], doing: str = "",
                          tries: int = TRIES) -> T:  # fmt: skip
    """`attempt()` (read, plan, write), again while its write conflicts (`kube.is_conflict`:
    409, or a 422 from a failed resourceVersion test); ActError after `tries`. A read never
    answers either, so the whole attempt may run inside; any other error is raised as it is."""
    for _ in range(tries):
        try:
            return await attempt()
        except calls.ApiError as exc:
            if not calls.is_conflict(exc):
                raise
    raise ActError(f"gave up {doing + ' ' if doing else ''}after {tries} conflicting writes")
