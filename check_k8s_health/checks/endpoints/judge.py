"""Evaluation of one endpoint of one server: what its answer (or failure) means, as a state and words.

The HTTP status decides (SPEC section 3); the parsed body names what failed, the policy says how bad each
failure is, the reasons explain. Pure functions over plain data, so every row of the state table is a call.
"""

from __future__ import annotations

from typing import Optional

from nagiosplugin import Range
from nagiosplugin.state import Critical, Ok, ServiceState, Unknown, Warn

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.endpoints.read import HealthBody, Outcome, SubCheck
from check_k8s_health.checks.shared.judge import snippet, unexpected
from check_k8s_health.model.policy import Policy
from check_k8s_health.model.settings import Target

#: Failed sub-checks named on the status line before "and N more" (the line aims at an SMS: 100 characters).
NAMES_SHOWN = 3


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
        verdict = Verdict(Critical, f"HTTP {status} {answer.reason}{snippet(answer.body)}", tuple(lines))
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
