"""The operator with names of the lab's own: `python -m venue_lab.hostile.resolving ARGS...`
runs `venue-operator ARGS...` whose probes resolve `NAMES` as given (every other name through
the system). The production code has no flag for it: this replaces its resolver, as
tests/fault_operator.py replaces its writer."""

from __future__ import annotations

import ipaddress
import sys

from venue_operator.cli import handlers, main
from venue_operator.observe.http import system_resolver
from venue_operator.tenancy.policy import IPAddress

# What a hostile tenant's DNS could answer (allowed as names by --allow-service-host)
LOOPBACK = "127.0.0.2"  # loopback outside the arena's --allow-service-cidr=127.0.0.1/32
NAMES: dict[str, list[str]] = {
    "loopback.hostile.test": [LOOPBACK],
    "mapped-loopback.hostile.test": [f"::ffff:{LOOPBACK}"],
    "metadata.hostile.test": ["169.254.169.254"],
    "mapped-metadata.hostile.test": ["::ffff:169.254.169.254"],
    "apiserver.hostile.test": ["127.0.0.1"],  # the lab's API server answers there
    "mapped-apiserver.hostile.test": ["::ffff:127.0.0.1"],
    "clusterip.hostile.test": ["10.96.0.1"],  # the default/kubernetes Service's
}  # fmt: skip


async def resolve(host: str, port: int) -> list[IPAddress]:
    if host in NAMES:
        return [ipaddress.ip_address(a) for a in NAMES[host]]
    return await system_resolver(host, port)


if __name__ == "__main__":
    handlers.RESOLVER = resolve
    sys.exit(main.main(sys.argv[1:]))
