"""#23: every address a service URL's host resolves to is judged (tenancy/policy.py's
`address_refusal`), in any IPv6 form; the API server is known by its addresses. Pure."""

from __future__ import annotations

import ipaddress

import pytest

from venue_operator.observe.targets import api_server_of
from venue_operator.tenancy.policy import ApiServer, Tenancy, address_refusal, normal_ip

ip = ipaddress.ip_address
# the lab's shape: the API server on loopback beside the services; a cluster's ClusterIP
API = ApiServer(frozenset({(ip("127.0.0.1"), 6443), (ip("10.96.0.1"), None),
                           (ip("192.168.1.10"), 6443)}))  # fmt: skip
LAB = Tenancy(service_cidrs=("127.0.0.0/8",))
WIDE = Tenancy(service_cidrs=("0.0.0.0/0", "::/0"))


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("::ffff:169.254.169.254", "169.254.169.254"),
        ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible
        ("2002:7f00:1::", "127.0.0.1"),  # 6to4
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64
        ("0.0.0.0", "127.0.0.1"),  # noqa: S104 - connects to this host
        ("::", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::1", "::1"),
        ("10.1.2.3", "10.1.2.3"),
        ("2001:db8::1", "2001:db8::1"),
    ],
)
def test_ipv6_forms_are_judged_as_the_address_they_reach(given: str, normal: str) -> None:
    assert normal_ip(ip(given)) == ip(normal)


@pytest.mark.parametrize(
    ("host", "address", "port", "tenancy", "why"),
    [
        # names: loopback and link-local refused, whatever the name's text passed
        ("evil.mine.svc", "127.0.0.1", 80, Tenancy(), "evil.mine.svc resolves to a loopback"),
        ("evil.mine.svc", "::1", 80, Tenancy(), "loopback"),
        ("evil.mine.svc", "::ffff:127.0.0.1", 80, Tenancy(), "loopback"),
        ("evil.mine.svc", "0.0.0.0", 80, Tenancy(), "loopback"),  # noqa: S104
        ("meta.mine.svc", "169.254.169.254", 80, Tenancy(), "link-local"),
        ("meta.mine.svc", "::ffff:169.254.169.254", 80, Tenancy(), "link-local"),
        ("meta.mine.svc", "64:ff9b::a9fe:a9fe", 80, Tenancy(), "link-local"),
        ("meta.mine.svc", "fe80::1", 80, Tenancy(), "link-local"),
        # names: any other address is the Service's (a ClusterIP, a pod): allowed
        ("venue.mine.svc", "10.96.4.2", 3002, Tenancy(), None),
        ("venue.mine.svc", "fd00::2", 3002, Tenancy(), None),
        # an admin's network allows loopback, but never the API server in it
        ("venue.mine.svc", "127.0.0.1", 3002, LAB, None),
        ("api.mine.svc", "127.0.0.1", 6443, LAB, "the Kubernetes API server"),
        ("127.0.0.1", "127.0.0.1", 6443, LAB, "the Kubernetes API server"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1", 6443, LAB, "the Kubernetes API server"),
        ("0.0.0.0", "0.0.0.0", 6443, LAB, "the Kubernetes API server"),  # noqa: S104
        ("api.mine.svc", "10.96.0.1", 443, WIDE, "the Kubernetes API server"),
        ("api.mine.svc", "::ffff:10.96.0.1", 80, WIDE, "the Kubernetes API server"),
        ("192.168.1.10", "192.168.1.10", 6443, WIDE, "the Kubernetes API server"),
        ("[::ffff:192.168.1.10]", "::ffff:192.168.1.10", 6443, WIDE, "the Kubernetes API server"),
        ("192.168.1.10", "192.168.1.10", 30080, WIDE, None),  # the node's NodePort
        # the API server by the exact host the admin listed (no pattern)
        ("kubernetes.default.svc", "10.96.0.1", 443,
         Tenancy(service_hosts=("kubernetes.default.svc",)), None),
        ("api.example.com", "10.96.0.1", 443, Tenancy(service_hosts=("*.example.com",)),
         "the Kubernetes API server"),
        # addresses written in the URL: inside an allowed network only
        ("10.1.2.3", "10.1.2.3", 80, Tenancy(), "outside --allow-service-cidr"),
        ("10.1.2.3", "10.1.2.3", 80, Tenancy(service_cidrs=("10.0.0.0/8",)), None),
        ("127.0.0.1", "127.0.0.1", 80, Tenancy(), "a loopback address"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1", 80, Tenancy(), "a loopback address"),
        ("169.254.169.254", "169.254.169.254", 80, Tenancy(), "a link-local address"),
        ("169.254.169.254", "169.254.169.254", 80, WIDE, None),  # the admin's choice
    ],
)  # fmt: skip
def test_address(host: str, address: str, port: int, tenancy: Tenancy, why: str | None) -> None:
    literal = host.strip("[]")[0].isdigit() or ":" in host
    refused = address_refusal(host, ip(address), port, tenancy, API, literal=literal)
    if why is None:
        assert refused is None
    else:
        assert refused is not None and why in refused and "nothing fetched" in refused


def test_the_api_server_from_its_service_and_endpoint_slice() -> None:
    service = {"spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1", "fd00::1"]}}
    slice_ = {"endpoints": [{"addresses": ["192.168.1.10"]}, {"addresses": ["192.168.1.11"]}],
              "ports": [{"name": "https", "port": 6443}]}  # fmt: skip
    api = api_server_of(service, slice_, [(ip("127.0.0.1"), 6443)])
    assert api.endpoints == {
        (ip("10.96.0.1"), None), (ip("fd00::1"), None), (ip("192.168.1.10"), 6443),
        (ip("192.168.1.11"), 6443), (ip("127.0.0.1"), 6443),
    }  # fmt: skip
    assert api.has(ip("::ffff:192.168.1.11"), 6443) and not api.has(ip("192.168.1.11"), 80)
    assert api_server_of({}, {}, []).endpoints == frozenset()
