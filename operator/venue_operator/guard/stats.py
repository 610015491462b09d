"""The rollout guard's statistics, in pure Python (no scipy): Fisher's exact test, a p99 from
histogram buckets, and reading counters that can reset. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_greater(new_bad: int, new_total: int, old_bad: int, old_total: int) -> float:
    """One-sided Fisher exact p-value that the new version's bad share exceeds the old one's.

    P(X >= new_bad) for X hypergeometric with the table's margins: the chance of seeing at
    least this many of all the errors land on the new version if both were equally bad.
    Exact at any sample size, so a handful of requests can never look significant.
    """
    if new_total <= 0 or old_total <= 0:
        return 1.0
    bad = new_bad + old_bad
    total = new_total + old_total
    denominator = _log_choose(total, new_total)
    upper = min(bad, new_total)
    terms = [
        _log_choose(bad, k) + _log_choose(total - bad, new_total - k) - denominator
        for k in range(new_bad, upper + 1)
    ]
    if not terms:
        return 1.0
    peak = max(terms)
    return min(1.0, math.exp(peak) * sum(math.exp(t - peak) for t in terms))


def quantile_from_buckets(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile on cumulative (upper bound, count) pairs, +Inf last.

    Linear interpolation inside the bucket that holds the rank; a rank in the +Inf bucket is
    the highest finite bound (as Prometheus does). None without observations.
    """
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            share = (rank - lower_count) / (count - lower_count)
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def counter_delta(previous: float | None, current: float) -> float:
    """What a counter gained since the last read; a drop is a restart, counted from zero."""
    if previous is None:
        return 0.0
    return current - previous if current >= previous else current


def bucket_delta(
    previous: Mapping[float, float] | None, current: Mapping[float, float]
) -> dict[float, float]:
    """Per-bucket counter deltas; one bucket dropping means the process restarted."""
    if previous is None:
        return dict.fromkeys(current, 0.0)
    if any(current.get(le, 0.0) < before for le, before in previous.items()):
        return dict(current)
    return {le: value - previous.get(le, 0.0) for le, value in current.items()}
