"""The README is a front door: short, and every link in it resolves inside the repository
(a clone's reader has nothing outside it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_at_most_200_lines() -> None:
    assert len(README.splitlines()) <= 200


def test_every_link_in_the_readme_resolves_inside_the_repository() -> None:
    links = LINK.findall(README)
    assert links
    broken = []
    for link in links:
        if link.startswith(("https://", "http://")):
            continue
        path = (ROOT / link.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(link)
    assert broken == []


def test_the_readme_names_no_path_outside_the_repository() -> None:
    assert "../" not in README
