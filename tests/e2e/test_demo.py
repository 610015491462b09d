"""The README's first quick-start command, as a user runs it (its own lab, end to end)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.cluster  # the demo starts a lab of its own
@pytest.mark.timeout(600)
def test_demo_remediates_a_bad_rollout_and_prints_the_trail() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "venue_lab.cli", "demo"],
        capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    trail = out[out.index("==> fault injected") :]
    for reason in ("ThresholdBreached", "RolledBack", "Recovered"):
        assert reason in trail
    assert "kubectl describe venueservice venue-service" in out and "Rolled Back Templates:" in out
    report = Path(out.split("==> post-mortem draft: ", 1)[1].split()[0])
    markdown = report.read_text()
    assert "## Timeline" in markdown and "rollback succeeded" in markdown
    assert "tenant-b" in markdown and (report.parent / "error_rate.png").is_file()
    timeline = out[out.index("==> timeline") :].splitlines()[1:]
    marks = [line.split("+")[0].strip() for line in timeline if "+" in line]
    assert marks == ["fault injected", "breach first observed", "breach confirmed",
                     "action (RolledBack)", "recovered"]  # fmt: skip
