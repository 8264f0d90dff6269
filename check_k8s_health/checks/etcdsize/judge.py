"""Evaluation of etcd's size (``--etcd-quota``) against its quota (SPEC section 6c). Pure.

Past its quota etcd raises the NOSPACE alarm and refuses every write; a WARNING from 80 % and a CRITICAL from 95 %
(``--etcd-warning``, ``--etcd-critical``) come before that. The size cannot see an alarm that stays armed after a
defragmentation freed the space: ``--write-probe`` can. The policy name is ``etcd-size``.
"""

from __future__ import annotations

from typing import Optional

from nagiosplugin.state import Critical, Ok, ServiceState, Unknown, Warn

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.checks.etcdsize.read import DEPRECATED, SIZE, EtcdSize, Storage
from check_k8s_health.checks.shared.judge import failure_words, policy_label
from check_k8s_health.checks.shared.read import Failure
from check_k8s_health.model.policy import Policy

NAME = "etcd-size"
RBAC_FILE = "deploy/rbac.yaml"
CLUSTER_ROLE = "check-k8s-health-etcd-size"
ADVICE = ("compact and defragment etcd (etcdctl compact, etcdctl defrag), delete what filled it (Events, old "
          "ReplicaSets, large ConfigMaps), or raise etcd's --quota-backend-bytes and --etcd-quota with it")


class Quota(NamedTuple):
    size: int
    warning: float = 80.0
    critical: float = 95.0


class SizeVerdict(NamedTuple):
    state: ServiceState
    words_: str
    lines: tuple[tuple[int, str], ...]
    size: Optional[float] = None
    percent: Optional[float] = None
    metric: str = ""

    @property
    def names(self) -> list[str]:
        return [NAME]

    def words(self, room: int) -> str:
        return self.words_


def judge_size(measured: EtcdSize, quota: Quota, policy: Policy) -> SizeVerdict:
    chosen = policy.state_of(NAME, Critical)
    found = measured.found
    if isinstance(found, Failure):
        state, words, hint = failure_words(
            found, ("HTTP 403, grant get on the non-resource URL /metrics to read etcd's size",
                    f"the ClusterRole {CLUSTER_ROLE} of {RBAC_FILE} grants it"))
        state = Ok if chosen == Ok else state
        words = f"etcd size: {words}" if found.answer is None or found.answer.status == 200 else words
        words += policy_label(state, Unknown) if state == Ok else ""
        lines = [(1, f"[-] {NAME}: {words}")] + ([(1, f"{NAME}: {hint}")] if hint else [])
        return SizeVerdict(state, words, tuple(lines))
    return _judge_storage(found, quota, chosen)


def _judge_storage(storage: Storage, quota: Quota, chosen: ServiceState) -> SizeVerdict:
    lines = [(2, f"{NAME}: {storage.metric}{labels} {value}") for labels, value in storage.samples]
    lines += [(1, f"{NAME}: not a size, ignored: {text}") for text in storage.unusable]
    if not storage.metric:
        lines.append((1, f"{NAME}: /metrics holds neither {SIZE.decode()} nor {DEPRECATED.decode()}: etcd's size "
                         "cannot be judged here (a control plane that hides its storage metrics); --write-probe "
                         "still sees an etcd that refuses writes"))
        return SizeVerdict(Ok, "etcd size not in /metrics", tuple(lines))
    if storage.size is None:
        state = Ok if chosen == Ok else Unknown
        words = f"etcd size: {storage.metric} holds no usable value ({storage.unusable[0].rsplit(' ', 1)[-1]})"
        return SizeVerdict(state, words + policy_label(state, Unknown), tuple(lines), metric=storage.metric)
    if storage.metric == DEPRECATED.decode():
        lines.append((2, f"{NAME}: from the deprecated {storage.metric} (Kubernetes before 1.28)"))
    percent = storage.size * 100 / quota.size
    found = Critical if percent >= quota.critical else Warn if percent >= quota.warning else Ok
    state = found if found == Ok or chosen == Critical else chosen if chosen == Ok else Warn
    amount = f"{binary(storage.size)} of {binary(quota.size)}"
    if found == Ok:
        words = f"etcd {percent:.0f} % of quota ({amount})" if percent >= 1 else f"etcd under 1 % of quota ({amount})"
    else:
        option = "--etcd-critical" if found == Critical else "--etcd-warning"
        limit = quota.critical if found == Critical else quota.warning
        words = f"etcd is {percent:.0f} % full ({amount}): at 100 % every write is refused{policy_label(state, found)}"
        lines.append((1, f"{NAME}: over {option} {limit:g} %; {ADVICE}"))
    lines.append((1 if found != Ok else 2, f"[{'+' if found == Ok else '-'}] {NAME}: {storage.size:.0f} bytes of "
                                           f"{quota.size} ({percent:.2f} %)"))
    return SizeVerdict(state, words, tuple(lines), storage.size, percent, storage.metric)


def binary(size: float) -> str:
    """``1.9 GiB``, ``280 KiB``: sizes as etcd's quota is written."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            places = 2 if value < 10 else 1 if value < 100 else 0
            text = f"{value:.{places}f}"
            return f"{text.rstrip('0').rstrip('.') if '.' in text else text} {unit}"
    return f"{size:.0f} B"
