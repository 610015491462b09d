"""Redaction under fuzzing (#23): generated secrets, in every form they reach an error
message in (key=value, YAML, JSON, HTTP headers, URLs with userinfo or a query token, bare
JWTs, known key formats, webhook URLs), inside random text: none of the secret survives."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from venue_operator.tenancy.redact import one_line, redact

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# What a password holds: no space, and none of `&;,'"()<>[]{}` (which end a value written
# key=value, as in a query string or a list; quoted, anything goes but its quote)
PASSWORD = B64URL + "!#$%*+./:=?@^~"

tokens = st.text(B64URL, min_size=12, max_size=48)
passwords = st.text(PASSWORD, min_size=8, max_size=40)
quotable = st.text(PASSWORD + " &;,()<>[]{}", min_size=8, max_size=40).filter(str.strip)
segments = st.text(B64URL, min_size=8, max_size=60)
jwts = st.builds(lambda h, p, s: f"eyJ{h}.eyJ{p}.{s}", segments, segments, segments)
secret_keys = st.sampled_from([
    "password", "passwd", "pwd", "PGPASSWORD", "db_password", "token", "access_token",
    "refresh_token", "auth_token", "api_key", "apikey", "X-Api-Key", "client_secret",
    "secret", "secret_key", "private_key", "routing_key", "X-Amz-Signature", "sig",
    "credentials", "auth",
])  # fmt: skip
hosts = st.sampled_from(["db", "db.prod.svc:5432", "10.0.0.7", "cache:6379", "[::1]:3002"])
schemes = st.sampled_from(["postgres", "postgresql+psycopg", "redis", "rediss", "https", "amqp"])
users = st.text(B64URL, min_size=1, max_size=16)
auth_schemes = st.sampled_from(["Bearer", "bearer", "Token", "Basic", "Digest"])

Form = Callable[[str], str]  # the secret -> the text carrying it

forms: st.SearchStrategy[tuple[Form, str]] = st.one_of(
    # key=value: a query string, libpq, a log line
    st.tuples(secret_keys, passwords).map(lambda a: (lambda s: f"{a[0]}={s}", a[1])),
    st.tuples(secret_keys, tokens, hosts).map(
        lambda a: (lambda s: f"https://{a[2]}/cb?state=1&{a[0]}={s}&next=/", a[1])
    ),
    st.tuples(secret_keys, quotable).map(lambda a: (lambda s: f"{a[0]}='{s}'", a[1])),
    # YAML and HTTP headers, inline and starting a line
    st.tuples(secret_keys, passwords).map(lambda a: (lambda s: f"{a[0]}: {s}", a[1])),
    st.tuples(secret_keys, quotable).map(lambda a: (lambda s: f"\n  {a[0]}: {s}\n", a[1])),
    st.tuples(auth_schemes, tokens).map(lambda a: (lambda s: f"Authorization: {a[0]} {s}", a[1])),
    st.tuples(auth_schemes, jwts).map(lambda a: (lambda s: f"authorization={a[0]} {s}", a[1])),
    # JSON, compact or not
    st.tuples(secret_keys, quotable, st.booleans()).map(
        lambda a: (
            lambda s: json.dumps({"user": "app", a[0]: s}, separators=(",", ":") if a[2] else None),
            a[1],
        )
    ),
    # URLs and DSNs with userinfo, with a scheme or without
    st.tuples(schemes, users, passwords, hosts).map(
        lambda a: (lambda s: f"{a[0]}://{a[1]}:{s}@{a[3]}/x", a[2])
    ),
    st.tuples(users, passwords, hosts).map(lambda a: (lambda s: f"{a[0]}:{s}@{a[2]}", a[1])),
    # bare credentials
    jwts.map(lambda j: (lambda s: s, j)),
    tokens.map(lambda t: (lambda s: f"Bearer {s}", t)),
    st.tuples(st.sampled_from(["sk_live_", "rk_test_", "ghp_", "xoxb-", "glpat-"]), tokens).map(
        lambda a: (lambda s: f"{a[0]}{s}", a[1])
    ),
    tokens.map(lambda t: (lambda s: f"https://hooks.slack.com/services/T01/B02/{s}", t)),
)
# around it: anything, or the words of an error message, joined by what separates words
WORDS = [
    "error",
    "connecting to",
    "failed:",
    "HTTP 503",
    "retrying",
    "->",
    "at",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "=",
    "&",
    "?",
    "/",
    "'",
    '"',
    "user=app",
    "host=db",
    "ok",
]
around = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=4)), max_size=8).map(" ".join),
)
joints = st.sampled_from([" ", "\n", "\t", ", ", "; ", " (", ") ", "=", " - ", '"', " '"])
WINDOW = 8  # no 8 characters of a secret in a row may survive


def windows(secret: str) -> set[str]:
    return {secret[i : i + WINDOW] for i in range(max(1, len(secret) - WINDOW + 1))}


@settings(max_examples=300, deadline=timedelta(milliseconds=500), database=None)
@given(forms, around, around, joints, joints)
def test_no_generated_secret_survives_in_random_text(
    form: tuple[Form, str], before: str, after: str, left: str, right: str
) -> None:
    render, secret = form
    carried = render(secret)
    text = before + left + carried + right + after
    # the secret's pieces must not be in the text already (then they are not the secret's)
    context = before + left + render("\0") + right + after
    assume(not any(w in context for w in windows(secret)))
    redacted = redact(text)
    leaked = [w for w in windows(secret) if w in redacted]
    assert not leaked, f"{leaked} of {secret!r} survived: {redacted!r}"
    assert not any(w in one_line(text, 1000) for w in windows(secret))
