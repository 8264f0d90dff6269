"""Evaluation of the write probe (``--write-probe``): whether the API server could write, and how fast (SPEC
section 6c). Pure, like ``checks.endpoints.judge``.

A write refused with etcd's ``database space exceeded`` is the cluster-wide outage ``/readyz`` cannot see: every
write is refused until an operator frees space and disarms the alarm. Any other refusal, a 5xx or no answer in
time is CRITICAL and named; a Lease that is missing or may not be written is UNKNOWN and says which manifest or
rule fixes it. The policy name is ``write/<namespace>/<name>``.
"""

from __future__ import annotations

from typing import Optional

from nagiosplugin.state import Critical, Ok, ServiceState, Unknown, Warn

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.checks.shared.judge import failure_words, policy_label, status_message
from check_k8s_health.checks.shared.read import Failure
from check_k8s_health.checks.writes.read import WriteProbe, out_of_space, probe_name
from check_k8s_health.model.policy import Policy

RBAC_FILE = "deploy/rbac.yaml"
ROLE = "check-k8s-health-write-probe"
FULL = "etcd is out of space: every write is refused"
FULL_HINT = ("etcd raised its NOSPACE alarm (etcdctl alarm list): free space (delete what filled it), compact and "
             "defragment (etcdctl compact, etcdctl defrag), or raise etcd's --quota-backend-bytes; then "
             "etcdctl alarm disarm, without which writes stay refused however much space is free")
#: What a refusal other than etcd's means, and what to do.
REFUSALS = {
    409: "another writer changed the Lease at the same moment: give each monitoring host its own --write-lease",
    422: "the server refused the Lease's new fields: is the object a Lease as deploy/rbac.yaml creates it?",
}


class WriteVerdict(NamedTuple):
    state: ServiceState
    #: Status-line words: the problem, or what was measured.
    words_: str
    lines: tuple[tuple[int, str], ...]
    name: str
    #: etcd refused the write for its quota.
    full: bool = False
    elapsed: Optional[float] = None

    @property
    def names(self) -> list[str]:
        return [self.name]

    def words(self, room: int) -> str:
        return self.words_


def judge_write(probe: WriteProbe, policy: Policy, warning: Optional[float] = None,
                critical: Optional[float] = None) -> WriteVerdict:
    namespace, name = probe.lease
    policy_name = probe_name(namespace, name)
    chosen = policy.state_of(policy_name, Critical)
    result = probe.result
    if isinstance(result, Failure):
        found, words, hint, full = _refused(result, namespace, name)
        state = _soften(found, chosen)
        words += policy_label(state, found)
        lines = [(1, f"[-] {policy_name}: {words}")] + ([(1, f"{policy_name}: {hint}")] if hint else [])
        return WriteVerdict(state, words, tuple(lines), policy_name, full, probe.elapsed)
    took = probe.elapsed or 0.0
    found, limit = Ok, ""
    for threshold_state, option, threshold in ((Critical, "--write-critical", critical),
                                               (Warn, "--write-warning", warning)):
        if threshold is not None and took > threshold:
            found, limit = threshold_state, f" (over {option} {threshold:g} s)"
            break
    state = _soften(found, chosen)
    if found == Ok:
        words = f"write: {took:.3f} s"
    else:
        words = f"the write to the Lease {namespace}/{name} took {took:.3f} s{limit}: is etcd's disk slow?" \
                f"{policy_label(state, found)}"
    renewed = f", renewTime {result.renewed}" if result.renewed else ""
    mark = "+" if found == Ok else "-"
    line = (1 if found != Ok else 2, f"[{mark}] {policy_name}: written in {took:.3f} s{renewed}")
    return WriteVerdict(state, words, (line,), policy_name, False, took)


def _soften(found: ServiceState, chosen: ServiceState) -> ServiceState:
    """What the policy makes of a problem: ignored, at most a WARNING, or as found. UNKNOWN (a Lease that is
    missing or may not be written) is no verdict on the cluster: only ignoring changes it."""
    if Ok in (found, chosen):
        return Ok
    if found == Unknown:
        return Unknown
    return Warn if chosen == Warn else found


def _refused(failure: Failure, namespace: str, name: str) -> tuple[ServiceState, str, str, bool]:
    """State, words, hint, and whether etcd is full."""
    if out_of_space(failure):
        return Critical, FULL, FULL_HINT, True
    answer = failure.answer
    if answer is not None and 400 <= answer.status <= 499 and answer.status not in (401, 403, 404):
        head = f"HTTP {answer.status} {answer.reason}".rstrip()
        return (Critical, f"the {failure.what} was refused: {head}: {status_message(answer.body)}",
                REFUSALS.get(answer.status, ""), False)
    state, words, hint = failure_words(
        failure,
        (f"HTTP 403, grant patch on the Lease {namespace}/{name} (coordination.k8s.io)",
         f"the Role {ROLE} of {RBAC_FILE} grants get and patch on that one Lease, by name"),
        (f"the Lease {namespace}/{name} does not exist: apply {RBAC_FILE} (the plugin never creates it)",
         f"{RBAC_FILE} creates the Lease monitoring/check-k8s-health and the Role {ROLE}; a Lease named with "
         "--write-lease needs both in its own namespace"))
    if state == Critical and failure.answer is not None:
        words = f"the {failure.what} failed: {words}"
    return state, words, hint, False
