"""The lock files in requirements/ (scripts/lock writes them), read: for tests/unit/test_lock.py
and the image test, which checks that the image holds what runtime.txt pins."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.utils import canonicalize_name

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})*)$")


def pins(lock: str) -> dict[str, str]:
    """`name==version` of each entry (names canonical); each must be exact and hashed."""
    text = re.sub(r"\s*\\\n", " ", (REQUIREMENTS / lock).read_text())
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match and match[3], f"{lock}: not an exact, hashed pin: {line[:80]}"
        found[canonicalize_name(match[1])] = match[2]
    return found
