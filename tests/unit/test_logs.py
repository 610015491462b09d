import logging
from collections.abc import Iterator

import pytest
import structlog

from venue_operator import logs


@pytest.fixture
def configured(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO)  # the root level kopf.configure() sets
    levels = {name: logging.getLogger(name).level for name in logs.QUIET_LOGGERS}
    logs.configure()
    yield
    structlog.reset_defaults()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("configured")
def test_liveness_probes_and_request_urls_are_not_logged() -> None:
    for name in ("aiohttp.access", "httpx", "kubernetes"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    assert logging.getLogger("aiohttp.access").isEnabledFor(logging.WARNING)
    assert logging.getLogger("kopf").isEnabledFor(logging.INFO)
