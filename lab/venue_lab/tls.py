"""A self-signed certificate for the lab's https endpoints (openssl, as the lab's PKI)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def self_signed(directory: Path, name: str = "venue-service") -> tuple[Path, Path]:
    """(certificate, key) for `name`, valid a day: a pod's own certificate, which no client
    can verify against the pod's IP."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", f"/CN={name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
