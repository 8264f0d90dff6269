"""An HA control plane on loopback for the ``--members`` tests: member API servers on 127.0.0.1, .2 and .3 (one
port for all, as the real EndpointSlice lists one port), and a load balancer's address that answers the member
look-ups.

The look-up answers are the ones recorded from three real API servers (``fixtures/captures/members``), rebuilt
with the loopback addresses and port in place of the recorded ``192.0.2.x:6443``: the plugin must never be sent
anywhere but this machine. A non-curl client gets compact JSON from the real server (see the captures' README),
so the rebuilt bodies are compact too. Lease ages are set relative to the ``Date`` the server sends, which is the
clock the plugin must judge them by.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import json
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, Optional

import trustme
from fakeapi import FakeApiServer, Reply, healthy_routes, load_capture

MEMBER_HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
HOSTNAMES = ("ckhha-m1", "ckhha-m2", "ckhha-m3")
SLICE_PATH = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes"
ENDPOINTS_PATH = "/api/v1/namespaces/default/endpoints/kubernetes"
LEASES_PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


def _captured_json(relpath: str) -> dict[str, Any]:
    document = json.loads(load_capture(relpath).body)
    assert isinstance(document, dict)
    return document


def _json_reply(relpath: str, document: Mapping[str, Any], headers: Sequence[tuple[str, str]] = ()) -> Reply:
    captured = Reply.from_capture(relpath)
    body = (json.dumps(document, separators=(",", ":")) + "\n").encode()
    return dataclasses.replace(captured, body=body, headers=(*captured.headers, *headers))


def slice_reply(addresses: Sequence[str], port: int, ready: Optional[Sequence[bool]] = None) -> Reply:
    """The recorded three-member EndpointSlice, listing ``addresses`` on ``port``."""
    document = _captured_json("members/endpointslice_kubernetes_3_members_compact_http11.txt")
    document["addressType"] = "IPv6" if addresses and ":" in addresses[0] else "IPv4"
    document["endpoints"] = [{"addresses": [address], "conditions": {"ready": True if ready is None else ready[i]}}
                             for i, address in enumerate(addresses)]
    document["ports"] = [{"name": "https", "protocol": "TCP", "port": port}]
    return _json_reply("members/endpointslice_kubernetes_3_members_compact_http11.txt", document)


def endpoints_reply(addresses: Sequence[str], port: int) -> Reply:
    """The recorded Endpoints object, for clusters without EndpointSlices."""
    document = _captured_json("members/endpoints_kubernetes_3_members.txt")
    document["subsets"] = [{"addresses": [{"ip": address} for address in addresses],
                            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    return _json_reply("members/endpoints_kubernetes_3_members.txt", document)


def leases_reply(ages: Mapping[str, Optional[float]], server_clock_offset: float = 0.0) -> Reply:
    """The recorded identity Leases, one per host in ``ages``, renewed that many seconds before the server's
    clock (``None``: never renewed); the server's clock runs ``server_clock_offset`` seconds ahead of this
    machine's and says so in its ``Date`` header."""
    document = _captured_json("members/identity_leases_3_members.txt")
    template = document["items"][0]
    # The server's clock as its Date header states it: whole seconds.
    now = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=server_clock_offset)
           ).replace(microsecond=0)
    items = []
    for index, (host, age) in enumerate(ages.items()):
        item = json.loads(json.dumps(template))
        item["metadata"]["name"] = f"apiserver-{index:02d}{host}"
        item["metadata"]["labels"]["kubernetes.io/hostname"] = host
        renewed = None if age is None else (now - datetime.timedelta(seconds=age))
        item["spec"]["renewTime"] = None if renewed is None else renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        items.append(item)
    document["items"] = items
    date = email.utils.format_datetime(now, usegmt=True)
    return _json_reply("members/identity_leases_3_members.txt", document, (("Date", date),))


def fresh_leases(count: int = 3) -> Reply:
    return leases_reply({host: 3.0 for host in HOSTNAMES[:count]})


def default_lookups(listed: int = 3, leases: Optional[Reply] = None) -> Callable[[int], dict[str, Reply]]:
    """The first ``listed`` members in the slice, and as many fresh Leases unless ``leases`` says otherwise."""
    return lambda port: {SLICE_PATH: slice_reply(MEMBER_HOSTS[:listed], port),
                         LEASES_PATH: fresh_leases(listed) if leases is None else leases}


@dataclasses.dataclass
class ControlPlane:
    """Running members and the load balancer (``lb``) that answers the look-ups; ``port`` is the members'."""

    lb: FakeApiServer
    members: list[Optional[FakeApiServer]]
    port: int
    ca: trustme.CA

    @property
    def lb_args(self) -> list[str]:
        return ["-s", self.lb.url, "--certificate-authority", self.lb.ca_file]

    def name(self, index: int) -> str:
        """A member as the status line names it."""
        return f"{MEMBER_HOSTS[index]}:{self.port}"

    def prefix(self, index: int) -> str:
        """A member's perfdata label prefix."""
        return MEMBER_HOSTS[index].replace(".", "_") + "_"


def _free_port(hosts: Sequence[str]) -> int:
    """A port free on every one of ``hosts`` at once."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
            try:
                with ExitStack() as stack:
                    for host in hosts[1:]:
                        other = stack.enter_context(socket.socket())
                        other.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port is free on all member addresses")


@contextmanager
def control_plane(member_routes: Sequence[Optional[Mapping[str, Reply]]],
                  lookups: Optional[Callable[[int], Mapping[str, Reply]]] = None,
                  server_names: Optional[Callable[[str], Sequence[str]]] = None,
                  token: Optional[str] = None, anonymous: bool = True) -> Iterator[ControlPlane]:
    """Members on 127.0.0.1-3 with the given routes (``None``: nothing listens there, a killed member), and a
    load balancer answering ``lookups(port)`` (default: every member in the slice, a fresh Lease each) and, as
    a real one forwards them to a healthy member, the health endpoints. ``server_names(host)``: the names a
    member's certificate holds (default: its address and "kubernetes")."""
    ca = trustme.CA()
    hosts = MEMBER_HOSTS[:len(member_routes)]
    port = _free_port(hosts)
    with ExitStack() as stack:
        members: list[Optional[FakeApiServer]] = []
        for host, routes in zip(hosts, member_routes):
            if routes is None:
                members.append(None)
                continue
            names = server_names(host) if server_names is not None else (host, "kubernetes")
            members.append(stack.enter_context(FakeApiServer(routes, ca=ca, host=host, port=port,
                                                             server_names=names, token=token,
                                                             anonymous=anonymous)))
        routes = {**healthy_routes(), **(lookups or default_lookups(len(member_routes)))(port)}
        # The load balancer passes TLS through to a member: its certificate names what a member's names.
        lb_names = ("127.0.0.1", "kubernetes")
        lb = stack.enter_context(FakeApiServer(routes, ca=ca, token=token, anonymous=anonymous, server_names=lb_names))
        yield ControlPlane(lb, members, port, ca)
