"""Evaluation without a framework: what one endpoint's answer (or failure) means, as a state and words.

The HTTP status decides the state (SPEC section 3); the parsed body only names what failed. Kept free of I/O and
of nagiosplugin's classes other than its states, so every row of the state table is a plain function call.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Optional

from nagiosplugin.state import Critical, Ok, ServiceState, Unknown, Warn

from check_k8s_health.answer import Answer
from check_k8s_health.errors import PluginError
from check_k8s_health.health import HealthBody, SubCheck, parse_body
from check_k8s_health.settings import Target
from check_k8s_health.text import one_line

#: Failed sub-checks named on the status line before "and N more" (the line aims at an SMS: 100 characters).
NAMES_SHOWN = 3


@dataclass(frozen=True)
class Outcome:
    """What asking one endpoint produced: an answer, or the failure that kept it from arriving."""

    endpoint: str
    answer: Optional[Answer] = None
    error: Optional[PluginError] = None
    body: HealthBody = field(default_factory=HealthBody)

    @classmethod
    def answered(cls, endpoint: str, answer: Answer) -> Outcome:
        return cls(endpoint, answer, None, parse_body(answer.body))


@dataclass(frozen=True)
class Verdict:
    state: ServiceState
    #: Status-line words for this endpoint, without the endpoint name.
    summary: str
    #: Long output as (lowest verbosity that shows it, line).
    lines: tuple[tuple[int, str], ...] = field(default=())

    def __str__(self) -> str:
        return self.summary


def judge(outcome: Outcome, target: Target) -> Verdict:
    endpoint = outcome.endpoint
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
    lines += _check_lines(endpoint, body)
    status = answer.status
    if status == 200:
        return _passed(body, lines)
    if status == 500 and body.failed:
        return Verdict(Critical, _failed_summary(body), tuple(lines))
    if 500 <= status <= 599:
        return Verdict(Critical, f"HTTP {status} {answer.reason}{_snippet(answer.body)}", tuple(lines))
    summary, hint = _unexpected(answer, target)
    if hint:
        lines.append((1, f"{endpoint}: {hint}"))
    return Verdict(Unknown, summary, tuple(lines))


def _check_lines(endpoint: str, body: HealthBody) -> list[tuple[int, str]]:
    lines = [(1 if not check.ok else 2, f"[{'+' if check.ok else '-'}] {endpoint} {_name(check)}: "
                                        f"{one_line(check.detail, 200)}") for check in body.checks]
    lines += [(1, f"[!] {endpoint} warn: {one_line(text, 300)}") for text in body.warnings]
    return lines


def _passed(body: HealthBody, lines: list[tuple[int, str]]) -> Verdict:
    if body.checks:
        count = len(body.checks)
        words = f"all {count} sub-checks passed" if not body.failed else f"{count} sub-checks listed"
        if body.excluded:
            words += f" ({len(body.excluded)} excluded)"
    else:
        words = one_line(body.plain or "ok", 40)
    if body.warnings:
        return Verdict(Warn, f"{words}; server warns: {one_line(body.warnings[0], 120)}", tuple(lines))
    return Verdict(Ok, words, tuple(lines))


def _failed_summary(body: HealthBody) -> str:
    names = [_name(check) for check in body.failed]
    shown = ", ".join(names[:NAMES_SHOWN])
    if len(names) > NAMES_SHOWN:
        shown += f" and {len(names) - NAMES_SHOWN} more"
    return f"{shown} failed ({len(names)} of {len(body.checks)} sub-checks)"


def _name(check: SubCheck) -> str:
    return one_line(check.name, 100)


def _snippet(body: str) -> str:
    text = one_line(body, 80)
    return f": {text}" if text else ""


def _status_message(body: str) -> str:
    """The ``message`` of a Kubernetes ``Status`` body, or the start of whatever else came."""
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        message = None
    if isinstance(message, str) and message:
        return one_line(message.removeprefix("forbidden: "), 120)
    return one_line(body, 80)


def _unexpected(answer: Answer, target: Target) -> tuple[str, str]:
    """Status-line words and a long-output hint for answers that say nothing about health."""
    status, head = answer.status, f"HTTP {answer.status} {answer.reason}".rstrip()
    if status == 401:
        if target.token_withheld:
            return (f"{head}: the token was withheld because {target.url} is plain http; use https",
                    "a bearer token is never sent over plain http")
        if target.credential.token is None:
            return (f"{head}: anonymous access is off (k3s, RKE2, hardened); give a token with --token-file "
                    "or K8S_HEALTH_TOKEN", "create one with: kubectl create token SERVICEACCOUNT -n NAMESPACE "
                    "(1 h), or use a kubernetes.io/service-account-token Secret (long-lived)")
        expires = target.credential.expires
        if expires is not None and expires <= time.time():
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires))
            return (f"{head}: the token from {target.credential.source} expired at {when}; create a new one",
                    "kubectl create token SERVICEACCOUNT -n NAMESPACE --duration=8760h, or use a "
                    "kubernetes.io/service-account-token Secret (long-lived)")
        return (f"{head}: the token from {target.credential.source} was rejected (expired or revoked?)",
                "the token is wrong, expired, revoked or of another cluster; create a new one: "
                "kubectl create token SERVICEACCOUNT -n NAMESPACE")
    if status == 403:
        return (f"{head}: {_status_message(answer.body)}; grant get on that path (RBAC)",
                "grant get on this path: ClusterRole system:public-info-viewer covers /livez, /readyz, "
                "/healthz; or a ClusterRole with nonResourceURLs and verb get")
    if status == 404:
        return (f"{head} for {answer.url}: this server does not serve that endpoint",
                "/livez and /readyz exist since Kubernetes 1.16; try -e healthz, or check the URL")
    if 300 <= status <= 399:
        where = one_line(answer.location or "nowhere", 100)
        return (f"{head}: redirect to {where} not followed; point -s at the API server itself",
                "redirects are never followed, so credentials cannot travel to another host")
    if status == 429:
        retry = f" (Retry-After {one_line(answer.retry_after, 20)} s)" if answer.retry_after else ""
        return f"{head}{retry}: the server is throttling requests", ""
    return f"unexpected answer {head}{_snippet(answer.body)}", ""

