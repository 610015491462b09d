import contextlib
import logging
from collections.abc import Iterator

import pytest
import structlog

from venue_operator.cli import logs


@pytest.fixture
def configured(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO)  # the root level kopf.configure() sets
    levels = {name: logging.getLogger(name).level for name in logs.QUIET_LOGGERS}
    logs.configure()
    yield
    logs.configure()  # as tests/conftest.py left it for every other test
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("configured")
def test_liveness_probes_and_request_urls_are_not_logged() -> None:
    for name in ("aiohttp.access", "httpx", "kubernetes"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    assert logging.getLogger("aiohttp.access").isEnabledFor(logging.WARNING)
    assert logging.getLogger("kopf").isEnabledFor(logging.INFO)


def test_repeated_warnings_are_said_once_per_window() -> None:
    """#10 case 9: the same warning every cycle is one line a minute, with a count."""
    now = [0.0]
    limit = logs.RepeatFilter(window=60, clock=lambda: now[0])
    kept = []
    for second in range(0, 150, 1):
        now[0] = float(second)
        for service in ("a", "b"):
            line = {"event": "prometheus.query_failed", "reason": "refused", "name": service}
            with contextlib.suppress(structlog.DropEvent):
                kept.append(limit(None, "warning", line))
    assert [(e["name"], e.get("repeated")) for e in kept] == [
        ("a", None),
        ("b", None),
        ("a", 59),
        ("b", 59),
        ("a", 59),
        ("b", 59),
    ]
    assert limit(None, "info", {"event": "x"}) == {"event": "x"}  # info is never limited
