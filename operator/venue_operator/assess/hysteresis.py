"""Hysteresis, pure: a check's level changes only after a streak.

A level change is confirmed after `confirmation.breaches` consecutive cycles towards a worse
level, or `confirmation.recoveries` towards a better one; critical, after `breaches`
consecutive cycles in breach of which most were critical (see `critical_held`). Unknown is a
level like the others: confirmed after `breaches` cycles (a flicker changes neither health nor
severity) and never counting towards a breach. A check back from unknown resumes from its
last known level when that was a breach (a broken service read once as ok stays broken until
it recovers), and otherwise stays unknown until a streak confirms where it is: after a
metrics gap, one reading can call nothing healthy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from venue_operator.model.spec import Confirmation
from venue_operator.model.status import CheckStatus, Level

_RANK = {Level.OK: 0, Level.WARNING: 1, Level.CRITICAL: 2}


@dataclass(frozen=True)
class Confirmed:
    """A check's level after hysteresis, and the streak that may change it."""

    level: Level
    pending: Level | None = None  # the level the streak moves towards
    count: int = 0  # consecutive cycles of that streak
    last_known: Level | None = None  # while unknown: where a known reading resumes from


def confirm(observed: Level, previous: CheckStatus | None, conf: Confirmation) -> Confirmed:
    """Hysteresis for one check. Unknown needs `breaches` cycles like any other level; a
    check back from unknown resumes from its last known breach, or is confirmed afresh."""
    if previous is None:  # first sight: unknown is all there is; a value starts from ok
        if observed is Level.UNKNOWN:
            return Confirmed(Level.UNKNOWN)
        return _towards(observed, Level.OK, None, 0, conf)
    level = previous.level
    if observed is Level.UNKNOWN:
        if level is Level.UNKNOWN:
            return Confirmed(Level.UNKNOWN, last_known=previous.last_known)
        count = previous.pending_count + 1 if previous.pending is Level.UNKNOWN else 1
        if count >= conf.breaches:
            return Confirmed(Level.UNKNOWN, last_known=level)
        return Confirmed(level, Level.UNKNOWN, count)
    base = (previous.last_known if level is Level.UNKNOWN else level) or Level.OK
    if level is Level.UNKNOWN and base is Level.OK:
        return _out_of_unknown(observed, previous, conf)
    if previous.pending in (None, Level.UNKNOWN):  # an unknown reading broke any streak
        return _towards(observed, base, None, 0, conf)
    return _towards(observed, base, previous.pending, previous.pending_count, conf)


def _out_of_unknown(observed: Level, previous: CheckStatus, conf: Confirmation) -> Confirmed:
    """Unknown after a healthy past is left only by a confirmed streak: `recoveries` ok
    readings, or `breaches` in breach (the mildest level they held). A rate read just after
    a metrics gap still spans the gap, and a bad release rolled out during it reads ok."""
    pending = previous.pending if previous.pending is not Level.UNKNOWN else None
    same = pending is not None and (pending is Level.OK) == (observed is Level.OK)
    count = previous.pending_count + 1 if same else 1
    if same and pending is not None and observed is not Level.OK:
        observed = min(pending, observed, key=_RANK.__getitem__)
    if count >= (conf.recoveries if observed is Level.OK else conf.breaches):
        return Confirmed(observed)
    return Confirmed(Level.UNKNOWN, observed, count, last_known=previous.last_known)


def _towards(
    observed: Level, base: Level, pending: Level | None, count: int, conf: Confirmation
) -> Confirmed:
    if observed is base:
        return Confirmed(base)
    escalating = _RANK[observed] > _RANK[base]
    if pending is not None and (_RANK[pending] > _RANK[base]) == escalating:
        count += 1
        # The streak confirms the mildest level it held: warning+critical+critical -> warning.
        pick = min if escalating else max
        pending = pick(pending, observed, key=_RANK.__getitem__)
    else:
        pending, count = observed, 1
    needed = conf.breaches if escalating else conf.recoveries
    if count >= needed:
        return Confirmed(pending)
    return Confirmed(base, pending, count)


def critical_held(breach: Sequence[Level], conf: Confirmation) -> bool:
    """Critical is confirmed by `breaches` consecutive cycles in breach, most of them critical.
    A rate ramps through its window (warning, critical, critical), and a 12% error rate
    measured over ~80 requests dips under the 5% limit now and then (critical, critical,
    warning): neither should cost another full streak. A lone critical spike amid warnings
    still confirms only warning."""
    criticals = sum(level is Level.CRITICAL for level in breach)
    return len(breach) >= conf.breaches and criticals > conf.breaches // 2
