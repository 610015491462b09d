"""How fast the rollout guard's per-tenant comparison can find a version failing one small
tenant, and how often it pauses a good one: `guard/tenants.worst_tenant` on simulated counts,
no cluster.

    .venv/bin/python bench/tenant_power.py --noisy 600 --bad 200

The shape of bench/rollout_guard.py's `tenant` trials: 10 replicas, maxSurge 1 (a new pod
every 11 s), each pod at `--rate` req/s, tenant-e a tenth of it; the bad version fails
tenant-e 300 times as often as the old one (30%), the noisy profile fails every tenant 6% for
1 s of every 10 s (at its own phase per pod) and 0.22% otherwise. Each read (every
`interval`) adds what every Ready pod served since the last one; a new pod's first read is
only its baseline, as for direct reads. A pause: `confirmations` (2) reads in a row finding a
tenant. Prints, per setting, the noisy rollouts paused and the bad ones' time to pause.
"""

from __future__ import annotations

import argparse
import math
import random

from venue_operator.guard.tenants import worst_tenant

SHARES = {"tenant-a": 0.225, "tenant-b": 0.225, "tenant-c": 0.225, "tenant-d": 0.225,
          "tenant-e": 0.1}  # fmt: skip
STEP_S, REPLICAS, HORIZON_S = 11.0, 10, 120.0


def poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p < limit:
            return k
        k += 1


def rollout(seed: int, bad: bool, rate: float, min_requests: int, significance: float,
            interval: float, confirmations: int = 2) -> float | None:  # fmt: skip
    """Seconds from the change to the pause, or None (no pause within the horizon)."""
    rng = random.Random(seed)
    phase = [rng.random() * 10 for _ in range(2 * REPLICAS)]
    new = {t: [0, 0] for t in SHARES}
    old = {t: [0, 0] for t in SHARES}
    streak, at = 0, 0.0
    while at < HORIZON_S:
        at += interval
        for pod in range(2 * REPLICAS):
            is_new = pod >= REPLICAS
            born = STEP_S * (pod - REPLICAS)
            if not is_new and at > STEP_S * (pod + 1):
                continue  # replaced
            if is_new and at < born + interval:
                continue  # not born yet, or this read is its baseline
            for tenant, share in SHARES.items():
                served, failed = poisson(rng, rate * share * interval), 0
                for _ in range(served):
                    when = at - interval + rng.random() * interval
                    bursting = not bad and (when + phase[pod]) % 10 < 1
                    ratio = 0.06 if bursting else (0.001 if bad else 0.0022)
                    if bad and is_new and tenant == "tenant-e":
                        ratio = min(1.0, ratio * 300)
                    failed += rng.random() < ratio
                tally = new if is_new else old
                tally[tenant][0] += served
                tally[tenant][1] += failed
        found = worst_tenant({t: (r, e) for t, (r, e) in new.items()},
                             {t: (r, e) for t, (r, e) in old.items()},
                             0.05, significance, min_requests)  # fmt: skip
        streak = streak + 1 if found else 0
        if streak >= confirmations:
            return at
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--noisy", type=int, default=600, help="good rollouts per setting")
    parser.add_argument("--bad", type=int, default=200, help="bad rollouts per setting")
    parser.add_argument("--rate", type=float, default=20.0, help="req/s per pod")
    args = parser.parse_args()
    print("| significance | minRequests | interval | noisy paused | bad: pause p50 / p95 |")
    print("|---|---|---|---|---|")
    for significance in (0.001, 0.005):
        for min_requests, interval in ((20, 2.0), (10, 2.0), (10, 1.0)):
            setting = (args.rate, min_requests, significance, interval)
            paused = sum(rollout(s, False, *setting) is not None for s in range(args.noisy))
            times = sorted(t for s in range(args.bad)
                           if (t := rollout(s, True, *setting)) is not None)  # fmt: skip
            p50, p95 = times[len(times) // 2], times[int(0.95 * (len(times) - 1))]
            print(f"| {significance} | {min_requests} | {interval:g} s | {paused} of "
                  f"{args.noisy} | {p50:g} / {p95:g} s |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
