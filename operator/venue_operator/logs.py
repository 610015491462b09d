"""structlog set-up: key=value lines for people, JSON for log pipelines."""

from __future__ import annotations

import logging
import sys

import structlog

# httpx logs every request URL at INFO: noise for probes, and a webhook URL carries a token.
# aiohttp.access would log every kubelet liveness probe of /healthz: 8,640 lines a day.
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "kubernetes", "aiohttp.access")


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
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # tracebacks into the line, not lost
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
