"""The rollout guard's clock for services between rollouts: one task for the whole process
looks, every guard interval, whether anything a guard tick would notice has moved
(loop/workload.py `guard_marker`: the spec's generation, the Deployment's template and
rollback mark, its ReplicaSets), and wakes only the loops of the services where it has.

Before, every loop woke itself every 2 s to look and mostly went back to sleep: at 1,250
services a replica, 625 timers and waits a second, ~8% of its CPU."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

Marker = Callable[[], object]


class GuardClock:
    def __init__(self) -> None:
        self._waiting: dict[asyncio.Future[None], tuple[Marker, object, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def moved(self, marker: Marker, seen: object, every: float) -> asyncio.Future[None]:
        """Done once `marker()` is no longer `seen`, looked at within `every` seconds (the
        clock looks at everyone at the shortest `every` asked). Cancel it to stop looking."""
        moved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[moved] = (marker, seen, every)
        moved.add_done_callback(self._forget)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._look())
        return moved

    def __len__(self) -> int:
        return len(self._waiting)

    def _forget(self, moved: asyncio.Future[None]) -> None:
        self._waiting.pop(moved, None)

    async def _look(self) -> None:
        while self._waiting:
            await asyncio.sleep(min(every for _, _, every in self._waiting.values()))
            for moved, (marker, seen, _) in list(self._waiting.items()):
                if moved.done():
                    continue
                try:
                    changed = marker() != seen
                except Exception:  # the tick itself will say what is wrong
                    changed = True
                if changed:
                    moved.set_result(None)
