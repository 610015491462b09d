"""Paging on P1/P2 and escalations through a webhook whose URL (with a token) is in a Secret."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.harness import BAD_IMAGE, FAST, Venue, set_image
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import free_port, wait_until
from venue_lab.session import Lab

TOKEN = "s3cr3t-t0ken-do-not-leak"


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?token={TOKEN}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def webhook_secret(lab: Lab, namespace: str, url: str) -> None:
    lab.cluster.kubectl("create", "secret", "generic", "pager", "-n", namespace,
                        f"--from-literal=url={url}")  # fmt: skip


NOTIFY = {"notification": {"webhookSecretRef": {"name": "pager", "key": "url"}}}


def test_p2_pages_with_the_url_from_the_secret_and_never_leaks_it(
    the_lab: Lab, operator: OperatorProcess, namespace: str, receiver: Receiver,
    following_venue: Callable[..., Venue],
) -> None:  # fmt: skip
    webhook_secret(the_lab, namespace, receiver.url)
    venue = following_venue(**FAST, **NOTIFY)
    set_image(the_lab, venue.namespace, BAD_IMAGE)
    wait_until("a P2 page", lambda: any("[P2]" in b.get("text", "") for b in receiver.bodies), 60)
    page = next(b["text"] for b in receiver.bodies if "[P2]" in b["text"])
    assert f"{namespace}/venue-service" in page and "SeverityChanged" in page
    venue.wait_event("RolledBack", timeout=60)
    # The token is in the Secret only: not in status, Events, or the operator's log.
    everything = json.dumps(venue.status()) + json.dumps(venue.events()) + operator.log()
    assert TOKEN not in everything


def test_a_dead_webhook_never_blocks_remediation(
    the_lab: Lab, namespace: str, following_venue: Callable[..., Venue]
) -> None:
    webhook_secret(the_lab, namespace, f"http://127.0.0.1:{free_port()}/hook?token={TOKEN}")
    venue = following_venue(**FAST, **NOTIFY)
    set_image(the_lab, venue.namespace, BAD_IMAGE)
    venue.wait_event("RolledBack", timeout=60)
    venue.wait_health("Healthy", "None")
