"""Health probes: GET /health and /health/full with hard time and size bounds.

Every way a probe can go wrong becomes a distinct `ProbeFailure`, and the total
time of one probe is bounded by the spec's timeout, so one slow service never
delays the others (each probe runs in its own task). The connection and the bounded read
are observe/http.py's.
"""

from __future__ import annotations

import json
import time
from typing import Any

from venue_operator.model.observations import ProbeFailure, ProbeResult
from venue_operator.observe.http import FAILURES, Dialer, Link, TargetRefused
from venue_operator.record import loop_lag
from venue_operator.tenancy.redact import one_line, safe_check_name

MAX_BODY_BYTES = 64 * 1024  # a health answer is a few hundred bytes; junk is cut off here
# Check values reach status and Events (fields of at most 1,024 characters): a long database
# error during an incident must not make the whole status invalid, so cut where produced.
MAX_CHECKS = 16
MAX_CHECK_VALUE = 200
MAX_DETAIL = 500
# A timeout taken this late past its deadline (seconds, or this share of the timeout if more)
# was the operator's own event loop running late, not only the service: on a saturated
# replica the answer may have been waiting unread. An idle loop takes it within milliseconds.
LATE_S, LATE_SHARE = 0.5, 0.25


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "Connection refused" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# Never reflect a response body into status or Events: a check's state is kept only when it
# is one of these words, any other value is "not ok"; a name only when it reads as a name.
STATES = frozenset({
    "ok", "up", "healthy", "connected", "running", "pass", "passing",
    "error", "down", "unhealthy", "degraded", "failed", "failing", "fail", "timeout",
    "unavailable", "unreachable", "disconnected", "pending", "warning", "critical", "unknown",
})  # fmt: skip
NOT_OK = "not ok"


def known_state(value: object) -> str:
    """A check's state from the known vocabulary, else "not ok"."""
    text = value.strip().lower() if isinstance(value, str) else ""
    return text if text in STATES else NOT_OK


def bounded_checks(raw: object) -> dict[str, str]:
    """The `checks` object as known states under safe names (at most `MAX_CHECKS`)."""
    if not isinstance(raw, dict):
        return {}
    items = list(raw.items())[:MAX_CHECKS]
    return {safe_check_name(k, f"check{i}"): known_state(v) for i, (k, v) in enumerate(items)}


def _interpret(status: int, body: bytes | None, elapsed: float) -> ProbeResult:
    if body is None:
        return ProbeResult(
            ProbeFailure.INVALID_JSON, f"body over {MAX_BODY_BYTES} bytes", status, seconds=elapsed
        )
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return ProbeResult(
            ProbeFailure.INVALID_JSON if status == 200 else ProbeFailure.HTTP_STATUS,
            f"HTTP {status}, body is not JSON",
            status,
            seconds=elapsed,
        )
    if not isinstance(doc, dict):
        return ProbeResult(
            ProbeFailure.INVALID_JSON, "body is not a JSON object", status, seconds=elapsed
        )
    checks = bounded_checks(doc.get("checks"))
    failing = sorted(k for k, v in checks.items() if v != "ok")
    if failing:
        detail = one_line(", ".join(f"{k}={checks[k]}" for k in failing), MAX_DETAIL)
        return ProbeResult(ProbeFailure.CHECK_FAILING, detail, status, checks, elapsed)
    if status != 200:
        return ProbeResult(ProbeFailure.HTTP_STATUS, f"HTTP {status}", status, checks, elapsed)
    if doc.get("status") != "ok":
        detail = f"status={known_state(doc.get('status'))!r}"
        return ProbeResult(ProbeFailure.CHECK_FAILING, detail, status, checks, elapsed)
    return ProbeResult(None, "", status, checks, elapsed)


async def probe(via: Dialer | Link, url: str, seconds: float, *, last: bool = True) -> ProbeResult:
    """One GET of `url` bounded to `seconds` in total, on a connection of its own or on the
    `Link`'s (`last`: none other follows on it); never raises: the outcome is the result."""
    started = time.monotonic()
    link = via if isinstance(via, Link) else Link(via)
    try:
        status, body = await link.get(url, MAX_BODY_BYTES, seconds, last=last)
    except TimeoutError:
        # taken late past the deadline, or on time after the loop was held most of the wait
        # (loop_lag): one wording for both, so an unknown check's reason keeps its words
        late = max(time.monotonic() - started - seconds, loop_lag.stalled_since(started))
        if late > max(LATE_S, LATE_SHARE * seconds):
            why = (f"not judged: the operator's event loop ran {late:.1f}s late in the "
                   f"{seconds:g}s wait")  # fmt: skip
            return ProbeResult(ProbeFailure.OPERATOR_LATE, why)
        return ProbeResult(ProbeFailure.TIMEOUT, f"no answer within {seconds:g}s")
    except TargetRefused as refused:  # an address the tenant boundaries refuse: nothing sent
        return ProbeResult(ProbeFailure.NOT_ALLOWED, refused.reason)
    except FAILURES as exc:
        failure = ProbeFailure.CONNECTION_REFUSED if _refused(exc) else ProbeFailure.UNREACHABLE
        # an error may quote the URL (userinfo and all): one_line redacts it
        detail = type(exc).__name__ + (f": {exc}" if str(exc) else "")
        return ProbeResult(failure, one_line(detail, MAX_DETAIL))
    return _interpret(status, body, time.monotonic() - started)
