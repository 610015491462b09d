"""A latency breach during a rollout whose new pods keep P99 past their warm-up: the guard's
word (guard/warm_up.py) and decide's rule 3 escalating on it instead of rolling back."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.unit.builders import GUARD_LIMITS, GUARD_T0, NEW, metrics
from tests.unit.test_decide import (
    FRESH_ROLLOUT,
    INCIDENT,
    KNOWN,
    NOW,
    POLICY,
    R3,
    SLOW,
    assessed,
)
from venue_operator.decide.decision import Action
from venue_operator.decide.procedure import decide
from venue_operator.decide.rollout import RolloutFacts, WarmUp, rollout_facts
from venue_operator.guard.judge import GuardState
from venue_operator.guard.tally import VersionTally
from venue_operator.guard.warm_up import warm_up_word
from venue_operator.model.observations import Reading, WorkloadState
from venue_operator.model.status import VenueServiceStatus


def watched(requests: float, at_or_under_ms: float) -> GuardState:
    """A watch whose new pods served `requests` past their warm-up, 98% fast and the last 2%
    in the bucket that ends at `at_or_under_ms`."""
    latency = {0.1: requests * 0.98, at_or_under_ms / 1000: requests * 0.02}
    return replace(GuardState.begin(GUARD_T0, NEW), new=VersionTally(requests, 0, latency))


@pytest.mark.parametrize(
    ("state", "vouches"),
    [
        (watched(2_400, 250), True),  # warm pods well within 2 s
        (watched(2_400, 5_000), False),  # warm pods' p99 over the limit: the version is slow
        (watched(40, 250), False),  # under minRequests (50): not enough to say
        (GuardState.begin(GUARD_T0, NEW), False),  # nothing counted yet
    ],
)
def test_the_guard_vouches_only_for_enough_warm_requests_within_p99(
    state: GuardState, vouches: bool
) -> None:
    word = warm_up_word(state, GUARD_LIMITS)
    assert (word is not None) is vouches
    if word is not None:
        assert word.template == NEW and word.until is None
        assert "past their 10 s warm-up" in word.said and "over 2,400 requests" in word.said


WORD = WarmUp(R3.template_hash, "its pods' p99 past their 10 s warm-up is 180 ms over 2,400")
SLOW_AND_FAILING = {"metrics": metrics(p99_latency=Reading.of(2.6), error_rate=Reading.of(0.12))}
OPENED = INCIDENT.opened_at  # KNOWN's incident


@pytest.mark.parametrize(
    ("obs", "word", "action"),
    [
        (SLOW, WORD, Action.ESCALATE),  # while the guard watches
        (SLOW, replace(WORD, until=OPENED + timedelta(minutes=1)), Action.ESCALATE),
        # begun after the guard's watch ended: not the warm-up
        (SLOW, replace(WORD, until=OPENED - timedelta(minutes=1)), Action.ROLL_BACK),
        # 5xx beside P99: the version is to blame, whatever its warm latency
        (SLOW_AND_FAILING, WORD, Action.ROLL_BACK),
        (SLOW, None, Action.ROLL_BACK),  # no word (guard off, or not enough requests)
    ],
    ids=["watching", "watch-ended-after", "began-after-the-watch", "errors-too", "no-word"],
)
def test_a_p99_breach_the_warm_up_explains_is_escalated_not_rolled_back(
    obs: dict[str, object], word: WarmUp | None, action: Action
) -> None:
    rollout = replace(FRESH_ROLLOUT, warm_up=word)
    decision = decide(assessed(**obs), rollout, KNOWN, POLICY, NOW)
    assert decision.action is action, decision.reason
    if action is Action.ESCALATE:
        assert decision.key == "warm-up"
        assert "the pods' warm-up, not the version; not rolling back" in decision.reason
        assert word is not None and word.said in decision.reason


def test_the_word_counts_for_its_own_template_only() -> None:
    workload = WorkloadState(
        found=True, name="v", template_hash="other", revisions=FRESH_ROLLOUT.revisions
    )
    facts: RolloutFacts = rollout_facts(workload, VenueServiceStatus(), WORD)
    assert facts.warm_up is None
    current = replace(workload, template_hash=R3.template_hash)
    assert rollout_facts(current, VenueServiceStatus(), WORD).warm_up == WORD
