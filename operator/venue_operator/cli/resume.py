"""`venue-operator resume NAME [-n NS]`: undo the GitOps suspension the operator made after a
rollback (status.gitops.suspension of the VenueService), once the bad commit is reverted.

The object gets back the value its annotation recorded, unless somebody changed that field
since (then it is left as it is). The VenueService is annotated with the suspension's
correlation id, and the operator, the one writer of its status, clears the suspension there.
"""

from __future__ import annotations

from typing import Any

from venue_operator.act import ActError, gitops_sync
from venue_operator.kube import calls
from venue_operator.model import keys
from venue_operator.model.observations import GitOpsRef
from venue_operator.model.status import GitOpsStatus


async def run_resume(namespace: str, name: str) -> int:
    api = await calls.connect()
    try:
        venue = await calls.get_venueservice(api, namespace, name)
        raw: Any = (venue.get("status") or {}).get("gitops")
        suspension = GitOpsStatus.model_validate(raw).suspension if raw else None
        if suspension is None:
            print(f"{namespace}/{name}: no GitOps suspension to resume")
            return 0
        obj = suspension.object
        ref = GitOpsRef(obj.kind, obj.name, obj.namespace)
        try:
            result = await gitops_sync.resume(api, ref)
        except (ActError, calls.ApiError) as exc:
            print(f"{ref} not resumed: {calls.refusal(exc)}")
            return 1
        print(result.message)
        resumed = {keys.GITOPS_RESUMED: suspension.correlation_id}
        await calls.annotate_venueservice(api, namespace, name, resumed)
        print(f"{namespace}/{name}: the operator clears status.gitops.suspension next cycle")
        return 0
    finally:
        await api.close()
