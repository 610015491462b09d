"""Kopf's diff base is never built (kube/kopf_diffbase.py): no deep copy of each VenueService
at every event, and no changing handler that would need one."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from venue_operator.cli import handlers
from venue_operator.kube.kopf_diffbase import NoDiffBase, check_registry
from venue_operator.kube.permissions import PermissionReport
from venue_operator.model.spec import GROUP, PLURAL, VERSION


def body() -> kopf.Body:
    return kopf.Body({
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "VenueService",
        "metadata": {"name": "v", "namespace": "n", "annotations": {"team": "a"}},
        "spec": {"deployment": "v"},
        "status": {"checks": [{"name": f"c{i}", "level": "ok"} for i in range(50)]},
    })  # fmt: skip


def test_nothing_is_built_kept_or_found() -> None:
    storage, patch = NoDiffBase(), kopf.Patch()
    essence = storage.build(body=body(), extra_fields=["status.checks"])
    storage.store(body=body(), patch=patch, essence=essence)
    assert essence == {} and storage.fetch(body=body()) is None and not patch


def test_the_operators_registry_has_no_changing_handler() -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(PermissionReport(missing={}), registry)
    assert registry._spawning.get_all_handlers()  # the daemon is registered
    check_registry(registry)  # and nothing that diffs


def test_a_changing_handler_is_refused() -> None:
    registry = kopf.OperatorRegistry()

    def on_update(**_: Any) -> None: ...

    kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="spec-edit")(on_update)
    with pytest.raises(RuntimeError, match="spec-edit"):
        check_registry(registry)
