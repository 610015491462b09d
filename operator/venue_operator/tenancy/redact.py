"""Keep credentials out of logs, Events and status, and keep free text one short line.

`redact` drops, wherever it stands in the text:

- the userinfo of a URL or DSN, with a scheme or without (`postgres://app:pw@db`, `app:pw@db`);
- the value of a secret-looking key (a name holding token, key, secret, password, auth, ...)
  written `key=value`, `key: value` (YAML, an HTTP header) or `"key": "value"` (JSON), an
  auth scheme before it kept (`Authorization: Bearer ***`); a key that starts a line (a
  header, a YAML mapping) loses the rest of its line;
- credentials after `Bearer` or `Basic` anywhere, a bare JWT, a known key format (Stripe,
  GitHub, Slack, GitLab, Google) but its prefix, and the path of an incoming-webhook URL
  (Slack, Discord, Teams), which is its secret.

A value ends at a space (or, right after `=`, at `&;,` and closing brackets, as in a query
string or a list) unless quoted. Over-redacting a rare `signal: 9` is the safe side.

Every repetition is bounded or possessive, and a pattern starts only where a run of its own
characters starts (or within a bounded scheme), so the work stays linear in the text: it may
be a hostile body of a megabyte without a space, and an unbounded `[a-z][a-z0-9+.-]*://`
backtracked quadratically over such a body (minutes). 64 KiB of the worst input for each
pattern takes milliseconds (tests/unit/test_redact.py).
"""

from __future__ import annotations

import re

from venue_operator.model.wording import clipped

# Userinfo runs to the last "@" of the token: a password may itself hold "@" or "/" (DSNs
# rarely percent-encode), and over-redacting a rare "http://host/?mail=a@b" is the safe side.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]{0,63}://)(?:[^\s@'\"<>]{0,1024}@)+")
# Without a scheme: `user:password@host`, starting after a space or a delimiter, to the last
# "@" as above (never after "://": `http://***@host` is not taken again).
_BARE_USERINFO = re.compile(
    r"(?<![^\s\"'<>(\[{,;=|])[\w.~%!$*+-]{0,64}+:(?!//)(?:[^\s@\"'<>]{0,255}+@)++"
)
# `sig` covers sig= and X-Amz-Signature=.
_SECRET_WORDS = r"token|key|secret|passw(?:or)?d|pwd|sig|auth|credential|cookie"  # noqa: S105
_NAME = rf"[\w.-]{{0,64}}(?:{_SECRET_WORDS})[\w.-]{{0,64}}"
_SCHEME = r"(?P<scheme>(?:(?:bearer|basic|token|digest|bot)\s{1,8})*+)"
_QUOTED = r"\"(?:[^\"\\\n]|\\.)*+\"?|'[^'\n]*+'?"  # an unclosed quote runs to the line's end
# A "value" that is the next secret key (`token= password: x`, `Bearer (password=x`) is not
# taken: that key is ("==" is base64's padding, not a key's).
_NEXT_KEY = rf"[^\w\s]{{0,8}}{_NAME}[\"']?[ \t]{{0,8}}(?:=(?!=)|:[\s\"'])"
# `key: value` at the start of a line: a header or a YAML mapping, the rest of the line
_LINE = re.compile(
    rf"(?im)^(?P<name>[ \t]{{0,64}}(?:- )?[\"']?{_NAME}[\"']?[ \t]{{0,8}}:[ \t]{{1,8}})"
    rf"{_SCHEME}(?P<value>{_QUOTED}|[^\s\"'][^\r\n]*+)"
)
# elsewhere, on the key's line: `key=value`, `key: value` (a space or a quote after the
# colon: never the port of `http://auth-service:8080`) and JSON's `"key":"value"`
_KEY_VALUE = re.compile(
    rf"(?i)(?<![\w.-])(?P<name>{_NAME}"
    rf"(?:[\"'][ \t]{{0,8}}[=:]|[ \t]{{0,8}}=|[ \t]{{0,8}}:(?=[\s\"']))[ \t]{{0,8}})"
    rf"{_SCHEME}(?P<value>{_QUOTED}|(?!{_NEXT_KEY})"
    rf"(?:(?<==)[^\s&;,'\")\]}}]++|[^\s\"'{{\[]\S*+))"
)
# the credential runs to a space (or a list's comma): token68 is `[\w.~+/-]+=*`, and stopping
# at the first other character would leave the rest of a mangled one (`Bearer k='v'`) behind
_BEARER = re.compile(
    rf"(?i)\b(?P<scheme>bearer|basic)\s{{1,8}}"
    rf"(?![^\w\s]{{0,8}}(?:bearer|basic)\b|{_NEXT_KEY})[^\s<>,;]++"
)
_JWT = re.compile(r"(?<![\w-])eyJ[\w-]++\.[\w-]++\.[\w-]*+", re.ASCII)
_KNOWN_KEY = re.compile(
    r"(?<![\w-])(?P<prefix>(?:sk|rk)_(?:live|test)_|gh[pousr]_|github_pat_|xox[abposr]-|"
    r"xapp-|glpat-|AIza)[\w-]{8,}+",
    re.ASCII,
)
_WEBHOOK = re.compile(
    r"(?i)(?P<base>(?:hooks\.slack\.com/(?:services|workflows|triggers)|"
    r"discord(?:app)?\.com/api/webhooks|webhook\.office\.com/webhookb2|"
    r"outlook\.office\.com/webhook)/)[^\s\"'<>?#]++"
)
_SPACE = re.compile(r"\s+")

