"""The API server's refusals as the rest of the operator sees them: `ApiError` (the client's
exception under our name, so that no caller imports the client to catch it), whether one is
a conflict worth re-planning, and its one line for an Event, a log or a terminal."""

from __future__ import annotations

import contextlib
import json

from kubernetes.aio.client.exceptions import ApiException

ApiError = ApiException  # `.status` (HTTP), `.reason`, `.body` (the server's Status)


def is_conflict(exc: ApiError) -> bool:
    """Someone else wrote first: a 409, or a 422 for a JSON patch that did not apply to the
    object as it is now (our resourceVersion "test" op failed, or a path we planned on was
    removed): re-read and re-plan. A 422 that names the invalid fields (`details.causes`) is
    an object the server will never take: trying again cannot help."""
    if exc.status == 409:
        return True
    if exc.status != 422:
        return False
    try:
        answer = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return True
    details = answer.get("details") if isinstance(answer, dict) else None
    return not (isinstance(details, dict) and details.get("causes"))


def refusal(exc: Exception) -> str:
    """A failed call in one line: the API server's own message names the verb, the
    resource and the object (`deployments.apps "x" is forbidden: ... cannot patch ...`).
    Any other error is its own text."""
    if not isinstance(exc, ApiError):
        return str(exc)
    detail = ""
    with contextlib.suppress(ValueError, AttributeError):
        detail = str(json.loads(exc.body or "{}").get("message", ""))
    return f"API {exc.status} {exc.reason}" + (f": {detail[:400]}" if detail else "")
