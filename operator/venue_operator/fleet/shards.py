"""Which replica owns which VenueService: rendezvous hashing over the live members.

Each replica holds a Lease (kube/leases.py) and renews it; the live members are those whose
Lease has not expired. A service's owner is the member with the highest hash of (member,
service): every replica computes the same owner from the same members, and a member joining or
leaving moves only the services it gains or loses (about 1/N of them), not a reshuffle."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Member:
    """One replica's Lease as read: who holds it, when it was last renewed, for how long, and
    what it publishes for the others (fleet/exchange.py)."""

    name: str
    renewed: datetime
    duration: timedelta
    annotations: Mapping[str, str] = field(default_factory=dict)

    def live(self, now: datetime) -> bool:
        return now < self.renewed + self.duration


def live(members: Iterable[Member], now: datetime) -> tuple[str, ...]:
    """The members whose Lease has not expired, by name, sorted."""
    return tuple(sorted({m.name for m in members if m.live(now)}))


def _weight(member: str, key: str) -> bytes:
    return hashlib.sha256(f"{member}\x00{key}".encode()).digest()


def owner(key: str, members: Sequence[str]) -> str | None:
    """The member that owns `key` (e.g. "namespace/name"); None when there is none."""
    return max(members, key=lambda member: _weight(member, key)) if members else None
