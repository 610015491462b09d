"""The HTTP session prometheus-api-client sends through, bounded in time and size.

`PrometheusConnect` accepts a `requests.Session` and passes its `timeout` argument
to it; this session takes that timeout as a total deadline (connect + read + body),
streams the body and stops at a byte cap, never follows redirects and never reads
the body of an answer that is not 200. So the library stays the query client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.auth import _basic_auth_str
from requests.models import PreparedRequest

CHUNK = 64 * 1024
# A query longer than this goes in a POST's form body, as Prometheus' API allows for "a large
# query that may breach server-side URL character limits" (a shard's batch selector names
# each of its services: 1,250 over 4 replicas at 5,000 is ~25 KB; proxies cut at 8 KB).
MAX_GET_URL = 4096
HINTS = {  # what Prometheus means by a status; ours, so nothing of the body is needed
    400: "bad query",
    422: "query cannot be executed",
    503: "query timed out or Prometheus is unavailable",
}


class QueryFailed(Exception):
    """A bounded request failed; the message is one line, safe to show."""


class _Body(requests.Response):
    """`custom_query` returns `json()["data"]["result"]`; this hands it the raw body
    there instead, so that `answers.parse` sees the whole document (status and
    resultType included), parsed once."""

    def json(self, **kwargs: Any) -> Any:
        return {"data": {"result": self.content}}


@dataclass(frozen=True)
class PrometheusAuth:
    """Credentials of the operator's own Prometheus, as files: keys of a Secret in the
    operator's namespace mounted into its pod (never inline in a VenueService, never sent to
    a URL a VenueService names). Read at every request, so a rotated token is picked up."""

    bearer_token_file: str | None = None
    basic_auth_file: str | None = None  # one line: user:password
    ca_file: str | None = None  # PEM bundle to verify an https Prometheus

    def apply(self, request: PreparedRequest, kwargs: dict[str, Any]) -> None:
        """Set the Authorization header and the CA bundle; an unreadable file is a
        `QueryFailed` naming the file, never its content."""
        try:
            if self.bearer_token_file:
                token = Path(self.bearer_token_file).read_text().strip()
                request.headers["Authorization"] = f"Bearer {token}"
            elif self.basic_auth_file:
                user, _, password = Path(self.basic_auth_file).read_text().strip().partition(":")
                request.headers["Authorization"] = _basic_auth_str(user, password)
        except OSError as exc:
            raise QueryFailed(f"Prometheus credentials unreadable: {exc.strerror}") from None
        if self.ca_file:
            kwargs["verify"] = self.ca_file


class BoundedSession(requests.Session):
    """A session for `PrometheusConnect(session=...)`: each request's `timeout` (seconds)
    is a total deadline, its body is capped at `max_bytes`."""

    def __init__(self, max_bytes: int, auth: PrometheusAuth | None = None) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.credentials = auth
        # No proxies or ~/.netrc credentials from the environment for URLs a tenant chose.
        self.trust_env = False

    def send(self, request: PreparedRequest, **kwargs: Any) -> requests.Response:
        total = kwargs.get("timeout")
        if not isinstance(total, int | float):
            raise TypeError("BoundedSession needs a total timeout in seconds")
        deadline = time.monotonic() + total
        if self.credentials is not None:
            self.credentials.apply(request, kwargs)
        as_form(request)
        kwargs.update(stream=True, allow_redirects=False, timeout=(total, total))
        response = super().send(request, **kwargs)
        try:
            if response.status_code != 200:
                hint = HINTS.get(response.status_code)
                if 300 <= response.status_code < 400:
                    hint = "redirects are not followed"
                raise QueryFailed(f"HTTP {response.status_code}" + (f" ({hint})" if hint else ""))
            body = read_capped(response, self.max_bytes, deadline, total)
        finally:
            response.close()  # unread bytes are dropped with the connection, not drained
        answered = _Body()
        answered.status_code, answered._content = 200, body
        return answered


def as_form(request: PreparedRequest) -> None:
    """A GET whose URL is over MAX_GET_URL becomes a POST of the same parameters as a form."""
    url = request.url or ""
    if request.method != "GET" or len(url) <= MAX_GET_URL or "?" not in url:
        return
    request.url, _, query = url.partition("?")
    request.method = "POST"
    request.headers["Content-Type"] = "application/x-www-form-urlencoded"
    request.prepare_body(query.encode(), None)


def read_capped(
    response: requests.Response, max_bytes: int, deadline: float, total: float
) -> bytes:
    """The body, or `QueryFailed` once it passes `max_bytes` or `deadline` (`total`
    seconds after the request started): never more than one chunk past the cap is held."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise QueryFailed(f"answer over {max_bytes} bytes (Content-Length {declared})")
    chunks, size = [], 0  # not a growing bytearray: its reallocations held twice the cap
    # read1: returns what has arrived, so a body that trickles still meets the deadline
    while chunk := response.raw.read1(CHUNK, decode_content=True):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise QueryFailed(f"answer over {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise QueryFailed(f"answer not complete within {total:g}s")
    return b"".join(chunks)
