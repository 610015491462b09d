"""The lab tests' own helpers, where a silent mistake turns a wait into a timeout (the
evaluation counter is read from the operator's real metric, in its real exposition format)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest

from tests.conftest import LONGEST_FIRST
from tests.harness import evaluation_count
from venue_lab import processes
from venue_operator.record import telemetry


def test_evaluation_count_reads_the_operators_own_counter() -> None:
    for name, cycles in (("venue-service", 3), ("other", 7)):
        for _ in range(cycles):
            telemetry.evaluated("unit-harness", name, ())
    text = generate_latest().decode()
    assert evaluation_count(text, "unit-harness", "venue-service") == 3
    assert evaluation_count(text, "unit-harness", "other") == 7
    assert evaluation_count(text, "unit-harness-2", "venue-service") == 0


def test_free_ports_are_outside_the_ephemeral_range_and_per_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outgoing connections take ephemeral ports (from 32768): a port handed out there could be
    taken before its server binds it. Two xdist workers never share a port."""
    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    seen: dict[str, set[int]] = {}
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setattr(processes, "_next_port", [])
        seen[worker] = {processes.free_port() for _ in range(20)}
        assert len(seen[worker]) == 20
        assert all(p < low or p > high for p in seen[worker])
    assert not seen["gw0"] & seen["gw1"]


GROUPED_MODULE = """
import os, pytest
pytestmark = pytest.mark.xdist_group("one-worker")

@pytest.fixture(scope="module")
def built():
    with open(os.environ["SETUPS_LOG"], "a") as log:
        log.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\\n")

@pytest.mark.parametrize("case", range(8))
def test_grouped(built, case):
    pass
"""


def test_an_xdist_group_runs_on_one_worker_and_builds_its_module_fixtures_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester
) -> None:
    """The full tier pins modules with costly module fixtures (the hostile fleet, the
    packaging RBAC) to one worker with `--dist loadgroup`; a pytest and pytest-xdist pair
    that ignores the mark silently builds them on every worker."""
    log = tmp_path / "setups"
    monkeypatch.setenv("SETUPS_LOG", str(log))
    pytester.makepyfile(test_grouped=GROUPED_MODULE, test_other="def test_other(): pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup")
    result.assert_outcomes(passed=9)
    assert len(log.read_text().split()) == 1, log.read_text()


def test_each_test_put_first_still_exists() -> None:
    """A renamed long test would silently go back to its place in the collection (and to the
    end of some worker's share): every LONGEST_FIRST entry names a test file and a test."""
    tests = Path(__file__).resolve().parents[1]
    for entry in LONGEST_FIRST:
        file, _, test = entry.partition("::")
        found = list(tests.rglob(file))
        assert len(found) == 1, entry
        assert f"def {test}" in found[0].read_text(), entry


def test_a_long_wait_polls_less_and_less_often_up_to_half_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A minute-long wait polls about 125 times, not 600: the full tier is CPU-bound on two
    cores."""
    clock = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(processes.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(processes.time, "sleep", sleep)
    with pytest.raises(processes.LabError, match="timed out after 10s waiting for never"):
        processes.wait_until("never", lambda: False, 10)
    assert pauses[0] == 0.1 and pauses[1] == pytest.approx(0.15)
    assert max(pauses) == processes.SLOWEST_POLL and pauses[-1] == processes.SLOWEST_POLL
    assert len(pauses) < 30  # 100 at a steady tenth of a second
    polls = iter([False, False, True])
    processes.wait_until("soon", lambda: next(polls), 10, interval=1.0)
    assert pauses[-2:] == [1.0, 1.0]  # never faster than asked
