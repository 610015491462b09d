import logging

import pytest

from venue_operator import logs


def test_liveness_probes_and_request_urls_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # the root level kopf.configure() sets
    logs.configure()
    for name in ("aiohttp.access", "httpx", "kubernetes"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    assert logging.getLogger("aiohttp.access").isEnabledFor(logging.WARNING)
    assert logging.getLogger("kopf").isEnabledFor(logging.INFO)
