"""Keep credentials out of logs, Events and status."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:token|key|secret|password|auth|sig)[^=&]*=)[^&\s]+")


def redact(text: str) -> str:
    """Drop user:password@ from URLs and the values of secret-looking query parameters."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    return _QUERY_SECRET.sub(r"\1***", text)
