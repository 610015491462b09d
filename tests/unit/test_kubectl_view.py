"""#25 items 3-5, what kubectl shows: a status without empty fields (a healthy one without
a severity), condition messages bounded at whole words, resolved holds cleared, "not probed"
in plain words, and the cause's Events stamped before the action's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
import pytest

from tests.unit.builders import ONE_SHOT, SPEC, metrics, observe
from tests.unit.test_service_loop import World, bad_rollout, healthy_with_known_good
from venue_operator.assess.assessment import assess
from venue_operator.kube import events
from venue_operator.kube.events import after_cause
from venue_operator.kube.status_store import parse_status, status_body
from venue_operator.model.crd import build_crd
from venue_operator.model.observations import ProbeFailure, ProbeResult, Reading
from venue_operator.model.reasons import CHECK_SECTIONS, Reason
from venue_operator.model.status import CheckStatus, Level, Severity, VenueServiceStatus
from venue_operator.model.wording import clipped, fitted
from venue_operator.record.transitions import (
    CONDITION_CHARS,
    EventSpec,
    next_status,
    track_incident,
)

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Database Connection Failures", 100, "Database Connection Failures"),
        ("Database Connection Failures", 24, "Database Connection…"),
        ("error_rate unknown: timed out;", 27, "error_rate unknown: timed…"),
        ("averyveryverylongword", 10, "averyvery…"),
        # the cut right before a space keeps the word it ends
        ("error_rate 12% > critical 5%", 15, "error_rate 12%…"),
    ],
)
def test_clipped_ends_at_a_whole_word(text: str, limit: int, expected: str) -> None:
    assert clipped(text, limit) == expected
    assert len(clipped(text, limit)) <= limit


@pytest.mark.parametrize(
    ("parts", "limit", "expected"),
    [
        (["a b", "c d"], 20, "a b; c d"),
        (["first part", "second part", "third part"], 30, "first part; and 2 more"),
        (
            ["first part", "second part", "the third part"],
            35,
            "first part; second part; and 1 more",
        ),
        (["a rather long first part", "second"], 24, "a rather…; and 1 more"),
    ],
)
def test_fitted_drops_whole_parts_and_says_how_many(
    parts: list[str], limit: int, expected: str
) -> None:
    assert fitted(parts, limit) == expected
    assert len(fitted(parts, limit)) <= limit


def _blind_cycle() -> VenueServiceStatus:
    """Every check unknown, each with a long reason: the message that was cut mid-word."""
    why = "Prometheus at http://prometheus.monitoring.svc:9090 answered 503 Service Unavailable"
    blind = dict.fromkeys(
        ("request_rate", "requests_served", "error_rate", "p99_latency", "pool_utilisation",
         "pool_pending", "memory_utilisation", "rate_limited"),
        Reading.unknown(why * 3),
    )  # fmt: skip
    obs = observe(full_health=ProbeResult(ProbeFailure.TIMEOUT, "x" * 300),
                  metrics=metrics(**blind))  # fmt: skip
    a = assess(obs, ONE_SHOT)
    return next_status(a, obs.workload, VenueServiceStatus(), NOW, 1)


def test_condition_messages_are_bounded_by_dropping_detail_never_mid_word() -> None:
    status = _blind_cycle()
    for condition in status.conditions:
        message = condition.message
        assert len(message) <= CONDITION_CHARS, message
        assert message.endswith(("]", "more", "…")) or message[-1].isalnum(), message
    healthy = next(c for c in status.conditions if c.type == "Healthy")
    assert healthy.message.startswith("cannot judge: ")
    assert "Database Connection Failures]" in healthy.message  # sections whole


def test_a_dependency_not_probed_says_so_in_plain_words() -> None:
    refused = ProbeResult(ProbeFailure.NOT_ALLOWED, "a link-local address")
    reason = assess(observe(full_health=refused), ONE_SHOT).check("database").reason
    assert reason is not None and "not probed" in reason and "NotAllowed" not in reason
    timed_out = ProbeResult(ProbeFailure.TIMEOUT, "500ms")
    reason = assess(observe(full_health=timed_out), ONE_SHOT).check("redis").reason
    assert reason == "/health/full gave no redis state (timed out)"


def test_a_healthy_status_is_stored_without_empty_fields_or_a_severity() -> None:
    obs = observe()
    status = next_status(assess(obs, SPEC), obs.workload, VenueServiceStatus(), NOW, 1)
    assert status.severity is Severity.NONE
    body = status_body(status)
    assert "severity" not in body and body["health"] == "Healthy"
    for gone in ("history", "incidents", "outbox", "circuitOpen", "healthyTemplates", "checks"):
        assert gone not in body, gone
    # every check calm: by name only (kubectl describe on one screen), in the runbook's order
    assert body["okChecks"] == [c.name for c in status.checks] == list(CHECK_SECTIONS)
    read = parse_status(body)
    assert read == status.model_copy(update={"checks": [bare(c) for c in status.checks]})


def bare(check: CheckStatus) -> CheckStatus:
    """A calm check as read back: what it measured in a past cycle is not kept."""
    return check.model_copy(update={"value": None, "unit": None, "warning": None,
                                    "critical": None})  # fmt: skip


def test_a_check_in_breach_is_stored_whole() -> None:
    bad = observe(metrics=metrics(error_rate=Reading.of(0.2)))
    status = next_status(assess(bad, SPEC), bad.workload, VenueServiceStatus(), NOW, 1)
    body = status_body(status)
    (stored,) = body["checks"]
    assert stored["name"] == "error_rate" and "error_rate" not in body["okChecks"]
    assert stored["observed"] == "critical" and stored["level"] == "ok"  # not confirmed yet
    assert stored["section"] == "Monitoring & Alerts" and stored["breach"] == ["critical"]
    assert stored["value"] == 20 and stored["critical"] == 5
    calm = [c if c.name == "error_rate" else bare(c) for c in status.checks]
    assert parse_status(body) == status.model_copy(update={"checks": calm})


def test_a_field_that_empties_is_absent_from_the_next_body() -> None:
    before = VenueServiceStatus(last_error=None, revision=3, healthy_templates=["aaa"])
    after = before.model_copy(update={"revision": None, "healthy_templates": []})
    assert {"revision", "healthyTemplates"} <= set(status_body(before))
    assert not {"revision", "healthyTemplates"} & set(status_body(after))
    unjudged = VenueServiceStatus(severity=Severity.NONE)  # no health: severity kept
    assert parse_status(status_body(unjudged)) == unjudged


def test_only_what_is_read_back_as_it_was_is_left_out() -> None:
    """A check is stored by name only when it reads back as it was: ok, nothing pending or to
    say, in its own runbook section (found by the real API server's round-trip test)."""
    own = CheckStatus(name="health", level=Level.OK, observed=Level.OK,
                      section=CHECK_SECTIONS["health"])  # fmt: skip
    not_calm = [
        own.model_copy(update={"section": ""}),
        own.model_copy(update={"reason": "/health/full gave no redis state (timed out)"}),
        own.model_copy(update={"pending": Level.WARNING, "pending_count": 1}),
        own.model_copy(update={"observed": Level.WARNING, "breach": [Level.WARNING]}),
        own.model_copy(update={"last_known": Level.WARNING}),
        own.model_copy(update={"pending_count": 2}),
        own.model_copy(update={"breach": [Level.WARNING]}),
        own.model_copy(update={"observed": Level.UNKNOWN}),
        own.model_copy(update={"level": Level.WARNING}),
    ]
    for check in (own, *not_calm):
        status = VenueServiceStatus(checks=[check])
        assert parse_status(status_body(status)) == status, check
    assert status_body(VenueServiceStatus(checks=[own])) == {"okChecks": ["health"]}
    for check in not_calm:
        assert "okChecks" not in status_body(VenueServiceStatus(checks=[check])), check


def test_a_resolved_incident_holds_nothing() -> None:
    bad = observe(metrics=metrics(error_rate=Reading.of(0.2)))
    opened = track_incident(None, assess(bad, ONE_SHOT), NOW)
    assert opened is not None
    held = opened.model_copy(update={"held": ["verifying the rollback"]})
    resolved = track_incident(held, assess(observe(), ONE_SHOT), NOW + timedelta(minutes=1))
    assert resolved is not None and resolved.resolved_at is not None and resolved.held == []


def test_an_action_is_stamped_after_its_cause_in_whole_seconds() -> None:
    cause = NOW.replace(microsecond=0)
    assert after_cause(cause, None) == cause
    assert after_cause(cause, cause) == cause + timedelta(seconds=1)  # same second: one later
    later = cause + timedelta(seconds=5)
    assert after_cause(later, cause) == later


async def test_the_breach_is_posted_before_the_rollback_it_causes() -> None:
    world = World()
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)
    await world.cycles(loop, 6)
    reasons = world.events.reasons()
    assert reasons.index(Reason.THRESHOLD_BREACHED) < reasons.index(Reason.ROLLED_BACK)
    assert reasons.index(Reason.SEVERITY_CHANGED) < reasons.index(Reason.ROLLED_BACK)


