"""Keep credentials out of logs, Events and status, and keep free text one short line."""

from __future__ import annotations

import re

# Every repetition is bounded: the text may be a hostile body of a megabyte without a space,
# and an unbounded `[a-z][a-z0-9+.-]*://` backtracks quadratically over it (minutes).
# Userinfo runs to the last "@" of the token: a password may itself hold "@" or "/" (DSNs
# rarely percent-encode), and over-redacting a rare "http://host/?mail=a@b" is the safe side.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]{0,63}://)(?:[^\s@'\"<>]{0,1024}@)+")
# A parameter whose name contains a secret-looking word, in a query string or a libpq-style
# "password=... host=..." text; `sig` covers sig= and X-Amz-Signature=.
_SECRET_NAMES = r"token|key|secret|passw(?:or)?d|pwd|sig|auth|credential"  # noqa: S105
_NAME = rf"[\w.-]{{0,64}}(?:{_SECRET_NAMES})[\w.-]{{0,64}}"
_KEY_VALUE = re.compile(
    rf"(?i)(?P<name>(?:^|(?<=[\s?&;,(\"'])){_NAME}\s{{0,8}}=\s{{0,8}})[^\s&;,'\")]+"
)
_BEARER = re.compile(r"(?i)\b(?P<scheme>bearer|basic)\s{1,8}[\w.~+/=-]+")
_SPACE = re.compile(r"\s+")

ELLIPSIS = "…"
MAX_INPUT = 64 * 1024  # one_line keeps far less; this only bounds the work of redacting


def redact(text: str) -> str:
    """Drop userinfo from URLs and DSNs, the values of secret-looking parameters and
    Authorization credentials, wherever they stand in `text`."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    text = _KEY_VALUE.sub(r"\g<name>***", text)
    return _BEARER.sub(r"\g<scheme> ***", text)


def one_line(text: str, limit: int) -> str:
    """`text` redacted, on one line, at most `limit` characters (cut marked with …)."""
    flat = _SPACE.sub(" ", redact(text[:MAX_INPUT])).strip()
    return flat if len(flat) <= limit else flat[: limit - len(ELLIPSIS)] + ELLIPSIS
