"""With --log-json every line the operator writes is one JSON object, Kopf's included (a log
pipeline parses them line by line; a plain-text line among them is lost or breaks it)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.harness import BAD_IMAGE, FAST, Venue, set_image
from venue_lab.operator_process import OperatorProcess
from venue_lab.session import Lab


def test_every_line_is_a_json_object(
    the_lab: Lab, operator: OperatorProcess, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST)
    set_image(
        the_lab, venue.namespace, BAD_IMAGE
    )  # warnings, Events, a rollback: lines of all kinds
    venue.wait_event("RolledBack", timeout=60)
    lines = [line for line in operator.log(100_000).splitlines() if line.strip()]
    kopf_lines = 0
    for line in lines:
        record = json.loads(line)  # raises on the first line that is not JSON
        assert isinstance(record, dict), line
        kopf_lines += "event" not in record  # Kopf's formatter writes "message", ours "event"
    assert kopf_lines > 0, "Kopf's own lines are in the log too"
