"""structlog set-up: key=value lines for people, JSON for log pipelines."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

# httpx logs every request URL at INFO: noise for probes, and a webhook URL carries a token.
# aiohttp.access (Kopf's liveness endpoint is an aiohttp server) would log every kubelet
# liveness probe of /healthz: 8,640 lines a day.
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "kubernetes", "aiohttp.access")


class RepeatFilter:
    """Drops a warning identical to one logged less than `window` seconds ago; the next one
    let through says how many were dropped (`repeated=N`). While Prometheus is down every
    cycle of every service would otherwise log the same line (12 a second for two)."""

    LEVELS = frozenset({"warning", "warn", "error", "exception", "critical"})
    MAX_KEYS = 10_000

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.window, self.clock = window, clock
        self._seen: dict[str, list[float]] = {}  # line -> [last let through, dropped since]

    def __call__(
        self, _: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if method not in self.LEVELS:
            return event
        key = repr(sorted((k, str(v)) for k, v in event.items() if k != "timestamp"))
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            raise structlog.DropEvent
        if seen is not None and seen[1]:
            event["repeated"] = int(seen[1])
        if len(self._seen) >= self.MAX_KEYS:
            self._seen.clear()
        self._seen[key] = [now, 0]
        return event


def configure(json: bool = False, level: int = logging.INFO) -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            RepeatFilter(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # tracebacks into the line, not lost
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
