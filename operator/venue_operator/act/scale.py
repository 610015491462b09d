"""Write a replica count where it belongs: a Deployment's `spec.replicas`, an HPA's
`spec.minReplicas` or a KEDA ScaledObject's `spec.minReplicaCount`, with the value before
the first scale-up kept in an annotation (keys.SCALED_FROM) on the same object.

Every write is a JSON patch starting with a resourceVersion test, and idempotent: a value
already there is no write. A restore (`expect` given) writes only over the value the
operator itself left: anything else there is somebody else's.
"""

from __future__ import annotations

from typing import Any

from venue_operator.act import ActError, ActResult
from venue_operator.act.retry import retry_conflicts
from venue_operator.decide.capacity import FIELDS
from venue_operator.kube import calls
from venue_operator.model import keys
from venue_operator.model.status import ScaledKind


async def _read(api: calls.Api, namespace: str, kind: ScaledKind, name: str) -> dict[str, Any]:
    if kind is ScaledKind.DEPLOYMENT:
        return await calls.get_deployment(api, namespace, name)
    if kind is ScaledKind.HPA:
        return await calls.get_hpa(api, namespace, name)
    return await calls.get_scaled_object(api, namespace, name)


async def _patch(
    api: calls.Api, namespace: str, kind: ScaledKind, name: str, ops: list[dict[str, Any]]
) -> None:
    if kind is ScaledKind.DEPLOYMENT:
        await calls.patch_deployment(api, namespace, name, ops)
    elif kind is ScaledKind.HPA:
        await calls.patch_hpa(api, namespace, name, ops)
    else:
        await calls.patch_scaled_object(api, namespace, name, ops)


def count_of(obj: dict[str, Any], kind: ScaledKind) -> int:
    """The field's value; the API's defaults when unset (replicas 1, minReplicas 1, KEDA 0)."""
    default = 0 if kind is ScaledKind.SCALED_OBJECT else 1
    return int((obj.get("spec") or {}).get(FIELDS[kind].removeprefix("spec."), default))


def _annotation_ops(obj: dict[str, Any], scaled_from: int | None) -> list[dict[str, Any]]:
    current = ((obj.get("metadata") or {}).get("annotations") or {}).get(keys.SCALED_FROM)
    if scaled_from is None:
        remove = {"op": "remove", "path": calls.annotation_path(keys.SCALED_FROM)}
        return [] if current is None else [remove]
    if current == str(scaled_from):
        return []
    return [calls.set_annotation_op(obj, keys.SCALED_FROM, str(scaled_from))]


async def set_count(
    api: calls.Api,
    namespace: str,
    kind: ScaledKind,
    name: str,
    value: int,
    scaled_from: int | None,
    expect: int | None = None,
) -> ActResult:
    """Raise (expect None: only upwards) or restore (only over `expect`) the count to `value`;
    the annotation says `scaled_from`, or goes when it is None (all given back)."""
    what = f"{kind} {name} {FIELDS[kind]}"

    async def attempt() -> ActResult:
        obj = await _read(api, namespace, kind, name)
        current = count_of(obj, kind)
        done = current >= value if expect is None else current == value
        if done:
            return ActResult(False, f"{what} already at {current} (wanted {value})")
        if expect is not None and current != expect:
            raise ActError(f"{what} is {current}, not the {expect} the operator wrote: "
                           "left to whoever changed it")  # fmt: skip
        ops = [
            calls.resource_version_test(obj),
            {"op": "add", "path": "/" + FIELDS[kind].replace(".", "/"), "value": value},
            *_annotation_ops(obj, scaled_from),
        ]
        await _patch(api, namespace, kind, name, ops)
        return ActResult(True, f"{what} {current} -> {value}")

    return await retry_conflicts(attempt)
