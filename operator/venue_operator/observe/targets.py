"""Where a probe may connect: the tenant boundaries (tenancy/policy.py) applied to every
address a service URL's host resolves to, with the API server's addresses kept current.

The API server is known by its addresses, not by a name a tenant could spell another way:
the `default/kubernetes` Service's ClusterIP, its EndpointSlice's addresses (what the
ClusterIP forwards to: a node or load balancer address an admin's CIDR may cover) and the
address this operator reaches it at. They are read at start and every `REFRESH_S`.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog

from venue_operator.kube import calls
from venue_operator.observe.http import Dialer, Resolver, system_resolver
from venue_operator.tenancy.policy import ApiServer, IPAddress, Tenancy, address_refusal

log = structlog.get_logger(__name__)
REFRESH_S = 60.0  # the API server's endpoints change with control-plane nodes: rarely


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def api_server_of(
    service: dict[str, Any], slice_: dict[str, Any], own: list[tuple[IPAddress, int]]
) -> ApiServer:
    """The API server's addresses from the `default/kubernetes` Service (ClusterIPs, every
    port), its EndpointSlice (each address at each port) and `own` (the operator's)."""
    found: set[tuple[IPAddress, int | None]] = set(own)
    spec = service.get("spec") or {}
    for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
        if ip and ip != "None":
            found.add((ipaddress.ip_address(ip), None))
    ports = [p["port"] for p in slice_.get("ports") or [] if p.get("port")]
    for endpoint in slice_.get("endpoints") or []:
        for ip in endpoint.get("addresses") or []:
            found.update((ipaddress.ip_address(ip), port) for port in ports)
    return ApiServer(frozenset(found))


@dataclass
class ProbeTargets:
    """Where the probes connect: `dialer`, whose connections `judge` admits or refuses."""

    tenancy: Tenancy
    resolver: Resolver = system_resolver
    api_server: ApiServer = field(default_factory=ApiServer)

    def judge(self, host: str, ip: IPAddress, port: int) -> str | None:
        return address_refusal(host, ip, port, self.tenancy, self.api_server,
                               literal=_literal(host))  # fmt: skip

    @property
    def dialer(self) -> Dialer:
        """Connects where `judge` admits, at the addresses `resolver` gives."""
        return Dialer(self.judge, self.resolver)

    async def own_address(self, url: str) -> list[tuple[IPAddress, int]]:
        """The addresses of the API server's URL as the operator uses it, at its port."""
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        if _literal(host):
            return [(ipaddress.ip_address(host), port)]
        try:
            return [(ip, port) for ip in await self.resolver(host, port)]
        except OSError:
            return []

    async def refresh(self, api: calls.Api) -> None:
        """Read the API server's addresses; what cannot be read (a refusal, no EndpointSlice:
        a control plane on loopback keeps none) keeps the addresses known before."""
        own = await self.own_address(calls.api_server_url(api))
        known = self.api_server.endpoints
        service = await self._read(calls.get_service(api, "default", "kubernetes"))
        slice_ = await self._read(calls.get_endpoint_slice(api, "default", "kubernetes"))
        found = api_server_of(service or {}, slice_ or {}, own).endpoints
        if service is None or slice_ is None:
            found |= known
        self.api_server = ApiServer(found)

    @staticmethod
    async def _read(call: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any] | None:
        try:
            return await call
        except Exception as exc:
            # its status or type only: the client's text is the whole header dump
            log.warning("api_server_addresses_unread", error=calls.unreadable(exc))
            return None

    async def refresh_forever(self, api: calls.Api) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            await self.refresh(api)
