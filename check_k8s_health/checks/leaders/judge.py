"""Evaluation of the leader Leases (``--leaders``): which control-plane loops have no leader, for how long, and
what stops while they have none (SPEC section 6c). Pure, like ``checks.endpoints.judge``.

A Lease without a holder, or not renewed within its ``leaseDurationSeconds`` by the server's clock, is CRITICAL by
default (``lease/<namespace>/<name>`` for the policy globs). One such Lease reads as a sentence; several of them as
one phrase that names them all (``no leader for kube-scheduler (31 s), kube-controller-manager (33 s)``), the
sentences going to the long output. A Lease that cannot be judged (not found, forbidden, odd fields) is UNKNOWN
for that Lease alone; unreachable or 5xx is CRITICAL as for an endpoint.
"""

from __future__ import annotations

from typing import Optional, Union

from nagiosplugin.state import Critical, Ok, ServiceState, Unknown, Warn

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.leaders.read import LeaderLease, Leaders, lease_name
from check_k8s_health.checks.shared.judge import (
    RANK,
    Phrase,
    combine,
    duration,
    failure_words,
    fit_problems,
    policy_label,
)
from check_k8s_health.checks.shared.read import Failure
from check_k8s_health.model.policy import Policy

RBAC_FILE = "deploy/rbac.yaml"
ROLE = "check-k8s-health-leaders"
#: What stops while a loop has no leader, as an operator is paged for it.
WHAT_STOPS = {
    "kube-scheduler": "new pods stay Pending",
    "kube-controller-manager": "nothing is reconciled (Deployments, ReplicaSets, Jobs, nodes, garbage collection)",
    "cloud-controller-manager": "new nodes stay uninitialized, LoadBalancer Services are not provisioned",
}
#: A holder's name on the status line: hosts and UUIDs are long, the start tells which one.
HOLDER_SHOWN = 24


class JudgedLease(NamedTuple):
    namespace: str
    name: str
    state: ServiceState
    #: The long-output sentence, and for a Lease without a leader the short form the status line lists.
    sentence: str
    short: str = ""
    lease: Optional[LeaderLease] = None
    #: No holder, or not renewed in time: a fact, whatever the policy makes of it.
    leaderless: bool = False
    label: str = ""
    #: What to do, for the long output (a Lease that could not be read).
    hint: str = ""

    @property
    def component(self) -> str:
        return component(self.namespace, self.name)


class LeadersVerdict(NamedTuple):
    state: ServiceState
    #: Status-line words of every problem, worst first; ``fine`` says what was judged when there is none.
    problems: tuple[str, ...]
    fine: str
    lines: tuple[tuple[int, str], ...]
    items: tuple[JudgedLease, ...]

    @property
    def names(self) -> list[str]:
        """Every name the policy globs could match, so ``-v`` can tell which glob matched nothing."""
        return [lease_name(item.namespace, item.name) for item in self.items]

    def words(self, room: int) -> str:
        return fit_problems(self.problems, self.fine, room)


def component(namespace: str, name: str) -> str:
    """``kube-scheduler`` for the control plane's own, ``cert-manager/cert-manager-controller`` for others."""
    return name if namespace == "kube-system" else f"{namespace}/{name}"


def judge_leaders(leaders: Leaders, policy: Policy) -> LeadersVerdict:
    items = tuple(_judge(namespace, name, found, policy) for (namespace, name), found in leaders.leases)
    leaderless = [item for item in items if item.leaderless and item.state in (Critical, Warn)]
    problems: list[tuple[ServiceState, str]] = []
    if len(leaderless) == 1:
        problems.append((leaderless[0].state, leaderless[0].sentence))
    elif leaderless:
        worst = max((item.state for item in leaderless), key=lambda state: RANK[state])
        problems.append((worst, Phrase("no leader for", [item.short for item in leaderless], " ")))
    problems += [(item.state, item.sentence) for item in items
                 if not item.leaderless and item.state in (Critical, Warn, Unknown)]
    problems.sort(key=lambda problem: -RANK[problem[0]])
    led = sum(item.state == Ok and not item.leaderless for item in items)
    ignored = sum(item.state == Ok and item.leaderless for item in items)
    fine = f"leaders: {led} renewed" + (f", {ignored} ignored by policy" if ignored else "")
    lines = [(1 if item.state != Ok or item.leaderless else 2, _line(item)) for item in items]
    lines += [(1, f"{item.component}: {item.hint}") for item in items if item.hint and item.state != Ok]
    lines += [(1, f"{item.component}: {item.lease.note}") for item in items
              if item.lease is not None and item.lease.note]
    state = combine(item.state for item in items)
    return LeadersVerdict(state, tuple(text for _, text in problems), fine, tuple(lines), items)


