"""Per-URL Prometheus clients are evicted: idle ones, and the least recently used."""

from __future__ import annotations

from venue_operator.observe.endpoints import Endpoints, Limits


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_idle_url_is_dropped_with_its_client() -> None:
    clock = Clock()
    endpoints = Endpoints(Limits(idle=60), clock)
    first = endpoints.get("http://a")
    clock.now = 61
    endpoints.get("http://b")
    assert set(endpoints.by_url) == {"http://b"}
    assert first.threads._shutdown, "its threads are shut down"


def test_a_url_in_use_is_kept_however_long_it_takes() -> None:
    clock = Clock()
    endpoints = Endpoints(Limits(idle=60), clock)
    endpoints.get("http://a").in_flight = 1  # a query still running
    clock.now = 3600
    endpoints.get("http://b")
    assert set(endpoints.by_url) == {"http://a", "http://b"}


def test_beyond_max_urls_the_least_recently_used_go() -> None:
    clock = Clock()
    endpoints = Endpoints(Limits(max_urls=2), clock)
    for url in ("http://a", "http://b", "http://a", "http://c", "http://d"):
        clock.now += 1
        endpoints.get(url)
    assert set(endpoints.by_url) == {"http://c", "http://d"}
    endpoints.close()
    assert endpoints.by_url == {}
