"""GitOps in the glue, fast: the ServiceLoop of test_service_loop.py, with a Deployment that
Flux applies and a stand-in for the GitOps writer (suspends, or is refused)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import kopf

from tests.unit.test_service_loop import (
    NAME,
    NS,
    World,
    bad_rollout,
    forbidden,
    healthy_with_known_good,
    pages_saying,
)
from venue_operator.act import ActError, ActResult
from venue_operator.act.gitops_sync import plan_suspend
from venue_operator.decide import gitops
from venue_operator.loop.service_loop import ServiceLoop
from venue_operator.model import keys
from venue_operator.model.observations import GitOpsRef
from venue_operator.model.reasons import Reason
from venue_operator.model.status import GitOpsStatus, GitOpsSuspension

FLUX = GitOpsRef("Kustomization", "apps", "flux-system")


@dataclass
class FakeGitOps:
    """act/gitops.suspend without the API server: its own trust rule and plan, on an
    unsuspended Kustomization, or one a human suspended (the round trip itself is
    tests/integration/test_gitops_acts.py)."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    refuse: bool = False
    untrusted: bool = False
    by_a_human: bool = False  # spec.suspend already true, set by somebody else

    async def suspend_gitops(
        self, ref: GitOpsRef, namespace: str, deployment: str, who: str, rid: str, now: datetime
    ) -> tuple[ActResult, GitOpsSuspension | None]:
        if self.refuse:
            raise forbidden()
        if self.untrusted:  # the real rule, on a Kustomization whose status lists nothing
            raise ActError(gitops.refusal(ref, {}, namespace, deployment) or "allowed")
        done = bool(self.calls)  # the second call finds it suspended, as the real act does
        self.calls.append((ref, namespace, deployment, rid))
        spec = {"suspend": True} if self.by_a_human else {}
        plan = plan_suspend(ref, {"metadata": {"resourceVersion": "1"}, "spec": spec}, who, rid,
                            now)  # fmt: skip
        if plan.ops is None and plan.suspension is None:
            return ActResult(False, plan.message), None
        return ActResult(not done, plan.message), plan.suspension


@dataclass
class FluxWorld(World):
    gitops: FakeGitOps = field(default_factory=FakeGitOps)
    annotations: dict[str, str] = field(default_factory=dict)  # on the VenueService

    def indexes(self) -> dict[str, Any]:
        indexes = super().indexes()
        indexes["deployments"][(NS, NAME)][0]["gitops"] = FLUX
        return indexes

    def loop(self, name: str = NAME) -> ServiceLoop:
        loop = super().loop(name)
        loop.ports.gitops = self.gitops
        loop.remediator.gitops = self.gitops
        raw = dict(loop.body)
        loop.body = kopf.Body({**raw, "metadata": {**raw["metadata"],
                                                   "annotations": self.annotations}})  # fmt: skip
        return loop


def suspending() -> FluxWorld:
    world = FluxWorld()
    world.spec = {**world.spec, "remediation": {**world.spec["remediation"],
                                                "gitops": {"suspend": True}}}  # fmt: skip
    return world


def message(world: World, reason: Reason) -> str:
    (event,) = [e for k, e in world.events.posted if k == "VenueService" and e.reason is reason]
    return event.message


def nothing_suspended(world: World) -> GitOpsStatus:
    """The GitOps status, which records no suspension of ours (nothing to resume)."""
    status = world.status().gitops
    assert status is not None and status.suspension is None
    return status


async def after_a_rollback(world: FluxWorld) -> None:
    """Known-good, then a bad rollout, and cycles enough for the rollback and what follows."""
    loop = await healthy_with_known_good(world)
    await bad_rollout(world, loop)
    await world.cycles(loop, 6)


