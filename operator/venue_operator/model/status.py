"""The VenueService status: what the operator observed, decided and did (its audit trail)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from venue_operator.model.fields import Model
from venue_operator.model.pages import OUTBOX_LIMIT, Page
from venue_operator.model.reasons import CHECK_SECTIONS

HISTORY_LIMIT = 50
INCIDENTS_KEPT = 5  # resolved incidents kept in status.incidents, each compacted
IMPACT_TENANTS = 5  # tenants named in an incident's impact


# --- status -------------------------------------------------------------------------


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


class Health(StrEnum):
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"
    DOWN = "Down"
    UNKNOWN = "Unknown"


class Severity(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"
    UNKNOWN = "Unknown"  # blind: no P-level can be given (#21: a blind spot is not "cosmetic")
    NONE = "None"

    @property
    def rank(self) -> int:
        """0 for P1 (the worst) up to 4 for None: a smaller rank is a worse severity."""
        return list(Severity).index(self)


class CheckStatus(Model):
    """One check after hysteresis: `level` is confirmed, `observed` is this cycle's raw level."""

    name: str
    level: Level
    observed: Level | None = Field(
        default=None, description="This cycle's raw level; when not given, `level`."
    )
    pending: Level | None = Field(
        default=None, description="Level the check is moving to, not yet confirmed."
    )
    pending_count: int = Field(default=0, ge=0, description="Consecutive cycles at `pending`.")
    breach: list[Level] = Field(
        default_factory=list,
        max_length=100,
        description="Levels observed in the current breach (its last `confirmation.breaches` "
        "cycles, oldest first); empty when not observed in breach.",
    )
    value: float | None = None
    unit: str | None = None
    warning: float | None = None
    critical: float | None = None
    section: str = Field(description="Runbook section this check belongs to.")
    reason: str | None = Field(default=None, max_length=1024)
    last_known: Level | None = Field(
        default=None,
        description="While unknown: the confirmed level before, from which the check resumes.",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_back_whole(cls, data: Any) -> Any:
        """Stored without `observed` when it is the confirmed level (most cycles): read back
        with it (status_store.py). A missing section (earlier versions left it out while ok)
        is the runbook's."""
        if not isinstance(data, dict):
            return data
        if data.get("observed") is None and "level" in data:
            data = {**data, "observed": data["level"]}
        if "section" not in data and data.get("name") in CHECK_SECTIONS:
            data = {**data, "section": CHECK_SECTIONS[data["name"]]}
        return data


class Condition(Model):
    """metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = Field(default="", max_length=32768)
    last_transition_time: datetime
    observed_generation: int | None = None


class ActionResult(StrEnum):
    IN_PROGRESS = "InProgress"  # written before the workload write: a crash can't lose it
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DRY_RUN = "DryRun"
    SUPPRESSED = "Suppressed"


class ActionRecord(Model):
    at: datetime
    action: str
    reason: str = Field(max_length=2048)
    result: ActionResult
    dry_run: bool = False
    correlation_id: str
    section: str | None = Field(default=None, description="Runbook section.")
    inputs: dict[str, str] = Field(default_factory=dict)


SECTION_CHARS = 256
IMAGE_CHARS = 512  # a rollout's images, comma-separated (cut where read: observe/cluster.py)
BREACHES_KEPT = 32  # an incident's breached checks (incident/breaches.py keeps the first)


class IncidentEntry(Model):
    at: datetime
    severity: Severity
    message: str = Field(max_length=2048)
    section: str | None = Field(
        default=None,
        max_length=SECTION_CHARS,
        description="Runbook section of the action this entry records (kept with the "
        "incident: status.history holds only the last actions).",
    )
    action: str | None = Field(
        default=None, max_length=64, description="The action this entry records, if any."
    )
    result: ActionResult | None = Field(default=None, description="What came of that action.")


class CheckBreach(Model):
    """One check that crossed a threshold in an incident, at its worst."""

    name: str = Field(max_length=64)
    level: Level = Field(description="The worst level it reached: warning or critical.")
    at: datetime = Field(description="When a breach of it was first confirmed in the incident.")
    value: float | None = Field(default=None, description="Its highest value at that level.")
    unit: str | None = Field(default=None, max_length=16)
    limit: float | None = Field(default=None, description="The threshold of that level.")
    section: str | None = Field(default=None, max_length=SECTION_CHARS)


class IncidentRollout(Model):
    """The Deployment's rollout running when the incident opened."""

    revision: int
    template_hash: str = Field(max_length=63)
    image: str | None = Field(
        default=None, max_length=IMAGE_CHARS, description="Its containers' images, comma-separated."
    )
    started_at: datetime | None = Field(
        default=None,
        description="When it began: its ReplicaSet's creation, or for a reused one when the "
        "operator saw it become current.",
    )


class TenantImpact(Model):
    """One tenant's share of an incident (a bounded top N; names are label values)."""

    tenant: str = Field(max_length=64)
    failed_requests: float = Field(ge=0, description="Estimated failed requests since it began.")
    error_percent: float | None = Field(
        default=None, ge=0, le=100, description="Its highest error share in the incident."
    )
    affected: bool = Field(
        default=False, description="Its error share was above the warning threshold."
    )


class Impact(Model):
    """What an incident costs users (runbook P1 step 3, "assess impact"); estimates."""

    updated_at: datetime
    request_rate: float | None = Field(default=None, ge=0, description="Requests per second.")
    failing_rate: float | None = Field(default=None, ge=0, description="5xx per second.")
    peak_failing_rate: float = Field(default=0, ge=0, description="Highest 5xx per second.")
    failed_requests: float = Field(
        default=0, ge=0, description="Estimated, since the first breach observed."
    )
    tenants_affected: int = Field(
        default=0, ge=0, description="Most tenants above the warning error share at once."
    )
    top_tenants: list[TenantImpact] = Field(default_factory=list, max_length=IMPACT_TENANTS)
    checks: list[str] = Field(default_factory=list, max_length=32)
    sections: list[str] = Field(default_factory=list, max_length=32)


class Incident(Model):
    """One episode of non-healthy service, for the post-mortem the runbook asks for."""

    id: str
    opened_at: datetime
    resolved_at: datetime | None = None
    began_at: datetime | None = Field(
        default=None, description="First breach observed (before confirmation)."
    )
    mitigated_at: datetime | None = Field(
        default=None, description="First workload action that succeeded."
    )
    severity: Severity
    escalated: bool = False
    impact: Impact | None = None
    breaches: list[CheckBreach] = Field(
        default_factory=list,
        max_length=BREACHES_KEPT,
        description="Checks that crossed a threshold.",
    )
    rollout: IncidentRollout | None = None
    # From the first breach observed, set when it resolves: "45s", "1m30s"
    # (incident/bookkeeping.py).
    time_to_detect: str | None = Field(default=None, max_length=32)
    time_to_mitigate: str | None = Field(default=None, max_length=32)
    time_to_recover: str | None = Field(default=None, max_length=32)
    timeline: list[IncidentEntry] = Field(default_factory=list, max_length=100)
    # Keys of what was said once per incident, so that a restart never says it again.
    escalations: list[str] = Field(
        default_factory=list, max_length=50, description="Escalations made (one page each)."
    )
    pages: list[str] = Field(
        default_factory=list, max_length=50, description="Pages sent, as reason:severity."
    )
    held: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Reasons given for holding an action back while critical.",
    )


