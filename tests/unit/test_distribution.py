"""What ships: the operator's wheel and image hold the operator only (the lab is its own
distribution, `venue-lab`), and the version is written once, in pyproject.toml."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from prometheus_client import generate_latest

import venue_operator
from venue_operator.cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]


def _project(pyproject: Path) -> dict[str, object]:
    project: dict[str, object] = tomllib.loads(pyproject.read_text())["project"]
    return project


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The operator's wheel, built as the Dockerfile builds it, from a copy of the tree (a
    build in place would leave build/ behind, and stale files there end up in later wheels)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache"))  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "--wheel-dir", str(tmp / "out"), str(source)],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    (built,) = (tmp / "out").glob("*.whl")
    return zipfile.ZipFile(built)


def test_wheel_holds_the_operator_and_not_the_lab(wheel: zipfile.ZipFile) -> None:
    top = {name.split("/")[0] for name in wheel.namelist()}
    assert top == {"venue_operator", f"venue_operator-{version('venue-operator')}.dist-info"}
    assert "venue_operator/cli/main.py" in wheel.namelist()
    assert not [name for name in wheel.namelist() if "venue_lab" in name]


def test_wheel_installs_only_the_venue_operator_command(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    scripts = wheel.read(entry_points).decode().split("[console_scripts]")[1]
    assert [line.split("=")[0].strip() for line in scripts.splitlines() if "=" in line] == [
        "venue-operator"
    ]


def test_operator_cli_has_no_lab_or_demo_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["crd"]).command == "crd"
    for command in ("lab", "demo"):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([command])
        assert exit_.value.code == 2
        assert f"invalid choice: '{command}'" in capsys.readouterr().err


def test_venue_lab_command_runs_the_lab_and_the_demo() -> None:
    scripts = _project(REPO / "lab" / "pyproject.toml")["scripts"]
    assert isinstance(scripts, dict)
    module, _, function = scripts["venue-lab"].partition(":")
    cli = importlib.import_module(module)
    assert callable(getattr(cli, function))
    parser = cli.build_parser()
    assert parser.parse_args(["lab"]).command == "lab"
    demo = parser.parse_args(["demo", "--scenario", "capacity", "--keep"])
    assert (demo.command, demo.scenario, demo.keep) == ("demo", "capacity", True)


def test_image_build_context_is_the_operator_only() -> None:
    """.dockerignore allows in exactly what the wheel needs and the locks the image installs
    from; the Dockerfile copies only that."""
    lines = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()]
    rules = [ln for ln in lines if ln and not ln.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule[1:] for rule in rules if rule.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "operator/", "requirements/runtime.txt",
                       "requirements/build.txt"}  # fmt: skip
    copied = re.findall(r"^COPY (?!--from)(.+?) \S+$", (REPO / "Dockerfile").read_text(), re.M)
    assert {src for line in copied for src in line.split()} == allowed


# --- one version --------------------------------------------------------------------------


def test_version_comes_from_the_package_metadata() -> None:
    written = _project(REPO / "pyproject.toml")["version"]
    assert version("venue-operator") == written, "installed metadata is stale: scripts/bootstrap"
    assert venue_operator.__version__ == written
    assert _project(REPO / "lab" / "pyproject.toml")["version"] == written  # released together
    exposed = generate_latest().decode()
    assert f'venue_operator_build_info{{version="{written}"}} 1.0' in exposed


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("manifests/deployment.yaml", r"image: venue-operator:(\S+)"),
        ("manifests/deployment.yaml", r"app\.kubernetes\.io/version: (\S+)"),
        ("Dockerfile", r"org\.opencontainers\.image\.version=\"([^\"]+)\""),
        ("Dockerfile", r"docker build -t venue-operator:(\S+) "),
        ("docs/getting-started.md", r"`venue-operator:([^`]+)`"),
    ],
)
def test_image_tags_and_labels_match_the_package_version(path: str, pattern: str) -> None:
    found = re.findall(pattern, (REPO / path).read_text())
    assert found, f"{pattern} not in {path}"
    assert set(found) == {version("venue-operator")}
