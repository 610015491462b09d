"""The rollout guard's word on a latency breach during a rollout: the new version's pods, past
each one's warm-up, keep the P99 limit. Pure.

A service whose pods are slow for their first seconds (a JIT, a cold cache) breaches P99
service-wide during every rollout: Prometheus' histogram counts every request, the warm-up's
too. The guard leaves each new pod's first `warmUp` out of its latency (guard/judge.py); when
what is left keeps the limit over at least `minRequests`, the breach is the pods' warm-up (or
the old pods), not the new version, and rolling back would not cure it: the old version's
pods, started anew, warm up the same way. Decide's rule 3 escalates instead
(decide/rules.py: roll_back_after_recent_rollout).
"""

from __future__ import annotations

from venue_operator.decide.rollout import WarmUp
from venue_operator.guard.judge import GuardLimits, GuardState


def warm_up_word(state: GuardState, limits: GuardLimits) -> WarmUp | None:
    """The word while the watch has enough of the new pods' warm requests, else None."""
    new = state.new
    if new.latency_requests < limits.min_requests:
        return None
    p99 = new.p99()
    if p99 is None or p99 > limits.p99_seconds:
        return None
    return WarmUp(
        state.new_hash,
        f"its pods' p99 past their {limits.warm_up.total_seconds():g} s warm-up is "
        f"{p99 * 1000:,.0f} ms over {new.latency_requests:,.0f} requests "
        f"(limit {limits.p99_seconds * 1000:,.0f} ms)",
    )
