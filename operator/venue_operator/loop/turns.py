"""A VenueService's turns on this replica. With shards (fleet/membership.py) its ServiceLoop
exists only while this replica owns the service: built when it gains it (the loop's first
cycle reloads the stored status), dropped when it loses it. Meanwhile a service another member
runs costs one waiting daemon, woken when the members change, and is counted on the fleet
board (`Presence`): at 5,000 services over 4 replicas, 3,750 of each replica's.

Without shards the one loop runs for the daemon's whole life."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from venue_operator.loop.lifetime import Lifetime
from venue_operator.loop.service_loop import ServiceLoop
from venue_operator.model.spec import DependsOn

# Whatever the members do, a waiting service is counted again this often: the fleet board
# leaves out a service it has not heard of within its storm window (60 s by default).
PRESENT_EVERY_S = 20.0
_DEPENDS_ON = TypeAdapter(DependsOn)


class Turns(Protocol):
    """fleet/membership.py's Membership, as the turns see it."""

    def owns(self, key: str) -> bool: ...

    def changed(self) -> Awaitable[object]: ...


class Presence:
    """The services this replica only waits on, counted on the fleet board again together,
    by one task (`recount_forever`). A timer each woke 3,750 waits every 20 s at 5,000 over
    4 (~190 a second), each making two tasks and their futures that lived through young
    collections; a waiting service now makes them once per change of the members."""

    def __init__(self) -> None:
        self._counted: dict[str, Callable[[], None]] = {}

    @contextlib.contextmanager
    def waiting(self, key: str, present: Callable[[], None]) -> Iterator[None]:
        """Counted now, and at each recount until the block ends."""
        present()
        self._counted[key] = present
        try:
            yield
        finally:
            if self._counted.get(key) is present:  # not a newer daemon's of the same name
                del self._counted[key]

    def recount(self) -> None:
        for present in list(self._counted.values()):
            present()

    async def recount_forever(self, every: float = PRESENT_EVERY_S) -> None:
        """Cancelled at shutdown."""
        while True:
            await asyncio.sleep(every)  # a period, not a synchronisation
            self.recount()


async def take_turns(
    key: str, turns: Turns | None, build: Callable[[], ServiceLoop], lifetime: Lifetime,
    present: Callable[[], None] = lambda: None, spread: float | None = None,
    presence: Presence | None = None,
) -> None:  # fmt: skip
    """Run `key`'s loop while this replica owns it, until the lifetime ends; meanwhile it is
    `present` in `presence`. The first loop's first cycle waits a random part of the
    interval (a starting replica's services spread over it); a loop built on a later turn,
    within `spread` (a service taken over is due)."""
    if turns is None:
        await build().run(lifetime)
        return
    presence = presence or Presence()
    first = True
    while not lifetime:
        if turns.owns(key):
            await build().run(lifetime, spread=None if first else spread)
        else:
            with presence.waiting(key, present):
                await lifetime.wait(None, turns.changed())
        first = False


def depends_on(spec: Any) -> tuple[str, ...]:
    """The dependencies a VenueService names, from its raw spec (the fleet board counts a
    service another member runs without this replica validating the whole spec); none when
    they are not valid names, as its loop would refuse the spec."""
    try:
        return tuple(_DEPENDS_ON.validate_python((spec or {}).get("dependsOn") or []))
    except (ValidationError, AttributeError):
        return ()
