"""Keep credentials out of logs, Events and status, and keep free text one short line."""

from __future__ import annotations

import re

# Up to the last "@" of the token: a password may itself hold "@" or "/" (DSNs rarely
# percent-encode), and over-redacting a rare "http://host/?mail=a@b" is the safe side.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^\s@'\"<>]*@)+")
# A parameter whose name contains a secret-looking word, in a query string or a libpq-style
# "password=... host=..." text; `sig` covers sig= and X-Amz-Signature=.
_SECRET_WORDS = r"token|key|secret|passw(?:or)?d|pwd|sig|auth|credential"
_KEY_VALUE = re.compile(
    rf"(?i)(?P<name>(?:^|(?<=[\s?&;,(\"']))[\w.-]*(?:{_SECRET_WORDS})[\w.-]*\s*=\s*)"
    r"[^\s&;,'\")]+"
)
_BEARER = re.compile(r"(?i)\b(?P<scheme>bearer|basic)\s+[\w.~+/=-]+")
_SPACE = re.compile(r"\s+")

ELLIPSIS = "…"


def redact(text: str) -> str:
    """Drop userinfo from URLs and DSNs, the values of secret-looking parameters and
    Authorization credentials, wherever they stand in `text`."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    text = _KEY_VALUE.sub(r"\g<name>***", text)
    return _BEARER.sub(r"\g<scheme> ***", text)


def one_line(text: str, limit: int) -> str:
    """`text` redacted, on one line, at most `limit` characters (cut marked with …)."""
    flat = _SPACE.sub(" ", redact(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - len(ELLIPSIS)] + ELLIPSIS
