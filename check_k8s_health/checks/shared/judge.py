"""What answers that say nothing about health mean, for every check: 401, 403, 404, redirects, 429, 5xx without
sub-check lines, and a look-up of API objects that gave nothing usable (``read.Failure``).

Shared so that an expired token or a missing RBAC rule reads the same whichever check met it. Pure functions over
plain data, like each check's own judging.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Optional

from nagiosplugin.state import Critical, Ok, ServiceState, Unknown, Warn

from check_k8s_health.base.text import one_line
from check_k8s_health.model.settings import Target
from check_k8s_health.transport.answer import Answer

if TYPE_CHECKING:
    from check_k8s_health.checks.shared.read import Failure

#: The order problems are named in: what the run saw broken before what it could not look at (see ``combine``).
RANK = {Critical: 3, Warn: 2, Unknown: 1, Ok: 0}


def snippet(body: str) -> str:
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
    return f"unexpected answer {head}{snippet(answer.body)}", ""


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


def duration(seconds: float) -> str:
    """``78 s``, ``14 min``, ``3 h``: how long a Lease has gone unrenewed, as an operator reads it."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds // 60:.0f} min"
    return f"{seconds // 3600:.0f} h"


class Phrase(str):
    """Words that name several items of one kind (``3 aggregated APIs unavailable: a (X), b (Y), c (Z)``): the
    whole text wherever it is read, and on the status line as many names as fit, then "and N more", never a name
    cut in half."""

    head: str
    names: tuple[str, ...]
    separator: str

    def __new__(cls, head: str, names: Sequence[str], separator: str = ": ") -> Phrase:
        phrase = super().__new__(cls, f"{head}{separator}{', '.join(names)}")
        phrase.head, phrase.names, phrase.separator = head, tuple(names), separator
        return phrase

    def fit(self, room: int) -> str:
        if len(self) <= room or len(self.names) < 2:
            return str(self)
        shown = [self.names[0]]
        for index, name in enumerate(self.names[1:], start=1):
            more = len(self.names) - index - 1
            tail = len(f" and {more} more") if more else 0
            if len(self.head) + len(self.separator) + sum(len(text) + 2 for text in shown) + len(name) + tail > room:
                break
            shown.append(name)
        left = len(self.names) - len(shown)
        return f"{self.head}{self.separator}{', '.join(shown)}" + (f" and {left} more" if left else "")


def fit_problems(problems: Sequence[str], fine: str, room: int) -> str:
    """The status-line words of a look-up within ``room`` characters: whole problems, worst first, as many as
    fit (the first always, cut if it must be; a ``Phrase`` names what fits of its items), then "and N more";
    ``fine`` when there is none."""
    if not problems:
        return fine
    shown: list[str] = []
    for index, problem in enumerate(problems):
        more = len(problems) - index - 1
        tail = len(f"; and {more} more") if more else 0
        left = room - sum(len(text) + 2 for text in shown) - tail
        text = problem.fit(left) if isinstance(problem, Phrase) else problem
        if shown and len(text) > left:
            break
        shown.append(text)
    left_over = len(problems) - len(shown)
    return "; ".join(shown + ([f"and {left_over} more"] if left_over else []))


def policy_label(state: ServiceState, default: ServiceState) -> str:
    """`` (ignored by policy)``, `` (WARNING by policy)``: said where a ``--*-check`` glob changed a state."""
    if state == default:
        return ""
    return f" ({'ignored' if state == Ok else state.text.upper()} by policy)"



def combine(states: Iterable[ServiceState]) -> ServiceState:
    """The worst problem (WARNING, CRITICAL) where there is one, else UNKNOWN where a part could not be judged:
    a look-up that could not be read must not turn an outage the run did see into an UNKNOWN."""
    seen = list(states)
    problems = [state for state in seen if state in (Warn, Critical)]
    return max(problems) if problems else max(seen, default=Ok)
