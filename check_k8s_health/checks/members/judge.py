"""Evaluation of the member list (``--members``): what the list and the identity Leases say beyond the members'
own health (SPEC section 6a).

A list of survivors alone can look healthy while a member is down (it leaves the list 5-25 s after it dies), so
the Leases count who is really there: a Lease renewed within 60 s whose server is not listed is up but not
serving (shutting down, cut off from etcd, just stopped), and a Lease left unrenewed names a silent server by
host. Both are at least WARNING. When every Lease went unrenewed while every member answers ready, the servers
are not silent: none of them can write (etcd out of space refuses every write, the Leases' renewals included;
SPEC section 6c), and the line says so instead of naming each server. Pure, like ``checks.endpoints.judge``: every
row of the state table is a call.
"""

from __future__ import annotations

from typing import Optional

from nagiosplugin.state import Critical, Ok, ServiceState, Unknown, Warn

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.members.read import ENDPOINTS, LEASES, SLICE, Lease, Listing, Roster
from check_k8s_health.checks.shared.judge import duration, status_message
from check_k8s_health.checks.shared.judge import failure_words as generic_words
from check_k8s_health.checks.shared.read import Failure
from check_k8s_health.model.settings import Settings

#: The RBAC rule each look-up needs, as an operator would write it (deploy/rbac.yaml grants all three).
RULES = {
    SLICE: 'grant get on endpointslices (discovery.k8s.io) named "kubernetes" in namespace default',
    ENDPOINTS: 'grant get on endpoints named "kubernetes" in namespace default',
    LEASES: "grant list on leases (coordination.k8s.io) in namespace kube-system",
}
RBAC_FILE = "deploy/rbac.yaml"


class MemberVerdict(NamedTuple):
    #: The worst of what the list says; ``firm`` is the part ``--min-healthy`` cannot soften (a failed look-up).
    state: ServiceState
    firm: ServiceState
    #: Status-line words, worst first; ``lead`` goes before the servers' count (a failed look-up).
    problems: tuple[str, ...]
    lead: str
    lines: tuple[tuple[int, str], ...]
    #: API servers the control plane has, as far as this run can tell.
    known: int
    listed: Optional[int]
    alive: Optional[int]


def judge_roster(roster: Roster, settings: Settings, checked: int, all_ready: bool = False) -> MemberVerdict:
    """``checked``: how many servers were checked (the members, or the named servers when there are none);
    ``all_ready``: every one of them answered every endpoint with 200."""
    expect = settings.expect_members
    listing = roster.listing
    if listing is None:
        failure = roster.failure
        state, words, hint = (Unknown, "no member list", "") if failure is None else failure_words(failure)
        lines = [(1, f"members: {words}; the servers named were checked instead")]
        lines += [(1, hint)] if hint else []
        return MemberVerdict(state, state, (), f"no member list: {words}", tuple(lines),
                             max(checked, expect or 0), None, None)
    problems: list[tuple[ServiceState, str]] = [(Warn, problem) for problem in listing.problems]
    firm: ServiceState = Ok
    lead = ""
    if not listing.members:
        firm = Critical
        lead = f"the {roster.source.split(' via ')[0]} lists no API server"
    leases = roster.leases or ()
    alive = [lease for lease in leases if lease.alive]
    if len(alive) > listing.listed:
        missing = len(alive) - listing.listed
        problems.append((Warn, f"{len(alive)} alive by Lease, {listing.listed} listed: {missing} not serving"))
    renewed = [lease.age for lease in leases if lease.age is not None]
    if leases and not alive and listing.members and all_ready and len(renewed) == len(leases):
        cause = "" if settings.write_lease is not None else ", is etcd out of space? --write-probe tells"
        problems.append((Warn, f"no API server has renewed its identity Lease for {duration(min(renewed))} while all "
                               f"answer ready: writes are failing{cause}"))
    else:
        problems += [(Warn, _silent(lease)) for lease in leases if not lease.alive]
    if expect is not None and listing.listed != expect:
        problems.append((Warn, f"{listing.listed} of {expect} API servers listed" if listing.listed < expect else
                         f"{listing.listed} API servers listed, {expect} expected (--expect-members)"))
    state = max([firm, *(state for state, _ in problems)])
    known = max(checked if listing.members else 0, listing.listed, len(leases), expect or 0)
    return MemberVerdict(state, firm, tuple(words for _, words in problems), lead, tuple(_lines(roster, listing)),
                         known, listing.listed, len(alive) if leases else None)


def failure_words(failure: Failure) -> tuple[ServiceState, str, str]:
    """State, status-line words and a long-output hint for a look-up that gave nothing usable."""
    return generic_words(failure, ("{head}: " + RULES.get(failure.what, "") + f" ({RBAC_FILE})",
                                   f"{RBAC_FILE} grants exactly what is missing"),
                         ("{head} for {source}: not a Kubernetes API server, or a very old one",
                          "{url}: the EndpointSlice and the Endpoints object default/kubernetes exist in every "
                          "cluster"))


def _silent(lease: Lease) -> str:
    if lease.age is None:
        return f"{lease.host} never renewed its Lease"
    return f"{lease.host} silent for {duration(lease.age)}"


def _lines(roster: Roster, listing: Listing) -> list[tuple[int, str]]:
    addresses = ", ".join(member.url for member in listing.members) or "none"
    lines = [(1, f"members: {listing.listed} listed in the {roster.source}: {addresses}")]
    lines += [(1, f"members: {note}") for note in listing.notes]
    if roster.leases is None:
        failure = roster.lease_failure
        answer = failure.answer if failure is not None else None
        why = ("not asked" if failure is None else
               f"HTTP 403: {status_message(answer.body, 400)}" if answer is not None and answer.status == 403 else
               failure_words(failure)[1])
        rule = RULES[LEASES]
        lines.append((1, f"identity Leases not read ({one_line(why, 400)}): an API server that has left the list "
                         f"(stopped, shutting down, cut off from etcd) goes unnoticed; {rule} ({RBAC_FILE})"))
    elif not roster.leases:
        lines.append((1, "no identity Leases (Kubernetes before 1.26, or the APIServerIdentity feature is off): "
                         "an API server that has left the list goes unnoticed; --expect-members N pins the count"))
    for lease in roster.leases or ():
        age = "never renewed" if lease.age is None else f"renewed {duration(lease.age)} ago"
        lines.append((1, f"Lease {lease.host}: {age} ({'alive' if lease.alive else 'silent'})"))
    if roster.lease_note:
        lines.append((2, f"Leases: {roster.lease_note}"))
    return lines
