"""Evaluation of one endpoint of one server: what its answer (or failure) means, as a state and words.

The HTTP status decides (SPEC section 3); the parsed body names what failed, the policy says how bad each
failure is, the reasons explain. Pure functions over plain data, so every row of the state table is a call.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Optional

from nagiosplugin import Range
from nagiosplugin.state import Critical, Ok, ServiceState, Unknown, Warn

from check_k8s_health.base.errors import PluginError
from check_k8s_health.base.record import NamedTuple
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.endpoints.read import HealthBody, SubCheck, parse_body
from check_k8s_health.model.policy import Policy
from check_k8s_health.model.settings import Target
from check_k8s_health.transport.answer import Answer

if TYPE_CHECKING:
    from check_k8s_health.checks.shared.read import Failure

#: Failed sub-checks named on the status line before "and N more" (the line aims at an SMS: 100 characters).
NAMES_SHOWN = 3


class Reason(NamedTuple):
    """What ``/<endpoint>/<check>`` said: ``found`` (text), ``passing``, ``forbidden``, ``missing``, ``error``."""

    check: str
    kind: str
    text: str


class Outcome(NamedTuple):
    """What asking one endpoint produced: an answer, or the failure that kept it from arriving."""

    endpoint: str
    answer: Optional[Answer] = None
    error: Optional[PluginError] = None
    body: HealthBody = HealthBody()
    reasons: tuple[Reason, ...] = ()

    @classmethod
    def answered(cls, endpoint: str, answer: Answer) -> Outcome:
        return cls(endpoint, answer, None, parse_body(answer.body))


class ServerReport(NamedTuple):
    """Everything one server answered in this run."""

    target: Target
    outcomes: tuple[Outcome, ...]
    #: notAfter of its certificate (seconds since the epoch), known only when the certificate was verified.
    cert_not_after: Optional[float] = None

    def cert_days_left(self, now: float) -> Optional[float]:
        return None if self.cert_not_after is None else (self.cert_not_after - now) / 86400


class Limits(NamedTuple):
    """What turns an answer into a problem besides its status: the sub-check policy and ``-w``/``-c``."""

    policy: Policy = Policy()
    warning: Optional[str] = None
    critical: Optional[str] = None
    #: The --component asked, to name it when it does not serve an endpoint.
    component: str = "apiserver"


class Verdict(NamedTuple):
    state: ServiceState
    #: Status-line words for this endpoint, without the endpoint name.
    summary: str
    #: Long output as (lowest verbosity that shows it, line).
    lines: tuple[tuple[int, str], ...] = ()
    #: A reason look-up was forbidden: the caller says once how to allow it.
    reasons_forbidden: bool = False


def judge(outcome: Outcome, target: Target, limits: Optional[Limits] = None, prefix: str = "") -> Verdict:
    """``prefix`` (a server name, when there are several) leads every long-output line."""
    limits = limits or Limits()
    endpoint = f"{prefix}{outcome.endpoint}"
    if outcome.error is not None:
        error = outcome.error
        state = Critical if error.exit_code == 2 else Unknown
        return Verdict(state, str(error), ((1, f"{endpoint}: {error}"),))
    answer = outcome.answer
    if answer is None:
        return Verdict(Unknown, "no answer and no error recorded")
    body = outcome.body
    lines = [(2, f"{endpoint}: GET {answer.url} -> {answer.status} {answer.reason} in {answer.elapsed:.3f} s"
                 f"{' (body cut at 1 MiB)' if answer.truncated else ''}")]
    lines += _check_lines(endpoint, outcome, limits.policy)
    status = answer.status
    if status == 200:
        verdict = _passed(body, lines)
    elif status >= 500 and body.failed:
        verdict = _failed(outcome, limits.policy, lines)
    elif 500 <= status <= 599:
        verdict = Verdict(Critical, f"HTTP {status} {answer.reason}{_snippet(answer.body)}", tuple(lines))
    else:
        summary, hint = unexpected(answer, target, limits.component)
        if hint:
            lines.append((1, f"{endpoint}: {hint}"))
        verdict = Verdict(Unknown, summary, tuple(lines))
    return _timed(verdict, answer.elapsed, limits)


def _timed(verdict: Verdict, elapsed: float, limits: Limits) -> Verdict:
    for state, option, spec in ((Critical, "-c", limits.critical), (Warn, "-w", limits.warning)):
        if spec and not Range(spec).match(elapsed):
            words = f"{verdict.summary} in {elapsed:.3f} s (beyond {option} {spec})"
            return Verdict(max(state, verdict.state), words, verdict.lines, verdict.reasons_forbidden)
    return verdict


def _check_lines(endpoint: str, outcome: Outcome, policy: Policy) -> list[tuple[int, str]]:
    reasons = {reason.check: reason for reason in outcome.reasons}
    lines = []
    for check in outcome.body.checks:
        if check.ok:
            lines.append((2, f"[+] {endpoint} {_name(check)}: {one_line(check.detail, 200)}"))
            continue
        detail = check.detail
        reason = reasons.get(check.name)
        if reason is not None and reason.kind == "found":
            detail = f"failed: {reason.text}"
        elif reason is not None and reason.kind == "passing":
            detail = f"{detail} (passes now)"
        state = policy.state_of(check.name)
        label = "" if state == Critical else f" ({'ignored' if state == Ok else 'warning'} by policy)"
        lines.append((1, f"[-] {endpoint} {_name(check)}: {one_line(detail, 200)}{label}"))
    lines += [(1, f"[!] {endpoint} warn: {one_line(text, 300)}") for text in outcome.body.warnings]
    return lines


def _passed(body: HealthBody, lines: list[tuple[int, str]]) -> Verdict:
    if body.checks:
        count = len(body.checks)
        words = f"all {count} sub-checks passed" if not body.failed else f"{count} sub-checks listed"
        if body.excluded:
            words += f" ({len(body.excluded)} excluded)"
    else:
        plain = one_line(body.plain or "", 40)
        words = plain if plain == "ok" else f"HTTP 200 without a sub-check list{f': {plain}' if plain else ''}"
    if body.warnings:
        return Verdict(Warn, f"{words}; server warns: {one_line(body.warnings[0], 120)}", tuple(lines))
    return Verdict(Ok, words, tuple(lines))


def _failed(outcome: Outcome, policy: Policy, lines: list[tuple[int, str]]) -> Verdict:
    body = outcome.body
    states = [policy.state_of(check.name) for check in body.failed]
    state = max(states)
    names = [_name(check) for check in body.failed]
    shown = ", ".join(names[:NAMES_SHOWN])
    if len(names) > NAMES_SHOWN:
        shown += f" and {len(names) - NAMES_SHOWN} more"
    inline = body.failed[0].detail.split(": ", 1)[1] if len(names) == 1 and ": " in body.failed[0].detail else ""
    if inline and inline != "reason withheld":
        shown += f" ({one_line(inline, 60)})"  # etcd says why inline; the API server withholds it
    words = f"{shown} failed ({len(names)} of {len(body.checks)} sub-checks)"
    if state == Ok:
        words += ", ignored by --ignore-check"
    elif state == Warn and all(s != Critical for s in states):
        words += ", WARNING by --warning-check"
    forbidden = any(reason.kind == "forbidden" for reason in outcome.reasons)
    if body.warnings and state == Ok:
        # A warn: line is at least WARNING (SPEC section 3), even when every failure is ignored.
        state = Warn
        words += f"; server warns: {one_line(body.warnings[0], 120)}"
    elif body.warnings:
        lines.append((1, f"{outcome.endpoint}: the server also warns: {one_line(body.warnings[0], 200)}"))
    return Verdict(state, words, tuple(lines), forbidden)


def _name(check: SubCheck) -> str:
    return one_line(check.name, 100)


def _snippet(body: str) -> str:
    text = one_line(body, 80)
    return f": {text}" if text else ""


def status_message(body: str, limit: int = 120) -> str:
    """The ``message`` of a Kubernetes ``Status`` body, or the start of whatever else came."""
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError, RecursionError):
        message = None
    if isinstance(message, str) and message:
        return one_line(message.removeprefix("forbidden: "), limit)
    return one_line(body, 80)


def unexpected(answer: Answer, target: Target, component: str) -> tuple[str, str]:
    """Status-line words and a long-output hint for answers that say nothing about health."""
    status, head = answer.status, f"HTTP {answer.status} {answer.reason}".rstrip()
    if status == 401:
        return _unauthorized(head, target)
    if status == 403:
        return (f"{head}: {status_message(answer.body)}; grant get on that path (RBAC)",
                "grant get on this path: ClusterRole system:public-info-viewer covers /livez, /readyz, "
                "/healthz; or a ClusterRole with nonResourceURLs and verb get")
    if status == 404:
        who = "this server" if component == "apiserver" else component
        return (f"{head} for {answer.url}: {who} does not serve that endpoint",
                "/livez and /readyz exist since Kubernetes 1.16 (kube-controller-manager and the kubelet serve "
                "only /healthz, etcd /health); try -e healthz, or check the URL")
    if 300 <= status <= 399:
        where = one_line(answer.location or "nowhere", 100)
        return (f"{head}: redirect to {where} not followed; point -s at the API server itself",
                "redirects are never followed, so credentials cannot travel to another host")
    if status == 429:
        after = one_line(answer.retry_after or "", 40)
        retry = f" (Retry-After {after}{' s' if after.isdigit() else ''})" if after else ""
        return f"{head}{retry}: the server is throttling requests", ""
    return f"unexpected answer {head}{_snippet(answer.body)}", ""


def _unauthorized(head: str, target: Target) -> tuple[str, str]:
    credential = target.credential
    if target.token_withheld:
        return (f"{head}: the token was withheld because {target.url} is plain http; use https",
                "a bearer token is never sent over plain http")
    if credential.token is None:
        return (f"{head}: anonymous access is off (k3s, RKE2, hardened); give a token with --token-file "
                "or K8S_HEALTH_TOKEN", "create one with: kubectl create token SERVICEACCOUNT -n NAMESPACE "
                "(1 h), or use a kubernetes.io/service-account-token Secret (long-lived)")
    if credential.expires is not None and credential.expires <= time.time():
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(credential.expires))
        return (f"{head}: the token from {credential.source} expired at {when}; create a new one",
                "kubectl create token SERVICEACCOUNT -n NAMESPACE --duration=8760h, or use a "
                "kubernetes.io/service-account-token Secret (long-lived)")
    return (f"{head}: the token from {credential.source} was rejected (expired or revoked?)",
            "the token is wrong, expired, revoked or of another cluster; create a new one: "
            "kubectl create token SERVICEACCOUNT -n NAMESPACE")


def failure_words(failure: Failure, forbidden: tuple[str, str], not_found: Optional[tuple[str, str]] = None
                  ) -> tuple[ServiceState, str, str]:
    """State, status-line words and a long-output hint for a look-up of API objects that gave nothing usable: no
    answer and 5xx are CRITICAL as for an endpoint, everything else UNKNOWN. ``forbidden``: the words for a 403
    and the advice after the server's own message; ``not_found``: the words and hint for a 404 (otherwise an
    unexpected answer). Both may name ``{head}`` (``HTTP 404 Not Found``), ``{source}`` (what was asked, from
    where) and ``{url}``."""
    if failure.error is not None:
        return (Critical if failure.error.exit_code == 2 else Unknown), str(failure.error), ""
    answer = failure.answer
    if answer is None:
        return Unknown, "no answer and no error recorded", ""
    names = {"head": f"HTTP {answer.status} {answer.reason}".rstrip(), "url": answer.url,
             "source": f"the {failure.what} from {failure.target.name}"}
    if answer.status == 200:
        return Unknown, f"{names['source']} cannot be used: {one_line(failure.why, 80)}", ""
    if answer.status == 403:
        words, advice = forbidden
        return Unknown, words.format(**names), f"{failure.what}: {status_message(answer.body, 400)}; {advice}"
    if answer.status == 404 and not_found is not None:
        return Unknown, not_found[0].format(**names), not_found[1].format(**names)
    if 500 <= answer.status <= 599:
        return Critical, f"{names['head']} for {names['source']}: {status_message(answer.body)}", ""
    words, hint = unexpected(answer, failure.target, "apiserver")
    return Unknown, words, hint