async def test_a_rollback_suspends_the_kustomization_says_so_and_pages_once() -> None:
    world = suspending()
    await after_a_rollback(world)
    assert world.status().gitops.managed_by.name == "apps"  # type: ignore[union-attr]
    (rollback,) = world.history("RollBack")
    assert [c[3] for c in world.gitops.calls] == [rollback.correlation_id]
    rolled_back = message(world, Reason.ROLLED_BACK)
    assert "Kustomization flux-system/apps suspended by the operator" in rolled_back
    assert f"venue-operator resume {NAME} -n {NS}" in rolled_back
    assert world.events.reasons().count(Reason.GITOPS_SUSPENDED) == 1
    suspension = world.status().gitops.suspension  # type: ignore[union-attr]
    assert suspension is not None and suspension.correlation_id == rollback.correlation_id
    assert len(pages_saying(world, Reason.ROLLED_BACK)) == 1


async def test_without_suspend_the_event_says_what_a_human_must_do() -> None:
    world = FluxWorld()
    await after_a_rollback(world)
    assert world.gitops.calls == []
    rolled_back = message(world, Reason.ROLLED_BACK)
    assert "Kustomization flux-system/apps will re-apply the rolled-back revision" in rolled_back
    assert "flux suspend kustomization apps -n flux-system" in rolled_back


async def test_the_template_re_applied_by_gitops_is_said_as_such_and_paged_once() -> None:
    """The Deployment stays on the bad template (as if Flux re-applied it at once): the loop
    guard escalates under its own reason, not `Escalated`, and once."""
    world = FluxWorld()
    await after_a_rollback(world)
    reapplied = message(world, Reason.REAPPLIED_BY_GITOPS)
    assert "Kustomization flux-system/apps re-applied pod template ccc" in reapplied
    assert Reason.ESCALATED not in world.events.reasons()
    assert len(pages_saying(world, Reason.REAPPLIED_BY_GITOPS)) == 1
    assert len(world.history("RollBack")) == 1


async def test_a_kustomization_a_human_suspended_is_said_so_not_to_be_suspended() -> None:
    world = suspending()
    world.gitops.by_a_human = True
    await after_a_rollback(world)
    rolled_back = message(world, Reason.ROLLED_BACK)
    assert "Kustomization flux-system/apps already suspended (not by the operator)" in rolled_back
    assert "suspend it" not in rolled_back and "flux suspend" not in rolled_back
    assert Reason.GITOPS_SUSPENDED not in world.events.reasons()
    (page,) = pages_saying(world, Reason.ROLLED_BACK)
    assert page.message.endswith(rolled_back)
    nothing_suspended(world)


async def test_a_missing_permission_is_said_and_recorded_not_raised() -> None:
    world = suspending()
    world.gitops.refuse = True
    await after_a_rollback(world)
    assert world.history("RollBack")[0].result == "Succeeded"  # the rollback itself stands
    missing = message(world, Reason.PERMISSION_MISSING)
    assert "permission missing" in missing and "403 Forbidden" in missing
    status = nothing_suspended(world)
    assert status.suspend_error and "permission missing" in status.suspend_error
    assert "flux suspend kustomization" in message(world, Reason.ROLLED_BACK)


async def test_resume_is_acknowledged_once_by_correlation_id() -> None:
    world = suspending()
    await after_a_rollback(world)
    rid = world.history("RollBack")[0].correlation_id
    world.annotations = {keys.GITOPS_RESUMED: "some-other-id"}
    await world.cycles(world.loop(), 2)
    assert world.status().gitops.suspension is not None  # type: ignore[union-attr]
    world.annotations = {keys.GITOPS_RESUMED: rid}
    await world.cycles(world.loop(), 3)
    assert world.status().gitops.suspension is None  # type: ignore[union-attr]
    assert world.events.reasons().count(Reason.GITOPS_RESUMED) == 1


async def test_an_object_the_trust_rule_refuses_is_said_and_recorded() -> None:
    world = suspending()
    world.gitops.untrusted = True
    await after_a_rollback(world)
    failed = message(world, Reason.GITOPS_SUSPEND_FAILED)
    assert "does not list Deployment shop/venue-service" in failed
    assert Reason.PERMISSION_MISSING not in world.events.reasons()
    assert nothing_suspended(world).suspend_error == failed
