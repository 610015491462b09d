"""Redaction: credentials never survive into anything stored or shown."""

from __future__ import annotations

import time

import pytest

from venue_operator.observe.health import bounded_checks
from venue_operator.tenancy.redact import one_line, redact, safe_check_name

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
        # #23: the credential after an auth scheme, not only the scheme
        ("authorization=Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzM2NyM3QifQ.s3cr3t",
         "authorization=Bearer ***"),
        ("Authorization: Token s3cr3t", "Authorization: Token ***"),
        ("GET / headers={Authorization: Token s3cr3t}", "GET / headers={Authorization: Token ***"),
        # YAML, HTTP headers, JSON: `key: value`; a key starting a line loses the line
        ("password: s3cr3t", "password: ***"),
        ("token: s3cr3t", "token: ***"),
        ("config: {token: s3cr3t}", "config: {token: ***"),
        ("db:\n  password: correct s3cr3t staple\n  user: app",
         "db:\n  password: ***\n  user: app"),
        ("X-Api-Key: s3cr3t", "X-Api-Key: ***"),
        ("Cookie: session=s3cr3t; theme=dark", "Cookie: ***"),
        ('{"user": "app", "password": "s3 cr3t"}', '{"user": "app", "password": "***"}'),
        ('{"client_secret":"s3cr3t","x":1}', '{"client_secret":"***","x":1}'),
        ('{"password": "unclosed s3cr3t', '{"password": "***'),
        ("PGPASSWORD='s3 cr3t' psql", "PGPASSWORD='***' psql"),
        # a bare JWT, userinfo without a scheme, a Slack webhook, a known key format
        ("got eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzM2NyM3QifQ.s3cr3t-sig back", "got *** back"),
        ("dial app:s3cr3t@db.prod:5432: refused", "dial ***@db.prod:5432: refused"),
        ("redis=user:s3cr3t@cache:6379", "redis=***@cache:6379"),
        ("POST https://hooks.slack.com/services/T0001/B0002/s3cr3t failed",
         "POST https://hooks.slack.com/services/*** failed"),
        ("https://discord.com/api/webhooks/123/s3cr3t", "https://discord.com/api/webhooks/***"),
        ("key sk_live_s3cr3tXXXXXXXXXXXX rejected", "key sk_live_*** rejected"),
        ("ghp_s3cr3tXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "ghp_***"),
        # left alone: a port after a host holding a secret word, an address, a time
        ("HTTP 503 from http://auth-service:8080/health",
         "HTTP 503 from http://auth-service:8080/health"),
        ("mail ops@example.com at 10:30", "mail ops@example.com at 10:30"),
        ("request_rate: 12.5 req/s", "request_rate: 12.5 req/s"),
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
    assert redact(expected) == expected  # redacting twice changes nothing


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


# Each rule's worst case: many starts inside one run, each scanning as far as it may.
ADVERSARIAL = {
    "userinfo starts": ",a:" * 21846,
    "userinfo without @": " u:" + "p" * 65536,
    "colons and ats": ":@" * 32768,
    "jwt starts": "eyJ." * 16384,
    "secret words": "-key" * 16384,
    "long names": ("a" * 63 + "key") * 1024,
    "keys starting lines": "\ntoken: " * 8192,
    "unclosed quotes": 'password="' * 6554,
    "schemes": "bearer " * 9363,
    "webhook bases": "hooks.slack.com/services/" * 2622,
}


@pytest.mark.parametrize("hostile", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_redacting_64_kib_of_adversarial_text_is_well_under_a_second(hostile: str) -> None:
    text = hostile[: 64 * 1024]
    started = time.process_time()
    redact(text)
    # ~0.1 s at most on a busy machine; catastrophic backtracking takes minutes
    assert time.process_time() - started < 0.5


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("database", True), ("redis", True), ("migrations", True), ("kafka-broker", True),
        ("stripeApi", True), ("payment_gateway.v2", True), ("S3", True), ("DB", True),
        ("Postgres", True), ("http2", True),
        # #23: a key as a check name reached checks[health].reason
        ("sk_live_SECRETKEY123", False), ("sk_live_abc", False), ("db_password", False),
        ("authToken", False), ("client-secret", False), ("ghp_abcdef", False),
        # not a name: random, long, markup, not a string
        ("a1b2c3d4e5f6", False), ("xK9fQ2mZ", False), ("4111111111111111", False),
        ("n" * 41, False), ("<script>", False), ("", False), ("a b", False), (7, False),
    ],
)  # fmt: skip
def test_a_check_name_is_kept_only_when_it_reads_as_a_name(name: object, kept: bool) -> None:
    assert safe_check_name(name, "check0") == (name if kept else "check0")


def test_health_checks_keep_safe_names_and_number_the_others() -> None:
    checks = bounded_checks({"database": "ok", "sk_live_SECRETKEY123": "error", "redis": "DOWN"})
    assert checks == {"database": "ok", "check1": "error", "redis": "down"}
