"""The operator with a fault injected, for crash tests: `python -m tests.fault_operator
SECONDS ARGS...` runs `venue-operator ARGS...` whose every workload write first waits
SECONDS (time for the test to SIGKILL it between the write-ahead record and the write).
The production code has no such hook: the test replaces the writer it is given."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from venue_operator.act.writer import WorkloadWriter
from venue_operator.cli import handlers, main


def slow_writer(seconds: float) -> type[WorkloadWriter]:
    class SlowWriter(WorkloadWriter):
        def __getattribute__(self, name: str) -> Any:
            attr = super().__getattribute__(name)
            if name.startswith("_") or name in ("api", "migration_outcome"):
                return attr

            async def after_a_pause(*args: Any, **kwargs: Any) -> Any:
                await asyncio.sleep(seconds)
                return await attr(*args, **kwargs)

            return after_a_pause

    return SlowWriter


if __name__ == "__main__":
    handlers.WorkloadWriter = slow_writer(float(sys.argv[1]))  # type: ignore[misc]
    sys.exit(main.main(sys.argv[2:]))
