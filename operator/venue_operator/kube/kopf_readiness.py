"""Kopf's index readiness without its quadratic start (kopf 1.45, `_cogs/aiokits/aiotoggles.py`).

Until every object of an indexed kind (VenueServices, Deployments) is indexed, Kopf holds each
object's handlers on one ToggleSet: a toggle per object, made when its first event comes and
dropped once it is indexed, and every such change wakes every object already waiting
(`notify_all`). At 5,000 VenueServices and 5,000 Deployments that is 10,000 changes each
waking up to 10,000 waiters, one after the other through the condition's lock: each replica
of bench/shards.py spent its first minutes in `Condition.notify_all`, no service evaluated.

The waiters wait for the set's aggregate (`is_on`), which a toggle made or dropped moves only
when it is the first off or the last: here they are woken only then. The same condition, the
same toggles, the same answers to `is_on`; a toggle turned on or off still wakes them all."""

from __future__ import annotations

from collections.abc import Iterable

from kopf._cogs.aiokits.aiotoggles import Toggle, ToggleSet


async def _make_toggle(self: ToggleSet, __val: bool = False, *, name: str | None = None) -> Toggle:
    toggle = Toggle(__val, name=name, condition=self._condition)
    async with self._condition:
        was = self.is_on()
        self._toggles.add(toggle)
        if self.is_on() != was:
            self._condition.notify_all()
    return toggle


async def _drop_toggles(self: ToggleSet, toggles: Iterable[Toggle]) -> None:
    async with self._condition:
        was = self.is_on()
        self._toggles.difference_update(toggles)
        if self.is_on() != was:
            self._condition.notify_all()


async def _drop_toggle(self: ToggleSet, toggle: Toggle) -> None:
    await _drop_toggles(self, (toggle,))


def install() -> None:
    """Replace ToggleSet's membership changes (before the operator starts; idempotent)."""
    ToggleSet.make_toggle = _make_toggle  # type: ignore[method-assign]
    ToggleSet.drop_toggle = _drop_toggle  # type: ignore[method-assign]
    ToggleSet.drop_toggles = _drop_toggles  # type: ignore[method-assign]
