"""Host names the tests resolve themselves, in place of the system's resolver."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence

from venue_operator.observe.http import Resolver
from venue_operator.tenancy.policy import IPAddress


def static_resolver(names: Mapping[str, Sequence[str]]) -> Resolver:
    """A resolver that knows only `names` (name -> addresses)."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not known")
        return [ipaddress.ip_address(a) for a in names[host]]

    return resolve
