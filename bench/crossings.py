"""How far one rollback decision travels: the module crossings from the per-service loop
handing the decision to the remediator (`carry_out`) until it returns, and up to the call
of the workload writer's `roll_back` (the Deployment write).

Drives the unit tests' World (tests/unit/test_service_loop.py: the real loop, remediator,
pure core and ledger, stand-ins for the cluster) through a bad rollout, traces every call
and return inside `venue_operator` during the cycle that rolls back, and prints:
  crossings  - changes of module along the trace (calls and returns), in all and up to the
               Deployment write
  up         - of those, returns into a module the trace had already left (reading back up)
  modules    - the distinct modules visited
Run from the repository root: `.venv/bin/python bench/crossings.py` (add `-v` for the path).
"""

from __future__ import annotations

import asyncio
import sys
from types import FrameType
from typing import Any

sys.path.insert(0, ".")

from tests.unit import test_service_loop as t

PKG = "venue_operator."


def module_of(frame: FrameType | None) -> str | None:
    name = frame.f_globals.get("__name__", "") if frame else ""
    return name[len(PKG) :] if name.startswith(PKG) else None


class Trace:
    def __init__(self) -> None:
        self.path: list[tuple[str, str, str]] = []  # (event, module, function)
        self.on = False
        self.done = False
        self.write_at: int | None = None  # len(path) when roll_back was called

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if self.done or event not in ("call", "return"):
            return
        here, caller = module_of(frame), module_of(frame.f_back)
        fn = frame.f_code.co_name
        from_tests = frame.f_globals["__name__"].startswith("tests")
        if event == "call" and fn == "roll_back" and from_tests:
            if self.on and self.write_at is None:
                self.write_at = len(self.path)
            return
        if fn == "carry_out" and caller and "service_loop" in caller:
            if event == "return" and self.on:
                self.done = self.write_at is not None
                self.on = self.done or False
                if self.done:
                    self.path.append(("return", caller, fn))
                    return
            self.on = event == "call"
        if not self.on or here is None:
            return
        if event == "call":
            self.path.append(("call", here, fn))
        elif caller is not None:
            self.path.append(("return", caller, fn))


def count(path: list[tuple[str, str, str]]) -> tuple[int, int, list[str]]:
    crossings = up = 0
    seen: list[str] = []
    previous: str | None = None
    for event, module, _ in path:
        if previous is not None and module != previous:
            crossings += 1
            if event == "return" and module in seen:
                up += 1
        if module not in seen:
            seen.append(module)
        previous = module
    return crossings, up, seen


async def main(verbose: bool) -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    world = t.World()
    loop = await t.healthy_with_known_good(world)
    await t.bad_rollout(world, loop)
    for _ in range(10):
        trace = Trace()
        sys.setprofile(trace)
        try:
            await world.cycles(loop, 1)
        finally:
            sys.setprofile(None)
        if trace.done:
            break
    else:
        raise SystemExit("no rollback in 10 cycles")
    crossings, up, seen = count(trace.path)
    to_write, up_to_write, _ = count(trace.path[: trace.write_at])
    if verbose:
        previous = None
        for event, module, fn in trace.path:
            if module != previous:
                print(f"  {event:6} {module}.{fn}")
            previous = module
    print(f"to the Deployment write: crossings {to_write}, up {up_to_write}")
    print(f"whole decision: crossings {crossings}, up {up}; modules {len(seen)}: {' '.join(seen)}")


if __name__ == "__main__":
    asyncio.run(main("-v" in sys.argv))
