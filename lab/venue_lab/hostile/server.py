"""The hostile server: one loopback HTTP server whose first path segment picks how badly it
answers. Every body it sends carries `MARKER`; the secrets hostile inputs carry are `SECRET`."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from venue_lab.processes import Lifecycle, free_port

MARKER = f"HOSTILE-BODY-{uuid.uuid4().hex[:12]}"
SECRET = f"hostile-secret-{uuid.uuid4().hex[:12]}"
BIG_BYTES = 50 * 1024 * 1024
ERROR_BYTES = 1024 * 1024
LONG_CHECK_CHARS = 2000
# Prometheus URLs a hostile VenueService may name (the operator allows them as an admin would)
PROMETHEUS_PATHS = ("nonjson", "big", "stream", "hang", "err500", "redirect")
# What the exporter in the hostile namespace says of another namespace (/exported/<namespace>):
# Prometheus stores it as exported_namespace="<namespace>" (honor_labels: false)
EXPORTED_METRIC = "shared_info"
EXPORTED_VALUE = 0.4242


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes, kind: str = "application/json", **headers: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _open(self) -> None:
        """A 200 without Content-Length: the body ends when the connection closes."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()

    def do_GET(self) -> None:
        self.server.hits += 1
        route = self.path.split("/")[1]
        # the operator hanging up mid-body is what a bounded client does
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            getattr(self, f"_{route}", self._missing)()

    def _missing(self) -> None:
        self._send(404, b"{}")

    def _nonjson(self) -> None:
        self._send(200, f"<html><body>{MARKER} nonjson</body></html>".encode(), "text/html")

    def _big(self) -> None:
        self._open()
        chunk = (f'"{MARKER}-big",' * 4096).encode()[: 64 * 1024]
        self.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[')
        for _ in range(BIG_BYTES // len(chunk)):
            self.wfile.write(chunk)

    def _stream(self) -> None:
        self._open()
        self.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[')
        item = json.dumps({"metric": {"m": MARKER}, "value": [0, "1"]}).encode() + b","
        while not self.server.released.wait(0.05):  # ~20 small writes a second, forever
            self.wfile.write(item)
            self.wfile.flush()

    def _hang(self) -> None:
        self.server.released.wait(600)

    def _err500(self) -> None:
        self._send(500, (MARKER * (ERROR_BYTES // len(MARKER) + 1)).encode()[:ERROR_BYTES],
                   "text/plain")  # fmt: skip

    def _redirect(self) -> None:
        self.server.redirects += 1
        where = f"/redirect/api/v1/query?access_token={SECRET}&n={self.server.redirects}"
        self._send(302, b"", "text/plain", Location=where)

    def _exported(self) -> None:
        other = self.path.split("/")[2]
        series = f'{EXPORTED_METRIC}{{namespace="{other}"}} {EXPORTED_VALUE}'
        text = f"# TYPE {EXPORTED_METRIC} gauge\n{series}\n"
        self._send(200, text.encode(), "text/plain; version=0.0.4")

    def _longcheck(self) -> None:
        if self.path.rstrip("/").endswith("/health/full"):
            value = (MARKER + " " + "x" * LONG_CHECK_CHARS)[:LONG_CHECK_CHARS]
            body = {"status": "error", "checks": {"database": value, "redis": "ok"}}
            self._send(503, json.dumps(body).encode())
        else:
            self._send(200, b'{"status":"ok"}')


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    released: threading.Event
    redirects: int
    hits: int


class HostileServer(Lifecycle):
    """One loopback HTTP server; its first path segment picks the misbehaviour. It counts
    the requests it gets (`server.hits`)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self.server = _Server((host, self.port), _Handler)
        self.server.released = threading.Event()
        self.server.redirects = 0
        self.server.hits = 0  # requests it got: a canary (arena.py) must get none
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, route: str) -> str:
        return f"http://{self.host}:{self.port}/{route}"

    def prometheus_urls(self) -> tuple[str, ...]:
        return tuple(self.url(p) for p in PROMETHEUS_PATHS)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.released.set()  # hung and streaming handlers end
        self.server.shutdown()
        self.server.server_close()
