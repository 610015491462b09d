"""Tenant boundaries set by the cluster admin (operator flags): what a namespace user's
VenueService may make the operator fetch, query and do. Pure: the loop and the evaluation
apply these; nothing here does I/O. A service URL is judged twice: its text here
(`service_url_refusal`), then every address its host resolves to (`address_refusal`, applied
by observe/http.py's connector, which connects to the address it judged).
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from venue_operator.model.remediation import Mode
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.tenancy.promql_scope import exported_refusal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
# IPv6 forms that carry an IPv4 address a connection can reach: NAT64's well-known prefix
# (RFC 6052) and the deprecated IPv4-compatible ::a.b.c.d; mapped and 6to4 are ipaddress's
NAT64 = ipaddress.ip_network("64:ff9b::/96")
COMPATIBLE = ipaddress.ip_network("::/96")
API_SERVER_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local")  # fmt: skip


@dataclass(frozen=True)
class Caps:
    """Limits that clamp every spec (a namespace user sets the spec's numbers)."""

    max_replicas: int = 50
    min_cooldown: timedelta = timedelta(seconds=30)
    max_actions_per_hour: int = 20
    min_probe_interval: timedelta = timedelta(seconds=5)
    # Across every VenueService (fleet/rate.py); 0: no fleet-wide limit.
    fleet_actions_per_minute: int = 10


@dataclass(frozen=True)
class Tenancy:
    """The operator's tenant boundaries (cli/main.py's flags); the defaults are the safe ones."""

    caps: Caps = field(default_factory=Caps)
    prometheus_urls: tuple[str, ...] = ()
    """spec.prometheus.url values allowed besides the operator's own --prometheus-url."""
    service_hosts: tuple[str, ...] = ()
    """Host patterns (fnmatch) spec.service.url may name besides the own namespace's Services."""
    service_cidrs: tuple[str, ...] = ()
    """Networks spec.service.url may name by IP address (loopback, link-local included)."""
    api_server: str | None = None
    """The API server's URL as the operator reaches it (refused as a service URL)."""
    alertmanager_urls: tuple[str, ...] = ()
    """spec.notification.alertmanager.url values allowed besides --alertmanager-url."""
    act_namespaces: tuple[str, ...] = ()
    """Namespace globs the operator may act in; empty: all but kube-* and its own."""
    operator_namespace: str | None = None


# --- caps ---------------------------------------------------------------------------


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


def clamp(spec: VenueServiceSpec, caps: Caps) -> tuple[VenueServiceSpec, tuple[str, ...]]:
    """The spec within the caps, and what was clamped (`field from -> to`, spec names)."""
    said: list[str] = []
    r = spec.remediation
    scale = r.scale
    if scale.max_replicas > caps.max_replicas:
        said.append(f"remediation.scale.maxReplicas {scale.max_replicas} -> {caps.max_replicas}")
        scale = scale.model_copy(update={"max_replicas": caps.max_replicas})
    if scale.min_replicas > scale.max_replicas:
        said.append(f"remediation.scale.minReplicas {scale.min_replicas} -> {scale.max_replicas}")
        scale = scale.model_copy(update={"min_replicas": scale.max_replicas})
    cooldowns = {}
    for name in type(r.cooldowns).model_fields:
        value: timedelta = getattr(r.cooldowns, name)
        if value < caps.min_cooldown:
            said.append(f"remediation.cooldowns.{_camel(name)} {_seconds(value)} -> "
                        f"{_seconds(caps.min_cooldown)}")  # fmt: skip
            cooldowns[name] = caps.min_cooldown
    actions = min(r.max_actions_per_hour, caps.max_actions_per_hour)
    if actions < r.max_actions_per_hour:
        said.append(f"remediation.maxActionsPerHour {r.max_actions_per_hour} -> {actions}")
    probe = spec.probe
    if probe.interval < caps.min_probe_interval:
        said.append(f"probe.interval {_seconds(probe.interval)} -> "
                    f"{_seconds(caps.min_probe_interval)}")  # fmt: skip
        probe = probe.model_copy(update={"interval": caps.min_probe_interval})
    if not said:
        return spec, ()
    remediation = r.model_copy(update={
        "scale": scale, "cooldowns": r.cooldowns.model_copy(update=cooldowns),
        "max_actions_per_hour": actions,
    })  # fmt: skip
    return spec.model_copy(update={"remediation": remediation, "probe": probe}), tuple(said)


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


# --- where it acts -------------------------------------------------------------------


def may_act(namespace: str, tenancy: Tenancy) -> bool:
    """Whether the operator may change workloads in `namespace` (else it only observes)."""
    if tenancy.act_namespaces:
        return any(fnmatch.fnmatchcase(namespace, glob) for glob in tenancy.act_namespaces)
    return not namespace.startswith("kube-") and namespace != tenancy.operator_namespace


def observe_only(spec: VenueServiceSpec) -> VenueServiceSpec:
    """The spec with remediation Off: observed and reported, never acted on."""
    remediation = spec.remediation.model_copy(update={"mode": Mode.OFF})
    return spec.model_copy(update={"remediation": remediation})


# --- what it fetches ------------------------------------------------------------------


def _normal(url: str) -> str:
    return url.strip().rstrip("/")


def _listed(url: str, default: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether `url` is the operator's own (`default`) or one the admin allowed."""
    return _normal(url) in {_normal(u) for u in (*allowed, default) if u}


def prometheus_url_refusal(url: str | None, default: str | None, tenancy: Tenancy) -> str | None:
    """Why spec.prometheus.url is refused, or None: only the operator's own Prometheus and
    the URLs the admin listed are queried (the answer lands in the tenant's status)."""
    if url is None or _listed(url, default, tenancy.prometheus_urls):
        return None
    return ("spec.prometheus.url refused: not the operator's Prometheus (the cluster "
            "admin allows others with --allow-prometheus-url); nothing fetched")  # fmt: skip


def alertmanager_url_refusal(url: str | None, default: str | None, tenancy: Tenancy) -> str | None:
    """Why the Alertmanager a VenueService alerts through is refused, or None: the operator's
    own (--alertmanager-url) and those the admin listed; none at all is refused too."""
    if url is None and default is None:
        return ("spec.notification.alertmanager refused: the operator has no "
                "--alertmanager-url and the spec names none; no alert sent")  # fmt: skip
    if url is None or _listed(url, default, tenancy.alertmanager_urls):
        return None
    return ("spec.notification.alertmanager.url refused: not the operator's Alertmanager "
            "(the cluster admin allows others with --allow-alertmanager-url); "
            "no alert sent")  # fmt: skip


def labels_refusal(labels: dict[str, str], namespace: str) -> str | None:
    """matchLabels may not name another namespace, as `namespace` or as a label Prometheus
    moves an exporter's `namespace` into (tenancy/promql_scope.py)."""
    if labels.get("namespace", namespace) != namespace:
        return "spec.prometheus.matchLabels.namespace refused: it must be the VenueService's own"
    refused = (exported_refusal(k, v, namespace) for k, v in sorted(labels.items()))
    return next((f"spec.prometheus.matchLabels.{why}" for why in refused if why), None)


def _host_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (host, port) if host and parts.scheme in ("http", "https") else None


@dataclass(frozen=True)
class ApiServer:
    """Where the Kubernetes API server answers: the `default/kubernetes` Service's ClusterIP
    (every port: the address is the API server's alone), its EndpointSlices' addresses and
    the address the operator itself uses (at their port: on a single-node cluster the node's
    address serves the tenants' NodePorts too)."""

    endpoints: frozenset[tuple[IPAddress, int | None]] = frozenset()

    def has(self, ip: IPAddress, port: int) -> bool:
        ip = normal_ip(ip)
        return (ip, None) in self.endpoints or (ip, port) in self.endpoints


def normal_ip(ip: IPAddress) -> IPAddress:
    """The address a connection to `ip` reaches, as policy judges it: the IPv4 address an
    IPv6 form carries (mapped, compatible, 6to4, NAT64), loopback for the unspecified one
    (0.0.0.0 and :: connect to this host), the scope of fe80::1%eth0 dropped."""
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ipaddress.IPv6Address(ip.packed)  # no scope id
        if ip.ipv4_mapped is not None:
            return normal_ip(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            return normal_ip(ip.sixtofour)
        if ip in NAT64 or (ip in COMPATIBLE and int(ip) > 1):
            return normal_ip(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return ipaddress.IPv6Address(1) if ip.is_unspecified else ip
    return ipaddress.IPv4Address("127.0.0.1") if ip.is_unspecified else ip


def address_refusal(
    host: str, ip: IPAddress, port: int, tenancy: Tenancy, api: ApiServer, *, literal: bool
) -> str | None:
    """Why connecting to `ip`:`port` for a service URL naming `host` is refused, or None:
    never the API server (unless the admin listed `host` exactly in --allow-service-host),
    loopback or link-local outside --allow-service-cidr; an address written in the URL
    (`literal`) must be inside --allow-service-cidr."""
    if api.has(ip, port) and host.strip("[]").lower() not in tenancy.service_hosts:
        return _refusal("the Kubernetes API server")
    why = _ip_refusal(ip, tenancy)
    if why is None or (not literal and why == OUTSIDE):
        return None
    return _refusal(why if literal else f"{host} resolves to {why}")


def _refusal(why: str) -> str:
    return (f"spec.service.url refused: {why} (the cluster admin allows others with "
            "--allow-service-host, --allow-service-cidr); nothing fetched")  # fmt: skip


def _is_api_server(host: str, port: int, tenancy: Tenancy) -> bool:
    if host in API_SERVER_NAMES:
        return True
    api = _host_port(tenancy.api_server) if tenancy.api_server else None
    return api == (host, port)


def _own_service(host: str, namespace: str) -> bool:
    """`<service>.<ns>.svc` or `<service>.<ns>.svc.cluster.local` (one or more labels)."""
    for suffix in (f".{namespace}.svc", f".{namespace}.svc.cluster.local"):
        if host.endswith(suffix) and host[: -len(suffix)]:
            return True
    return False


OUTSIDE = "an IP address outside --allow-service-cidr"


@functools.cache
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An admin's --allow-service-cidr, parsed once (judged at every probe's connection)."""
    return ipaddress.ip_network(cidr, strict=False)


def _ip_refusal(ip: IPAddress, tenancy: Tenancy) -> str | None:
    ip = normal_ip(ip)
    for cidr in tenancy.service_cidrs:
        if ip in _network(cidr):
            return None
    if ip.is_loopback:
        return "a loopback address"
    if any(ip in net for net in LINK_LOCAL):
        return "a link-local address"
    return OUTSIDE


def service_url_refusal(url: str, namespace: str, default: str, tenancy: Tenancy) -> str | None:
    """Why spec.service.url is refused, or None. Allowed: the default URL, Services of the
    VenueService's own namespace, the admin's host patterns and networks; never the API
    server, loopback or link-local unless the admin listed them."""
    found = _host_port(url)
    if found is None:
        return "spec.service.url refused: not an http(s) URL with a host; nothing fetched"
    host, port = found
    listed = any(fnmatch.fnmatchcase(host, p) for p in tenancy.service_hosts)
    why: str | None
    if _is_api_server(host, port, tenancy) and host not in tenancy.service_hosts:
        why = "the Kubernetes API server"
    elif listed or _normal(url) == _normal(default):
        why = None
    else:
        try:
            why = _ip_refusal(ipaddress.ip_address(host.strip("[]")), tenancy)
        except ValueError:
            why = None if _own_service(host, namespace) else (
                f"not a Service of namespace {namespace} (*.{namespace}.svc)")  # fmt: skip
    return None if why is None else _refusal(why)
