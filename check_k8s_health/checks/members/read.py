"""The cluster's own list of its API servers, read into plain data (pure: text in, values out).

Two sources, because neither is enough alone (SPEC section 6a, measured on three real API servers): the
``default/kubernetes`` EndpointSlice (or the Endpoints object of that name) lists the address of every API
server that holds a valid master lease, and drops a member 5-25 s after it dies or at once when it starts to
shut down; the identity Leases in ``kube-system`` carry no address, but a stopped API server's Lease stays behind
unrenewed for up to two hours. So the list says whom to ask, and the Leases say whom the list forgot.

The answers are the server's text: anything not shaped as expected is reported, never trusted. Only IP
addresses are ever asked (a host name in the list would send the plugin wherever DNS points), at most
``MAX_SERVERS`` of them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Optional

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.shared.read import Failure, http_date, json_object, micro_time
from check_k8s_health.model.settings import MAX_SERVERS, Target

#: A Lease renewed within this many seconds is a live API server (they renew every 10 s).
ALIVE_WITHIN = 60.0
SLICE = "EndpointSlice default/kubernetes"
ENDPOINTS = "Endpoints default/kubernetes"
LEASES = "identity Leases in kube-system"


class Member(NamedTuple):
    address: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"https://{host}:{self.port}"


class Listing(NamedTuple):
    """What one EndpointSlice or Endpoints answer lists."""

    members: tuple[Member, ...]
    #: Unique usable addresses listed, before the cap.
    listed: int
    #: Problems with the list itself, each at least WARNING ("3 addresses are not IP addresses").
    problems: tuple[str, ...] = ()
    #: Facts for ``-v`` ("192.0.2.11 listed 2 times").
    notes: tuple[str, ...] = ()


class Lease(NamedTuple):
    host: str
    #: Seconds since the last renewal by the API server's clock; ``None``: never renewed.
    age: Optional[float]
    name: str = ""

    @property
    def alive(self) -> bool:
        return self.age is not None and self.age <= ALIVE_WITHIN


class Roster(NamedTuple):
    """The member list of one run, as found (or not) through the servers named on the command line."""

    #: What was asked and where: "EndpointSlice default/kubernetes via https://10.0.0.1:6443".
    source: str
    listing: Optional[Listing] = None
    #: Why there is no listing; the servers named on the command line are then checked instead.
    failure: Optional[Failure] = None
    #: ``None`` when the Leases could not be read (``lease_failure`` says why).
    leases: Optional[tuple[Lease, ...]] = None
    lease_failure: Optional[Failure] = None
    #: How the Leases were aged, when not by the server's Date header.
    lease_note: str = ""
    #: The members as targets, sharing the named servers' credentials and CA.
    targets: tuple[Target, ...] = ()
    #: The named server the list came from: the one server ``--webhooks`` and ``--aggregated-apis`` ask.
    via: Optional[Target] = None


def parse_slice(text: str) -> Listing:
    """An EndpointSlice: one endpoint per API server, one port for all. Raises ``ValueError`` with a sentence
    when the answer is not one."""
    document = json_object(text, "EndpointSlice")
    endpoints = _list_of(document, "endpoints")
    if not isinstance(endpoints, list):
        raise ValueError("its endpoints are not a list")
    port = _port(document.get("ports"))
    entries: list[tuple[Any, bool]] = []
    notes: list[str] = []
    for endpoint in endpoints:
        addresses = endpoint.get("addresses") if isinstance(endpoint, dict) else None
        if not isinstance(addresses, list) or not addresses:
            entries.append((None, True))
            continue
        conditions = endpoint.get("conditions")
        # The API says an unset "ready" means ready; the API server only ever lists ready members.
        ready = not (isinstance(conditions, dict) and conditions.get("ready") is False)
        entries.append((addresses[0], ready))
        if len(addresses) > 1:
            notes.append(f"an endpoint lists {len(addresses)} addresses: only the first, "
                         f"{one_line(str(addresses[0]), 60)}, is asked")
    return _listing([(address, port, ready) for address, ready in entries], notes)


def parse_endpoints(text: str) -> Listing:
    """The Endpoints object of the same name, for clusters without the EndpointSlice API."""
    document = json_object(text, "Endpoints")
    subsets = _list_of(document, "subsets")
    if not isinstance(subsets, list):
        raise ValueError("its subsets are not a list")
    entries: list[tuple[Any, Any, bool]] = []
    for subset in subsets:
        if not isinstance(subset, dict):
            raise ValueError("a subset is not an object")
        port = _port(subset.get("ports"))
        for key, ready in (("addresses", True), ("notReadyAddresses", False)):
            addresses = _list_of(subset, key)
            if not isinstance(addresses, list):
                raise ValueError(f"its {key} are not a list")
            entries += [(address.get("ip") if isinstance(address, dict) else None, port, ready)
                        for address in addresses]
    return _listing(entries, [])


def parse_leases(text: str, date: Optional[str]) -> tuple[tuple[Lease, ...], str]:
    """The API servers' identity Leases, aged by the server's own clock (``date``, the answer's Date header):
    the monitoring host's clock may be minutes off. Without a usable Date the newest renewal stands in for the
    server's clock, which understates every age by at most the 10 s renewal interval; the note says so."""
    document = json_object(text, "LeaseList")
    items = _list_of(document, "items")
    if not isinstance(items, list):
        raise ValueError("its items are not a list")
    found: list[tuple[str, str, Optional[float]]] = []
    for item in items:
        metadata = item.get("metadata") if isinstance(item, dict) else None
        spec = item.get("spec") if isinstance(item, dict) else None
        if not isinstance(metadata, dict):
            raise ValueError("a Lease has no metadata")
        labels = metadata.get("labels")
        labels = labels if isinstance(labels, dict) else {}
        if labels.get("apiserver.kubernetes.io/identity") != "kube-apiserver":
            continue  # a server that ignored the label selector: not an API server's identity
        name = one_line(str(metadata.get("name") or "(unnamed)"), 80)
        host = labels.get("kubernetes.io/hostname")
        renewed = spec.get("renewTime") if isinstance(spec, dict) else None
        found.append((one_line(host, 80) if isinstance(host, str) and host else name, name,
                      micro_time(renewed) if isinstance(renewed, str) else None))
    now = http_date(date)
    note = ""
    if now is None:
        known = [renewed for _, _, renewed in found if renewed is not None]
        now = max(known) if known else None
        note = ("the Lease answer carried no usable Date header, so ages are counted from the newest renewal "
                "(up to 10 s too young)")
    leases = tuple(Lease(host, None if renewed is None or now is None else max(0.0, now - renewed), name)
                   for host, name, renewed in found)
    return tuple(sorted(leases, key=lambda lease: lease.host)), note


def _list_of(document: Mapping[str, Any], key: str) -> Any:
    """A list field; the API leaves an empty one out (or sends null), anything else is what it is."""
    value = document.get(key)
    return [] if value is None else value


def _port(ports: Any) -> int:
    if not isinstance(ports, list) or not ports:
        raise ValueError("it names no port")
    named = [port for port in ports if isinstance(port, dict) and port.get("name") == "https"]
    chosen = named[0] if named else ports[0] if len(ports) == 1 else None
    number = chosen.get("port") if isinstance(chosen, dict) else None
    if chosen is None:
        raise ValueError("it names several ports and none is called https")
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 65535:
        raise ValueError("its port is not a port number")
    return number


def _listing(entries: list[tuple[Any, int, bool]], notes: list[str]) -> Listing:
    members: list[Member] = []
    counts: dict[Member, int] = {}
    strange: list[str] = []
    not_ready: list[str] = []
    for address, port, ready in entries:
        ip = _ip(address)
        if ip is None:
            strange.append("(no address)" if address is None else one_line(str(address), 40))
            continue
        member = Member(ip, port)
        counts[member] = counts.get(member, 0) + 1
        if counts[member] == 1:
            members.append(member)
            if not ready:
                not_ready.append(ip)
    problems = []
    if strange:
        problems.append(f"{len(strange)} listed {'address is' if len(strange) == 1 else 'addresses are'} not an "
                        f"IP address and not asked ({', '.join(strange[:3])}{', ...' if len(strange) > 3 else ''})")
    if len(members) > MAX_SERVERS:
        problems.append(f"{len(members)} API servers listed: only the first {MAX_SERVERS} are checked")
    notes += [f"{member.address} is listed {count} times" for member, count in counts.items() if count > 1]
    notes += [f"{address} is listed as not ready" for address in not_ready]
    return Listing(tuple(members[:MAX_SERVERS]), len(members), tuple(problems), tuple(notes))


def _ip(address: Any) -> Optional[str]:
    """The address as the plugin will ask it, or ``None`` for anything that is not a unicast IP address."""
    if not isinstance(address, str):
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.is_unspecified or ip.is_multicast:
        return None
    return str(ip)
