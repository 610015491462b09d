"""The rollout guard per tenant: each version's requests and 5xx by tenant, and the test that
finds the new version worse for one of them. Pure.

A version that fails one tenant hides in the overall ratio when that tenant is a small share:
30% 5xx for a tenant that is 10% of the traffic is 3% overall, under the runbook's 5%. So
each tenant is compared as the whole is (its own new ratio above the limit, and Fisher's test
new > old), with two guards against false pauses that many small comparisons would bring:
- a tenant is judged only over `minRequests` of its own new requests (default 20: two errors
  in 20 read 10%, but against an old 0.1% over 1,000 Fisher gives p = 0.0011, not enough;
  six in 20, a tenant failing 30%, gives p < 1e-9), and
- the significance is divided by the number of tenants judged (Bonferroni).
Tenant names are label values from the service's own metrics: untrusted, so the readers keep
the busiest `maxTenants` per pod and a tally follows at most that many.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from venue_operator.guard.stats import counter_delta, fisher_greater

# tenant -> (requests, 5xx): a pod's totals, or a version's tally since the watch began
Counts = Mapping[str, tuple[float, float]]


def busiest(counts: Counts, limit: int) -> dict[str, tuple[float, float]]:
    """The `limit` tenants with the most requests (ties by name, so reads agree)."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1][0], item[0]))
    return dict(ranked[:limit])


def deltas(before: Counts | None, now: Counts) -> dict[str, tuple[float, float]]:
    """What each tenant's counters gained since `before` (None: a baseline, nothing). A
    tenant not in `before` is a baseline too: it may only have become one of the busiest."""
    if before is None:
        return {}
    gained = {}
    for tenant, (requests, errors) in now.items():
        if tenant in before:
            was_requests, was_errors = before[tenant]
            gained[tenant] = (counter_delta(was_requests, requests),
                              counter_delta(was_errors, errors))  # fmt: skip
    return gained


def added(tally: Counts, gained: Counts, limit: int) -> dict[str, tuple[float, float]]:
    """`tally` plus `gained`, following at most `limit` tenants (the first seen stay)."""
    out = dict(tally)
    for tenant, (requests, errors) in busiest(gained, len(gained)).items():
        if tenant not in out and len(out) >= limit:
            continue
        was_requests, was_errors = out.get(tenant, (0.0, 0.0))
        out[tenant] = (was_requests + requests, was_errors + errors)
    return out


@dataclass(frozen=True)
class TenantFinding:
    tenant: str
    p_value: float
    new: tuple[float, float]
    old: tuple[float, float]


def worst_tenant(
    new: Counts, old: Counts, error_ratio: float, significance: float, min_requests: int
) -> TenantFinding | None:
    """The tenant for which the new version is most significantly worse, or None."""
    judged = {t: c for t, c in new.items() if c[0] >= min_requests}
    if not judged:
        return None
    corrected = significance / len(judged)
    found = []
    for tenant, (requests, errors) in judged.items():
        if errors / requests <= error_ratio:
            continue
        old_requests, old_errors = old.get(tenant, (0.0, 0.0))
        p_value = fisher_greater(round(errors), round(requests), round(old_errors),
                                 round(old_requests))  # fmt: skip
        if p_value < corrected:
            found.append(TenantFinding(tenant, p_value, (requests, errors),
                                       (old_requests, old_errors)))  # fmt: skip
    return min(found, key=lambda f: (f.p_value, f.tenant), default=None)