class RolloutRecord(Model):
    """The Deployment's current pod template as the operator first saw it."""

    template_hash: str
    revision: int
    seen_at: datetime
    healthy_since: datetime | None = Field(
        default=None,
        description="Start of the current run of confirmed Healthy cycles with no unknown "
        "reading; after rollback.bakeTime of it the template is known-good (and this is kept "
        "as it was then).",
    )


class ScaledKind(StrEnum):
    """What a scale-up writes: the Deployment, or whoever owns its replica count."""

    DEPLOYMENT = "Deployment"
    HPA = "HorizontalPodAutoscaler"
    SCALED_OBJECT = "ScaledObject"


class CapacityLoan(Model):
    """Capacity added in an incident, to give back after it (scale.restoreAfter): which
    field of which object, its value before the first scale-up, and the value we last wrote
    (anything else found there later means somebody else owns it now)."""

    kind: ScaledKind
    name: str
    field: str = Field(description="spec.replicas, spec.minReplicas or spec.minReplicaCount.")
    original: int = Field(ge=0)
    written: int = Field(ge=0)
    at: datetime = Field(description="When the field was last written by the operator.")


class GitOpsObject(Model):
    kind: Literal["Kustomization", "HelmRelease", "Application"]
    name: str = Field(max_length=253)
    namespace: str = Field(max_length=63)