def ages(leaders: Leaders) -> list[tuple[str, float]]:
    """Perfdata ``leader_<name>_age``: seconds since each Lease's last renewal, by the server's clock; only the
    Leases whose age could be read. Names that would repeat take their namespace."""
    found = [(namespace, name, lease.age) for (namespace, name), lease in leaders.leases
             if isinstance(lease, LeaderLease) and lease.age is not None]
    repeated = {name for _, name, _ in found if sum(other == name for _, other, _ in found) > 1}
    return [(f"leader_{_label(f'{namespace}_{name}' if name in repeated else name)}_age", age)
            for namespace, name, age in found]


def _judge(namespace: str, name: str, found: Union[LeaderLease, Failure], policy: Policy) -> JudgedLease:
    shown = component(namespace, name)
    chosen = policy.state_of(lease_name(namespace, name), Critical)
    if isinstance(found, Failure):
        state, words, hint = miss_words(found)
        state = Ok if chosen == Ok else state
        # The words name the Lease where the server answered; a connection error names only the server.
        named = words if found.what in words else f"{shown}: {words}"
        return JudgedLease(namespace, name, state, f"{named}{policy_label(state, Unknown) if state == Ok else ''}",
                           hint=hint)
    if found.led:
        return JudgedLease(namespace, name, Ok, f"{shown}: led by {found.holder}, renewed "
                           f"{duration(found.age or 0.0)} ago (lease {found.duration} s)", lease=found)
    if found.holder and found.unreadable:
        state = Ok if chosen == Ok else Unknown
        return JudgedLease(namespace, name, state, f"{shown}: cannot tell whether it has a leader: "
                           f"{found.unreadable}{policy_label(state, Unknown) if state == Ok else ''}", lease=found)
    since = "" if found.age is None else f" for {duration(found.age)}"
    if found.holder:
        cut = found.holder if len(found.holder) <= HOLDER_SHOWN else f"{found.holder[:HOLDER_SHOWN]}..."
        who = f" (last {cut})"
    else:
        who = " (released by its last holder)" if found.age is not None else " (the Lease names no holder)"
    stops = WHAT_STOPS.get(name, "what it controls is not reconciled") if namespace == "kube-system" \
        else "what it controls is not reconciled"
    label = policy_label(chosen, Critical)
    sentence = f"{shown} has had no leader{since}{who}: {stops}{label}"
    short = f"{shown} ({duration(found.age)})" if found.age is not None else shown
    return JudgedLease(namespace, name, chosen, sentence, short, found, leaderless=True, label=label)


def miss_words(miss: Failure) -> tuple[ServiceState, str, str]:
    """State, status-line words and a long-output hint for a Lease whose look-up gave nothing usable."""
    namespace, name = miss.what.removeprefix("Lease ").split("/", 1)
    return failure_words(
        miss,
        (f"HTTP 403, grant get on the Lease {namespace}/{name} (coordination.k8s.io)",
         f"the Role {ROLE} of {RBAC_FILE} grants it by name, read-only"),
        (f"{miss.what} not found: this control plane does not elect {component(namespace, name)} through it",
         "managed control planes may not show their leader Leases; name others with --leader-lease "
         "NAMESPACE/NAME"))


def _line(item: JudgedLease) -> str:
    mark = "[+]" if item.state == Ok and not item.leaderless else "[-]"
    holder = f"; holder {item.lease.holder}" if item.lease is not None and item.lease.holder and item.leaderless \
        else ""
    return one_line(f"{mark} {lease_name(item.namespace, item.name)}: {item.sentence}{holder}", 400)


def _label(text: str) -> str:
    return "".join(char if char.isalnum() else "_" for char in text).lower()
