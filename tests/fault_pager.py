"""The operator with a pause in its page path, for crash tests: `python -m tests.fault_pager
WHERE SECONDS ARGS...` runs `venue-operator ARGS...` whose every page waits SECONDS
`before-send` (recorded Pending in status, not posted yet) or `after-send` (posted, its
result not yet written back): time for the test to SIGKILL it there. The production code
has no such hook: the test replaces the pager class the handlers make."""

from __future__ import annotations

import asyncio
import sys

from venue_operator.cli import handlers, main
from venue_operator.model.pages import Page
from venue_operator.model.spec import Notification
from venue_operator.paging.webhook import Pager


def paused_pager(where: str, seconds: float) -> type[Pager]:
    class PausedPager(Pager):
        async def _one(
            self, namespace: str, name: str, notification: Notification | None, page: Page
        ) -> str | None:
            if where == "before-send":
                await asyncio.sleep(seconds)
            error = await super()._one(namespace, name, notification, page)
            if where == "after-send":
                await asyncio.sleep(seconds)
            return error

    return PausedPager


if __name__ == "__main__":
    handlers.Pager = paused_pager(sys.argv[1], float(sys.argv[2]))  # type: ignore[misc]
    sys.exit(main.main(sys.argv[3:]))