async def test_kube_events_stamp_the_action_a_second_after_its_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kubectl sorts by lastTimestamp in whole seconds: a tie would list them in any order."""
    created: list[dict[str, Any]] = []

    async def create_event(api: object, namespace: str, body: dict[str, Any]) -> None:
        created.append(body)

    monkeypatch.setattr(events.calls, "create_event", create_event)
    body = kopf.Body({"apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
                      "metadata": {"name": "v", "namespace": "shop", "uid": "u"}})  # fmt: skip
    poster = events.KubeEvents(cast(Any, None), body)
    await poster.post(None, EventSpec("Warning", Reason.THRESHOLD_BREACHED, "error_rate 20%"))
    await poster.post_once(None, EventSpec("Normal", Reason.ROLLED_BACK, "3 -> 2"), "rb-1")
    cause, action = (datetime.fromisoformat(b["lastTimestamp"]) for b in created)
    assert cause.microsecond == 0 and action >= cause + timedelta(seconds=1)
    assert action - datetime.now(UTC) < timedelta(seconds=1)  # never more than a second ahead


async def test_an_event_the_api_server_never_answers_costs_the_cycle_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events are the audit trail's second copy: a timed-out create is logged, not raised
    into the cycle (the status write after it is the first copy)."""

    async def create_event(api: object, namespace: str, body: dict[str, Any]) -> None:
        raise TimeoutError("no answer")

    monkeypatch.setattr(events.calls, "create_event", create_event)
    body = kopf.Body({"apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
                      "metadata": {"name": "v", "namespace": "shop", "uid": "u"}})  # fmt: skip
    poster = events.KubeEvents(cast(Any, None), body)
    await poster.post(None, EventSpec("Warning", Reason.THRESHOLD_BREACHED, "error_rate 20%"))
    assert await poster.post_once(None, EventSpec("Normal", Reason.ROLLED_BACK, "x"), "rb-1")


def _missing(value: Any, schema: dict[str, Any], at: str = "status") -> list[str]:
    """The CRD's required fields `value` lacks (what the API server would refuse, 422)."""
    if isinstance(value, dict):
        props = schema.get("properties", {})
        lacking = [f"{at}.{r}" for r in schema.get("required", []) if r not in value]
        return lacking + [m for k, v in value.items() if k in props
                          for m in _missing(v, props[k], f"{at}.{k}")]  # fmt: skip
    if isinstance(value, list) and "items" in schema:
        return [m for i, v in enumerate(value) for m in _missing(v, schema["items"], f"{at}[{i}]")]
    return []


async def test_every_status_the_store_writes_has_what_the_crd_requires() -> None:
    crd = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    world = World()
    loop = await healthy_with_known_good(world)
    bodies = [dict(world.stored)]
    await bad_rollout(world, loop)
    for _ in range(8):
        await world.cycles(loop, 1)
        bodies.append(dict(world.stored))
    for body in bodies:
        assert _missing(body, crd["properties"]["status"]) == []
