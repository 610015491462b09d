"""record: which changes of a VenueService's status are worth a write.

Pure functions: the status less what moves every cycle (`significant`), its mark (the
store compares the one written), and the causes between two (`write_causes`): a steady
service costs no API writes.
"""

from __future__ import annotations

import json
import re
from typing import Any

from venue_operator.incident.impact import material
from venue_operator.model.status import Level, VenueServiceStatus

# An unknown check's reason is worth a write, its numbers are not: they move every cycle in
# some ("the operator's event loop ran 5.8s late", "3 queries ... in flight"), which made a
# degraded fleet write its status every cycle (1,192 status writes a cycle at 5,000).
_FIGURES = re.compile(r"\d+(?:\.\d+)?")
# Nor is which way an answer came late: this replica's event loop ran late, Prometheus was
# slow, a query or a probe took too long. A degraded fleet's reasons moved between those
# wordings from cycle to cycle, each move a write: 3,520 `error_rate.reason` writes on one
# replica of run 24 (5,000 over 4), 2,600-3,200 a replica in run 25. The wording written
# when the check went unknown stays (its Event says it too) until something else is written.
_LATE = re.compile(r"not read within|no answer within|not complete within|ran # late|is slow")
LATE = "an answer not in time"


def significant(status: VenueServiceStatus) -> dict[str, Any]:
    """Status minus what moves every cycle: measured values, reasons, condition messages."""
    data = status.model_dump(mode="json", exclude={"checks"})
    # An unknown check's reason is what it is waiting for (stable text): worth a write.
    # Limits and units follow the spec (a change to it is a new generation, written anyway);
    # a calm check is stored without them (kube/status_store.py).
    moving = {"value", "unit", "warning", "critical"}
    data["checks"] = [
        c.model_dump(
            mode="json", exclude=moving if c.level is Level.UNKNOWN else moving | {"reason"}
        )
        for c in status.checks
    ]
    for check in data["checks"]:  # its words, not its figures: "ran 5.8s late", "3 in flight"
        if check.get("reason"):
            words = _FIGURES.sub("#", check["reason"])
            check["reason"] = LATE if _LATE.search(words) else words
    for cond in data["conditions"]:
        cond.pop("message", None)
    if status.incident is not None:  # its impact and its breaches' peaks move every cycle
        data["incident"]["impact"] = material(status.incident.impact)
        for breach in data["incident"]["breaches"]:
            breach.pop("value", None)
    return data


def steady_mark(status: VenueServiceStatus) -> str:
    """What `write_causes` compares, as one string: two statuses with equal marks give no
    cause (a different mark may still give none: `write_causes` says)."""
    return marked(significant(status))


def marked(data: dict[str, Any]) -> str:
    """`significant`'s dict as its mark (`json.loads` gives the dict back)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def write_causes(stored: VenueServiceStatus, new: VenueServiceStatus) -> list[str]:
    """What changed that is worth a status write: status fields, or `check.field` for checks.
    Empty unless something an on-call engineer acts on changed (levels, breaches on their
    way, health, conditions, actions): a steady service costs no API writes, nor does a read
    that failed once. Check values ride along with such a write; live values come from
    `venue-operator check` and the metrics."""
    return causes_between(significant(stored), significant(new))


def bake_begun(before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    """Only a bake's start (`rollout.healthy_since`) differs from the rollout written: it
    rides along with the next write. Written on its own, every new service and every
    rollout wrote once more, and each unknown cycle while baking twice (its end, then the
    next start): at 5,000 services starting, 1,700-2,400 writes a replica, the largest cause.
    A start stays unwritten until something else is, so a replica taking the service over
    bakes again from its own first clean cycle (later, never sooner); once written, its end
    is written too (a change from a start), so a stored start never covers a gap."""
    if not before or not after or before.get("healthy_since") is not None:
        return False
    return {**after, "healthy_since": None} == before


# A check's streak towards another level: this cycle's reading and the hysteresis' count.
STREAK = ("observed", "pending", "pending_count", "breach")
BREACH_WRITTEN_FROM = 2  # readings in breach in a row: a breach on its way is written


def causes_between(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """`write_causes` of two statuses' `significant` dicts. A streak that starts from a
    written check with none is not worth a write of its own until it is a breach read twice
    in a row: one reading towards unknown, a recovery, or a breach read once rides along with
    the next write, or goes as it came (a late read, a probe that timed out once). Written
    from its first reading, each lone breach reading cost two writes (its start, then its
    end): 77 a cycle on a lagging replica at 5,000 over 4. Once a streak is written, each
    change of it is, so what is stored is no streak or the one as it stands: a replica taking
    the service over never counts one further than it went (at most one short: it confirms
    a cycle later, never sooner). A bake's start alone is not worth a write either
    (`bake_begun`)."""
    causes = [key for key in after if key != "checks" and before.get(key) != after[key]]
    if "rollout" in causes and bake_begun(before.get("rollout"), after["rollout"]):
        causes.remove("rollout")
    old_checks = {c["name"]: c for c in before["checks"]}
    for check in after["checks"]:
        old = old_checks.get(check["name"], {})
        no_streak = old.get("observed") == old.get("level") and not (
            old.get("pending") or old.get("pending_count") or old.get("breach")
        )
        quiet = no_streak and len(check.get("breach") or ()) < BREACH_WRITTEN_FROM
        causes += [f"{check['name']}.{k}" for k, v in check.items()
                   if old.get(k) != v and not (quiet and k in STREAK)]  # fmt: skip
    if len(after["checks"]) != len(before["checks"]):
        causes.append("checks")
    return causes