class GitOpsSuspension(Model):
    """What the operator changed on a GitOps object (also in its annotation, for `resume`)."""

    at: datetime
    correlation_id: str = Field(description="The rollback that the suspension followed.")
    object: GitOpsObject
    change: str = Field(max_length=256, description="e.g. spec.suspend: false -> true.")
    previous: str | None = Field(
        default=None, max_length=4096, description="The field's value before, as JSON."
    )


class GitOpsStatus(Model):
    managed_by: GitOpsObject | None = Field(
        default=None, description="Who applies the Deployment, per its labels/annotations."
    )
    suspension: GitOpsSuspension | None = None
    suspend_error: str | None = Field(
        default=None, max_length=1024, description="Why the last suspension was not made."
    )


class GuardSource(StrEnum):
    """Where the rollout guard reads each pod's counters."""

    DIRECT = "Direct"  # the pod's own /metrics on its IP (rolloutGuard.pods)
    PROMETHEUS = "Prometheus"  # its series labelled by `pod`: where that is unreachable


class RolloutGuardStatus(Model):
    """The rollout being watched (absent between rollouts)."""

    template: str = Field(max_length=63, description="pod-template-hash of the new version.")
    source: GuardSource = Field(
        description="Direct: every pod answered on its IP (rolloutGuard.pods). Prometheus: some "
        "did not (e.g. a NetworkPolicy), their counters come from series labelled by `pod`."
    )
    message: str = Field(default="", max_length=1024)


class EvaluationError(Model):
    at: datetime
    reason: str
    message: str = Field(max_length=1024)


class VenueServiceStatus(Model):
    observed_generation: int | None = None
    health: Health | None = None
    severity: Severity | None = Field(
        default=None,
        description="P1 (worst) to P4, or Unknown; left out while healthy (so that the "
        "printer column is blank), read back as None.",
    )
    ready: str | None = Field(default=None, description="Ready/desired replicas, e.g. 3/3.")
    revision: int | None = Field(default=None, description="Deployment's current revision.")
    checks: list[CheckStatus] = Field(
        default_factory=list,
        max_length=32,
        description="Every check, but those stored in `okChecks`.",
    )
    ok_checks: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Checks ok with nothing pending, by name (their live values: "
        "`venue-operator check`); read back into `checks`.",
    )
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    last_action: ActionRecord | None = None
    history: list[ActionRecord] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    incident: Incident | None = None
    incidents: list[Incident] = Field(
        default_factory=list,
        max_length=INCIDENTS_KEPT,
        description="Resolved incidents before `incident`, oldest first (for post-mortems).",
    )
    rollout: RolloutRecord | None = None
    # pod-template-hash, not revision numbers: a rollback renumbers the revision it reuses.
    healthy_templates: list[str] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    rolled_back_templates: list[str] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    circuit_open: bool = False
    capacity: CapacityLoan | None = Field(
        default=None, description="Capacity added by scale-ups, not given back yet."
    )
    gitops: GitOpsStatus | None = None
    rollout_guard: RolloutGuardStatus | None = None
    last_error: EvaluationError | None = Field(
        default=None, description="The last evaluation that failed; cleared by the next success."
    )
    outbox: list[Page] = Field(
        default_factory=list,
        max_length=OUTBOX_LIMIT,
        description="Pages to the webhook: recorded before they are sent, kept until delivered.",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_back_whole(cls, data: Any) -> Any:
        """A judged status stored without `severity` is healthy: read back as None. Checks
        stored by name in `okChecks` are read back as ok checks, in the runbook's order."""
        if not isinstance(data, dict):
            return data
        if data.get("health") and data.get("severity") is None:
            data = {**data, "severity": Severity.NONE}
        if data.get("okChecks"):
            calm = [{"name": name, "level": Level.OK} for name in data["okChecks"]]
            order = list(CHECK_SECTIONS)
            checks = sorted([*data.get("checks", []), *calm], key=lambda c: (
                order.index(c["name"]) if c["name"] in order else len(order)))  # fmt: skip
            data = {**data, "checks": checks, "okChecks": []}
        return data
