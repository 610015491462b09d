"""The package's house rules, checked: capability folders a newcomer can find their way in.

No module over the size a reader takes in at once, no two modules whose names differ only
by folder, no folder over about a dozen modules, and the README's layout table names every
folder with a file that exists."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "venue_operator"
MAX_LINES = 400
MAX_MODULES = 12


def modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")]


def folders() -> list[Path]:
    return sorted(p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def test_no_module_is_over_the_line_limit() -> None:
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in modules()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_no_two_modules_differ_only_by_folder() -> None:
    names = Counter(p.stem for p in modules())
    assert {name: n for name, n in names.items() if n > 1} == {}


def test_every_module_lives_in_a_capability_folder_of_at_most_a_dozen() -> None:
    assert [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"] == []
    counts = {f.name: len([p for p in f.glob("*.py") if p.name != "__init__.py"])
              for f in folders()}  # fmt: skip
    assert {name: n for name, n in counts.items() if n > MAX_MODULES} == {}


def test_the_readme_layout_table_names_every_folder_and_a_file_that_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)/` \| [^|]+ \| `([\w.]+)` \|$", section, re.MULTILINE)
    assert sorted(folder for folder, _ in rows) == sorted(f.name for f in folders())
    missing = [
        f"{folder}/{first}" for folder, first in rows if not (PACKAGE / folder / first).exists()
    ]
    assert missing == []