MAX_INPUT = 64 * 1024  # one_line keeps far less; this only bounds the work of redacting
HIDDEN = "***"


def _hide_value(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "\"'" else ""
    closed = quote if quote and len(value) > 1 and value.endswith(quote) else ""
    return f"{match['name']}{match['scheme'] or ''}{quote}{HIDDEN}{closed}"


def redact(text: str) -> str:
    """`text` without URL userinfo, secret-looking values, Authorization credentials, JWTs,
    known key formats and webhook paths (see the module's docstring)."""
    # first what a secret's own shape gives away, then values by their keys: a key's value
    # may run over the next word (`password= Bearer x`), which must be hidden already
    text = _WEBHOOK.sub(rf"\g<base>{HIDDEN}", text)
    text = _USERINFO.sub(rf"\g<scheme>{HIDDEN}@", text)
    text = _BARE_USERINFO.sub(f"{HIDDEN}@", text)
    text = _BEARER.sub(rf"\g<scheme> {HIDDEN}", text)
    text = _JWT.sub(HIDDEN, text)
    text = _KNOWN_KEY.sub(rf"\g<prefix>{HIDDEN}", text)
    text = _LINE.sub(_hide_value, text)
    return _KEY_VALUE.sub(_hide_value, text)


def one_line(text: str, limit: int) -> str:
    """`text` redacted, on one line, at most `limit` characters (cut at a word, marked with
    …)."""
    return clipped(_SPACE.sub(" ", redact(text[:MAX_INPUT])).strip(), limit)


# A /health/full check name reaches status and Events: kept only when it reads as a name.
# Words (lower, Capitalised or camelCase, or an acronym of up to 4 capitals), each with at
# most 3 digits after it, joined by `_.-`; no secret word, no known key prefix.
MAX_CHECK_NAME = 40
_WORD = r"(?:[A-Z]{1,4}|[A-Z]?[a-z]+(?:[A-Z][a-z]+)*)[0-9]{0,3}"
_CHECK_NAME = re.compile(rf"{_WORD}(?:[_.-]{_WORD})*", re.ASCII)
_SECRET_NAME = re.compile(
    r"(?i)secret|token|passw|pwd|credential|private|api[_.-]?key|bearer|"
    r"(?:sk|rk)_(?:live|test)|gh[pousr]_|github_pat|xox[abposr]|glpat"
)


def safe_check_name(name: object, fallback: str) -> str:
    """`name` when it reads as a check's name (see above), else `fallback`."""
    text = name if isinstance(name, str) else ""
    reads = len(text) <= MAX_CHECK_NAME and _CHECK_NAME.fullmatch(text)
    return text if reads and not _SECRET_NAME.search(text) else fallback
