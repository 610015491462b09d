"""assess: observations + thresholds + previous checks -> checks, health, severity. Pure.

Each check (checks.py) maps to a runbook section; its level is confirmed by hysteresis
(hysteresis.py); health and severity follow the runbook's "Severity Levels".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from venue_operator.assess.checks import CHECKS, METRIC_CHECKS, Raw, clip
from venue_operator.assess.hysteresis import Confirmed, confirm, critical_held
from venue_operator.model.observations import Observations
from venue_operator.model.spec import Confirmation, VenueServiceSpec
from venue_operator.model.status import CheckStatus, Health, Level, Severity


@dataclass(frozen=True)
class Assessment:
    checks: tuple[CheckStatus, ...]
    health: Health
    severity: Severity
    metrics_available: bool

    def check(self, name: str) -> CheckStatus:
        return next(c for c in self.checks if c.name == name)

    def breaches(self) -> list[CheckStatus]:
        return [c for c in self.checks if c.level in (Level.WARNING, Level.CRITICAL)]


def _check_status(
    name: str, section: str, raw: Raw, previous: CheckStatus | None, conf: Confirmation
) -> CheckStatus:
    confirmed = confirm(raw.level, previous, conf)
    breach: list[Level] = []
    if raw.level in (Level.WARNING, Level.CRITICAL):
        breach = [*(previous.breach if previous else []), raw.level][-conf.breaches :]
    if confirmed.level is not Level.CRITICAL and critical_held(breach, conf):
        confirmed = Confirmed(Level.CRITICAL)
    return CheckStatus(
        name=name,
        level=confirmed.level,
        observed=raw.level,
        pending=confirmed.pending,
        pending_count=confirmed.count,
        breach=breach,
        last_known=confirmed.last_known,
        value=raw.value,
        unit=raw.unit or None,  # "" would show as an empty `Unit:` in kubectl describe
        warning=raw.threshold.warning if raw.threshold else None,
        critical=raw.threshold.critical if raw.threshold else None,
        section=section,
        reason=clip(raw.reason),
    )


def overall(checks: Iterable[CheckStatus]) -> tuple[Health, Severity]:
    """Runbook "Severity Levels": down -> P1, critical -> P2, warning -> P3. A check that
    cannot be judged is no P-level (P4 is "cosmetic", which undersells a blind spot): health
    and severity Unknown, the Healthy condition says what is missing."""
    by_name = {c.name: c for c in checks}
    levels = {c.level for c in by_name.values()}
    pods = by_name.get("pods")
    no_pods_ready = pods is not None and pods.level is Level.CRITICAL and pods.value == 0
    health_down = "health" in by_name and by_name["health"].level is Level.CRITICAL
    if health_down or no_pods_ready:
        return Health.DOWN, Severity.P1
    if Level.CRITICAL in levels:
        return Health.DEGRADED, Severity.P2
    if Level.WARNING in levels:
        return Health.DEGRADED, Severity.P3
    if Level.UNKNOWN in levels:
        return Health.UNKNOWN, Severity.UNKNOWN
    return Health.HEALTHY, Severity.NONE


def assess(
    obs: Observations, spec: VenueServiceSpec, previous: Sequence[CheckStatus] = ()
) -> Assessment:
    """Evaluate every runbook check for one cycle, applying hysteresis against `previous`."""
    before = {c.name: c for c in previous}
    checks = tuple(
        _check_status(name, section, read(obs, spec), before.get(name), spec.confirmation)
        for name, (section, read) in CHECKS.items()
    )
    health, severity = overall(checks)
    # Confirmed levels, like health: a one-cycle gap is no outage worth a condition flip.
    metrics_available = any(c.level is not Level.UNKNOWN for c in checks if c.name in METRIC_CHECKS)
    return Assessment(checks, health, severity, metrics_available)
