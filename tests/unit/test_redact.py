"""Redaction: credentials never survive into anything stored or shown."""

from __future__ import annotations

import time

import pytest

from venue_operator.tenancy.redact import one_line, redact

SECRET = "s3cr3t"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # userinfo in any URL, including ones an HTTP client rejects (port 99999)
        ("InvalidURL: http://user:s3cr3t@host:99999/", "InvalidURL: http://***@host:99999/"),
        ("https://s3cr3t@example.com/x", "https://***@example.com/x"),
        ("http://user:p@ss/s3cr3t@host/", "http://***@host/"),
        # DSNs inside free text (a /health/full check value can carry one)
        ("could not connect to postgres://app:s3cr3t@db:5432/venue: timeout",
         "could not connect to postgres://***@db:5432/venue: timeout"),
        ("redis=error (rediss://:s3cr3t@cache:6380/0)", "redis=error (rediss://***@cache:6380/0)"),
        ("'mysql://root:s3cr3t@db/x'", "'mysql://***@db/x'"),
        # secret-looking query parameters
        ("GET /cb?access_token=s3cr3t&x=1", "GET /cb?access_token=***&x=1"),
        ("/v1?api_key=s3cr3t", "/v1?api_key=***"),
        ("/v1?apikey=s3cr3t", "/v1?apikey=***"),
        ("/enqueue?routing_key=s3cr3t", "/enqueue?routing_key=***"),
        ("/x?token=s3cr3t", "/x?token=***"),
        ("/x?a=1&signature=s3cr3t", "/x?a=1&signature=***"),
        ("/x?sig=s3cr3t&se=2030", "/x?sig=***&se=2030"),
        ("/o?X-Amz-Credential=AKIA/s3cr3t&X-Amz-Signature=s3cr3t",
         "/o?X-Amz-Credential=***&X-Amz-Signature=***"),
        ("/login?password=s3cr3t", "/login?password=***"),
        ("/x?client_secret=s3cr3t", "/x?client_secret=***"),
        # libpq key=value and Authorization headers in free text
        ("host=db password=s3cr3t dbname=x", "host=db password=*** dbname=x"),
        ("Authorization: Bearer s3cr3t.abc-def", "Authorization: Bearer ***"),
        # left alone
        ("HTTP 503 from http://prometheus:9090/api/v1/query",
         "HTTP 503 from http://prometheus:9090/api/v1/query"),
        ('no series for {namespace="prod",service="a"}',
         'no series for {namespace="prod",service="a"}'),
        ("p99 2.1s > 2s", "p99 2.1s > 2s"),
    ],
)  # fmt: skip
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert SECRET not in redact(text)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("a\nmultiline\r\n\ttext ", 100, "a multiline text"),
        ("x" * 50, 10, "x" * 9 + "…"),
        # redacted before it is cut: a cut must never leave a password's prefix behind
        ("db=postgres://u:s3cr3t@db/x", 18, "db=postgres://***…"),
    ],
)
def test_one_line(text: str, limit: int, expected: str) -> None:
    assert one_line(text, limit) == expected
    assert len(one_line(text, limit)) <= limit


@pytest.mark.parametrize(
    "hostile",
    [
        "do-not-reflect-this-body" * 43690,  # a 1 MB error page without a space
        "a://" + "x" * 1_000_000,
        "?" + "a" * 1_000_000 + "=",
        "http://" + "@" * 1_000_000,
    ],
    ids=["words", "scheme", "parameter", "ats"],
)
def test_redacting_a_megabyte_takes_linear_time(hostile: str) -> None:
    started = time.process_time()
    redact(hostile)
    one_line(hostile, 300)
    # linear is milliseconds; the backtracking this guards against took minutes
    assert time.process_time() - started < 2.0
