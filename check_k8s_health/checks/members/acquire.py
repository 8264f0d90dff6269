"""Acquisition of the member list (``--members``): the servers named on the command line, usually a load
balancer, are asked for the ``default/kubernetes`` EndpointSlice and for the API servers' identity Leases.

The look-up gets a share of the deadline, not all of it: through a member cut off from etcd the EndpointSlice
took 20-36 s to answer (measured), and the members still have to be checked afterwards. With several named
servers all are asked at once and the first usable list wins. Nothing here judges: a look-up that fails is
handed on as a ``Failure`` for ``judge`` to weigh like any other answer.
"""

from __future__ import annotations

from typing import Union, cast

from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import PluginError
from check_k8s_health.checks.members.read import (
    ENDPOINTS,
    LEASES,
    SLICE,
    Lease,
    Roster,
    parse_endpoints,
    parse_leases,
    parse_slice,
)
from check_k8s_health.checks.shared.read import Failure, parsed
from check_k8s_health.model.settings import Settings, Target
from check_k8s_health.transport.client import HealthClient
from check_k8s_health.transport.parallel import in_parallel

SLICE_PATH = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes"
ENDPOINTS_PATH = "/api/v1/namespaces/default/endpoints/kubernetes"
LEASES_PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
LEASE_SELECTOR = (("labelSelector", "apiserver.kubernetes.io/identity=kube-apiserver"),)
#: The part of the deadline the look-up may take: a healthy server answers in milliseconds, and the rest is
#: left for the members (a /readyz takes 4 s to fail while etcd is down).
LOOKUP_SHARE = 0.35

Leases = tuple[tuple[Lease, ...], str]


def look_up(settings: Settings, deadline: Deadline) -> Roster:
    budget = deadline.share(deadline.seconds * LOOKUP_SHARE, "the member lookup")
    jobs = [lambda target=target: _ask(target, budget) for target in settings.targets]
    results = in_parallel(jobs, budget, enough=lambda roster: roster.listing is not None)
    rosters = [result if isinstance(result, Roster) else
               Roster(f"{SLICE} via {target.url}", failure=Failure(SLICE, target, error=result))
               for target, result in zip(settings.targets, results)]
    roster = next((roster for roster in rosters if roster.listing is not None), rosters[0])
    if roster.listing is None:
        return roster
    template = settings.targets[0]
    tls = template.tls._replace(server_name=settings.member_server_name)
    source = f"listed in the {roster.source}"
    targets = tuple(template._replace(url=member.url, source=source, tls=tls) for member in roster.listing.members)
    return roster._replace(targets=targets)


def _ask(target: Target, budget: Deadline) -> Roster:
    wait = budget.inner()
    ask = wait.inner()  # (see checks.endpoints.acquire: each request ends a step before the wait for it)
    with HealthClient(target, ask) as client:
        listed, leases = in_parallel([lambda: _list(client, target, ask), lambda: _leases(client, target, ask)],
                                     wait)
    if isinstance(listed, PluginError):
        return Roster(f"{SLICE} via {target.url}", failure=Failure(SLICE, target, error=listed))
    roster = cast(Roster, listed)
    if isinstance(leases, PluginError):
        return roster._replace(lease_failure=Failure(LEASES, target, error=leases))
    if isinstance(leases, Failure):
        return roster._replace(lease_failure=leases)
    found, note = cast(Leases, leases)
    return roster._replace(leases=found, lease_note=note)


def _list(client: HealthClient, target: Target, budget: Deadline) -> Roster:
    """The EndpointSlice, or the Endpoints object where the cluster serves no EndpointSlice (404)."""
    answer = client.get(SLICE_PATH, budget=budget, describe=f"the {SLICE} from {target.name}")
    what, parse = SLICE, parse_slice
    if answer.status == 404:
        answer = client.get(ENDPOINTS_PATH, budget=budget, describe=f"the {ENDPOINTS} from {target.name}")
        what, parse = ENDPOINTS, parse_endpoints
    source = f"{what} via {target.url}"
    listing = parsed(answer, what, target, parse)
    if isinstance(listing, Failure):
        return Roster(source, failure=listing)
    return Roster(source, listing, via=target)


def _leases(client: HealthClient, target: Target, budget: Deadline) -> Union[Leases, Failure]:
    answer = client.get(LEASES_PATH, LEASE_SELECTOR, budget=budget, describe=f"the {LEASES} from {target.name}")
    return parsed(answer, LEASES, target, lambda text: parse_leases(text, answer.date))
