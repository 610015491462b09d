"""The docs site's generated pages (docs/reference/) are what `venue-operator docs --write`
writes now, from the code's tables and the CRD; the CRD reference follows whatever the CRD
holds."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from venue_operator.cli.main import build_parser
from venue_operator.cli.reference import COMMAND, crd_reference, pages, write_or_check
from venue_operator.model.crd import build_crd

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def at_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


@pytest.mark.usefixtures("at_the_root")
def test_committed_pages_are_generated_from_the_code() -> None:
    for path, text in pages().items():
        assert (REPO / path).exists(), f"{path} is missing: run {COMMAND}"
        assert (REPO / path).read_text() == text, f"{path} is stale: run {COMMAND}"


@pytest.mark.usefixtures("at_the_root")
def test_the_command_checks_and_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Not main(): it points structlog at this test's captured stdout, closed after it.
    assert build_parser().parse_args(["docs", "--write"]).write
    assert write_or_check(write=False) == 0  # the committed pages are current
    for path in pages():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("stale\n")
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "venueservices.ops.tickettoken.io.yaml").write_text(
        (REPO / "crds" / "venueservices.ops.tickettoken.io.yaml").read_text()
    )
    monkeypatch.chdir(tmp_path)
    assert write_or_check(write=False) == 1
    assert f"differs: run {COMMAND}" in capsys.readouterr().out
    assert write_or_check(write=True) == 0
    assert write_or_check(write=False) == 0


def test_every_field_of_the_crd_has_a_row() -> None:
    text = crd_reference(REPO / "crds" / "venueservices.ops.tickettoken.io.yaml")
    for row in ("| `spec.deployment.name` | string | yes |",
                "| `spec.remediation.cooldowns.rollback` | string |  | `\"10m\"` |",
                "| `spec.thresholds.errorRatePercent` | object |  | "
                "`{\"warning\": 1.0, \"critical\": 5.0}` |",
                "| `spec.remediation.mode` | string |  | `\"Auto\"` |",
                "one of `Auto`, `DryRun`, `Off`", "warning must be below critical",
                "| `status.checks[].name` |"):  # fmt: skip
        assert row in text


def test_the_crd_reference_follows_the_crd_it_reads(tmp_path: Path) -> None:
    """Another printer column or status field, as a change to the models would make them."""
    crd = copy.deepcopy(build_crd())
    version = crd["spec"]["versions"][0]
    version["additionalPrinterColumns"].append(
        {"name": "Paused", "type": "boolean", "jsonPath": ".status.paused"}
    )
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    status["properties"]["paused"] = {"type": "boolean", "description": "Held by annotation."}
    path = tmp_path / "crd.yaml"
    path.write_text(yaml.safe_dump(crd))
    text = crd_reference(path)
    assert "| Paused | boolean | `.status.paused` |" in text
    assert "| `status.paused` | boolean |  |  | Held by annotation. |  |" in text
