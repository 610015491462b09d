"""The runbook mapping as data, pure: what each check reads and where its limits are in the
spec, and each step of decide() in the order procedure.py takes it, with the checks a rule
reads, the actions it may take and the runbook sections it names.

docs/reference/runbook-mapping.md is written from this, the checks' sections (assess/checks.py)
and the spec's defaults (`venue-operator docs --write`); tests/unit/test_runbook_mapping.py
proves the rows match what the rules and checks do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from venue_operator.assess.checks import READINGS
from venue_operator.decide import guardrails, rules, storm
from venue_operator.decide.decision import P1_SECTION, ROLLBACK_SECTION, Action
from venue_operator.model.reasons import (
    DB_FAILURES,
    DB_OPERATIONS,
    HIGH_LATENCY,
    RATE_LIMITS,
)


@dataclass(frozen=True)
class CheckRow:
    name: str
    reads: str = ""  # for a check that is no metric; a metric's thresholds field says it
    levels: str = ""

    @property
    def threshold(self) -> str | None:
        """The field of spec.thresholds holding a metric check's limits (its description
        says what it reads); None for the others (`reads` and `levels` say it)."""
        scale = READINGS.get(self.name)
        return scale.threshold if scale else None

    @property
    def unit(self) -> str:
        scale = READINGS.get(self.name)
        return scale.unit if scale else ""


CHECK_ROWS: tuple[CheckRow, ...] = (
    CheckRow("health", reads="`GET /health` (`spec.service.healthPath`)",
             levels="fails (refused, timeout, not HTTP 200, not a JSON `status: ok`, a check "
             "in `checks` not ok) -> critical: the service is Down (P1); an address the "
             "tenant boundaries refuse -> unknown (never probed)"),
    CheckRow("database", reads="`checks.database` of `GET /health/full`",
             levels="anything but `ok` -> critical; no such key -> unknown"),
    CheckRow("redis", reads="`checks.redis` of `GET /health/full`",
             levels="anything but `ok` -> critical; no such key -> unknown"),
    CheckRow("migrations", reads="`checks.migrations` of `GET /health/full`",
             levels="anything but `ok` (e.g. `pending`) -> critical; no such key -> ok"),
    CheckRow("pods", reads="the Deployment's ready, desired and crash-looping pods",
             levels="none of the desired pods ready -> critical: Down (P1); a pod in "
             "CrashLoopBackOff -> critical; fewer ready than desired -> warning; the "
             "Deployment missing or unreadable -> unknown"),
    CheckRow("error_rate"),
    CheckRow("p99_latency"),
    CheckRow("pool_utilisation"),
    CheckRow("pool_pending"),
    CheckRow("memory"),
    CheckRow("rate_limited"),
)  # fmt: skip


@dataclass(frozen=True)
class Step:
    """One step of decide(): a runbook rule (rules.py), or a guardrail between the rules."""

    step: Callable[..., object]
    checks: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    sections: tuple[str, ...] = ()
    when: str = ""

    @property
    def name(self) -> str:
        return self.step.__name__

    @property
    def is_rule(self) -> bool:
        return self.step.__module__ == rules.__name__


PROCEDURE: tuple[Step, ...] = (
    Step(guardrails.switched_off,
         when="before anything: no action at all; nor while health is Unknown (missing data)"),
    Step(rules.give_back_lent_capacity, (), (Action.ABANDON_RESTORE, Action.SCALE_BACK),
         (HIGH_LATENCY,), "capacity lent in an incident: AbandonRestore before any rule, "
         "ScaleBack when no rule below acts"),
    Step(rules.circuit_breaker_on_dependency_down, rules.DEPENDENCIES,
         (Action.OPEN_CIRCUIT, Action.CLOSE_CIRCUIT, Action.ESCALATE), (DB_FAILURES,),
         "a dependency down: nothing after it may act"),
    Step(guardrails.dependency_echo, when="after the circuit closed: everything waits"),
    Step(rules.escalate_reapplied, rules.SERVICE_CHECKS, (Action.ESCALATE,),
         (ROLLBACK_SECTION,)),
    Step(guardrails.verification, when="after a workload action: wait, then escalate"),
    Step(rules.run_pending_migrations, ("migrations",), (Action.RUN_MIGRATION, Action.ESCALATE),
         (DB_OPERATIONS,)),
    Step(rules.diagnose_rate_limit, ("rate_limited",), (Action.DIAGNOSE_RATE_LIMIT,),
         (RATE_LIMITS,), "only when no service check is critical"),
    Step(rules.roll_back_after_recent_rollout, rules.SERVICE_CHECKS,
         (Action.ROLL_BACK, Action.ESCALATE), (ROLLBACK_SECTION, HIGH_LATENCY),
         "a service check critical"),
    Step(rules.scale_up_on_saturation, rules.CAPACITY_CHECKS + rules.POOL_CHECKS,
         (Action.SCALE_UP, Action.ESCALATE), (HIGH_LATENCY, DB_FAILURES),
         "a service check critical, no recent rollout"),
    Step(rules.escalate_without_cause, rules.SERVICE_CHECKS, (Action.ESCALATE,), (P1_SECTION,),
         "a service check critical, no rule above acted"),
    Step(guardrails.apply_guardrails,
         when="on the one action decided: cooldown per action type, the hourly budget, DryRun"),
    Step(storm.held_by_storm, when="a fleet storm explains the breach (decide/storm.py)"),
    Step(guardrails.held_to_escalation,
         when="a budget used up, or a cooldown while the incident got worse"),
)  # fmt: skip
