"""Shared fixtures: the real local lab (one per process: with pytest-xdist, one per worker) and
a fresh namespace per test. Every test that uses the lab is marked `cluster`, so
`-m "not cluster"` is the fast tier (`scripts/test --fast`)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.harness import (  # noqa: F401 - fixtures
    following_venue,
    fresh_namespace,
    make_venue,
    operator,
    receiver,
    simulator,
)
from venue_lab.session import Lab, lab
from venue_operator.cli import logs

pytest_plugins = ("pytester",)  # tests/unit/test_harness.py runs pytest-xdist on a module


# The longest lab tests (40-190 s each, bench/ci_timeline.py), started first so that no
# worker is left with one of them at the end while the others idle (xdist hands tests out
# in collection order).
LONGEST_FIRST = (
    "test_paging.py::test_a_receiver_down_for_two_minutes",
    "test_fleet_storm.py::",
    "test_outages.py::",
    "e2e/test_shards.py::test_shards_scale_out",  # tests/unit has a test_shards.py too
    "test_demo.py::",
    "test_chart_install.py::",
    "test_coexistence.py::",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `cluster` every test that needs the lab, directly or through another fixture;
    put the longest first, longest of all first (a stable sort: every worker collects the
    same order)."""
    for item in items:
        if "the_lab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)
    items.sort(key=lambda item: next(
        (rank for rank, long in enumerate(LONGEST_FIRST) if long in item.nodeid),
        len(LONGEST_FIRST),
    ))  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def operator_logging() -> None:
    """The operator's log set-up, in-process too: structlog's default renders each exception
    with rich, which takes seconds per traceback (two unit tests that log one each took 34
    and 38 s under the full tier's load; 2 ms with this)."""
    logs.configure()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """VENUE_TEST_TIMELINE=FILE: one line per test (worker, start, end, id), to see how the
    workers' time is spent (bench/ci_timeline.py reads it)."""
    path = os.environ.get("VENUE_TEST_TIMELINE")
    started = time.time()
    yield
    if path:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(path, "a") as out:
            out.write(f"{worker}\t{started:.2f}\t{time.time():.2f}\t{item.nodeid}\n")


@pytest.fixture(scope="session")
def the_lab() -> Iterator[Lab]:
    """One control plane + Prometheus for the whole run; torn down even on failure."""
    with lab() as running:
        yield running


@pytest.fixture
def namespace(the_lab: Lab) -> Iterator[str]:
    """In t-*: the namespaces the session's operator watches."""
    with fresh_namespace(the_lab, "t") as name:
        yield name


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failed lab test, attach the tail of each component's log to the report."""
    outcome = yield
    report = outcome.get_result()
    running = item.funcargs.get("the_lab") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(running, Lab):
        for name, tail in running.cluster.logs().items():
            report.sections.append((f"{name} log (tail)", tail))
        if running.prometheus.proc is not None:
            report.sections.append(("prometheus log (tail)", running.prometheus.proc.tail()))
        alertmanager = item.funcargs.get("alertmanager")
        if alertmanager is not None and hasattr(alertmanager, "tail"):
            report.sections.append(("alertmanager log (tail)", alertmanager.tail()))
        operator = item.funcargs.get("operator")
        if operator is not None and hasattr(operator, "log"):
            report.sections.append(("venue-operator log (tail)", operator.log()))
