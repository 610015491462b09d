"""The lock files in requirements/ (scripts/lock, docs/dependencies.md) agree with the
pyproject files: each lock holds exactly its inputs and what they need, pinned within their
bounds, every pin hashed; the image's pins are the tests' pins; this virtualenv holds them."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.locks import pins

REPO = Path(__file__).resolve().parents[2]
LOCAL = {"venue-operator", "venue-lab"}  # installed from the tree, never pinned


def _toml(path: str) -> dict[str, object]:
    loaded: dict[str, object] = tomllib.loads((REPO / path).read_text())
    return loaded


def _project(path: str) -> dict[str, list[str]]:
    project = _toml(path)["project"]
    assert isinstance(project, dict)
    return project


def inputs(lock: str) -> list[Requirement]:
    """What scripts/lock resolves into `lock`, read from the pyproject files."""
    operator = _project("pyproject.toml")
    if lock == "runtime.txt":
        found = operator["dependencies"]
    elif lock == "build.txt":
        build = _toml("pyproject.toml")["build-system"]
        assert isinstance(build, dict)
        found = build["requires"]
    else:
        extras = operator["optional-dependencies"]
        assert isinstance(extras, dict)
        found = [*operator["dependencies"], *extras["dev"], *extras["bench"], *extras["report"],
                 *_project("lab/pyproject.toml")["dependencies"], "pip"]  # fmt: skip
    return [r for r in map(Requirement, found) if canonicalize_name(r.name) not in LOCAL]


def closure(roots: Iterable[Requirement]) -> set[str]:
    """The distributions `roots` need on this Python and platform (the lock's: 3.11, Linux),
    from the installed packages' metadata (test_the_virtualenv_holds_the_dev_lock makes that
    metadata the locked versions')."""
    extras: dict[str, set[str]] = {}
    todo = list(roots)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in extras and set(requirement.extras) <= extras[name]:
            continue
        wanted = extras.setdefault(name, set())
        wanted.update(requirement.extras)
        for line in _requires(name):
            dependency = Requirement(line)
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in ("", *wanted)):
                todo.append(dependency)
    return set(extras)


def _requires(name: str) -> list[str]:
    try:
        return metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        pytest.fail(f"{name} is not installed: run scripts/bootstrap")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


LOCKS = ("dev.txt", "runtime.txt", "build.txt")


@pytest.mark.parametrize("lock", LOCKS)
def test_each_input_is_pinned_within_its_bounds(lock: str) -> None:
    pinned = pins(lock)
    for requirement in inputs(lock):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not in requirements/{lock}: run scripts/lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"requirements/{lock} pins {name}=={pinned[name]}, outside {requirement}: "
            "run scripts/lock"
        )


@pytest.mark.parametrize("lock", LOCKS)
def test_each_lock_holds_what_its_inputs_need_and_nothing_else(lock: str) -> None:
    needed, pinned = closure(inputs(lock)), set(pins(lock))
    missing, unneeded = sorted(needed - pinned), sorted(pinned - needed)
    assert not missing, f"missing from requirements/{lock}: {missing}: run scripts/lock"
    assert not unneeded, f"nothing needs {unneeded} in requirements/{lock}: run scripts/lock"


@pytest.mark.parametrize("lock", ["runtime.txt", "build.txt"])
def test_the_image_installs_the_versions_the_tests_ran(lock: str) -> None:
    dev = pins("dev.txt")
    assert {name: dev.get(name) for name in pins(lock)} == pins(lock)


def test_the_virtualenv_holds_the_dev_lock() -> None:
    installed = {name: _version(name) for name in pins("dev.txt")}
    assert installed == pins("dev.txt"), "the .venv is not the lock's: run scripts/bootstrap"
