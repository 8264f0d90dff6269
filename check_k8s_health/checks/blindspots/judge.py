"""Evaluation of what ``/readyz`` cannot see (SPEC section 6b): a webhook without a ready backend, an aggregated
API that is unavailable. Pure, like ``checks.endpoints.judge``: every row of the state table is a call.

A ``failurePolicy: Fail`` webhook that cannot be reached refuses every write it matches: CRITICAL, and the
words say what it blocks. An ``Ignore`` one lets those writes through unchecked: WARNING, a policy not enforced.
An unavailable APIService breaks its API group (``kubectl top``, the HPA) and stalls namespace deletion: WARNING.
The ``--*-check`` globs apply to ``webhook/<configuration>/<webhook>`` and ``apiservice/<name>`` as to
sub-checks. A look-up that failed is judged like an endpoint that failed: 401/403 UNKNOWN with the RBAC rule,
no answer or 5xx CRITICAL; and it never hides the health result (``combine``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional, Union

from nagiosplugin.state import Critical, Ok, ServiceState, Unknown, Warn

from check_k8s_health.base.record import NamedTuple
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.blindspots.read import (
    APISERVICES,
    MAX_SERVICES,
    MUTATING,
    SERVICES,
    SLICES,
    VALIDATING,
    ApiService,
    Backend,
    Service,
    Survey,
    Webhook,
)
from check_k8s_health.checks.shared.judge import RANK, Phrase, combine, failure_words, fit_problems, policy_label
from check_k8s_health.checks.shared.read import Failure
from check_k8s_health.model.policy import Policy

#: The RBAC rule each look-up needs, as an operator would write it (deploy/rbac.yaml grants exactly these).
RULES = {
    VALIDATING: "grant list on validatingwebhookconfigurations (admissionregistration.k8s.io)",
    MUTATING: "grant list on mutatingwebhookconfigurations (admissionregistration.k8s.io)",
    APISERVICES: "grant list on apiservices (apiregistration.k8s.io)",
    SLICES: "grant list on endpointslices (discovery.k8s.io)",
    SERVICES: "grant get on services",
}
#: What a 404 on each look-up means: the API is not served, so the server is older than it.
APIS = {
    VALIDATING: "admissionregistration.k8s.io/v1 (Kubernetes 1.16+)",
    MUTATING: "admissionregistration.k8s.io/v1 (Kubernetes 1.16+)",
    APISERVICES: "apiregistration.k8s.io/v1 (Kubernetes 1.10+)",
    SLICES: "discovery.k8s.io/v1 (Kubernetes 1.21+)",
}
RBAC_FILE = "deploy/rbac.yaml"
ROLE = "check-k8s-health-blind-spots"
#: How much of an APIService's message the status line carries (the long output has all of it).
MESSAGE_SHOWN = 60
#: Items listed in the long output, per kind and level, before "and N more".
LISTED = 50
NOT_CALLED = "not judged: the plugin never calls a webhook"


class Judged(NamedTuple):
    """One webhook or APIService as judged: its state, the status-line words of a problem (empty when it is
    fine), and what stands behind it for the long output and the JSON document."""

    item: Union[Webhook, ApiService]
    state: ServiceState
    problem: str
    backend: str
    #: A webhook without a ready backend, an APIService not available: a fact, whatever the policy says.
    broken: bool = False
    #: Whether it was judged at all (a url webhook, a local APIService, a service past the cap are not).
    judged: bool = True
    #: "(ignored by policy)" where a ``--*-check`` glob changed the state a problem has by default.
    label: str = ""


class Part(NamedTuple):
    """The verdict on the webhooks or on the aggregated APIs."""

    state: ServiceState
    #: Status-line words of each problem with its state, worst first.
    problems: tuple[tuple[ServiceState, str], ...]
    #: What the status line says when nothing is wrong: "webhooks: 2 served".
    fine: str
    lines: tuple[tuple[int, str], ...]
    items: tuple[Judged, ...] = ()
    #: Why the list could not be read; the counts are then ``None`` (perfdata prints only what was read).
    error: str = ""
    listed: Optional[int] = None
    broken: Optional[int] = None


class BlindVerdict(NamedTuple):
    state: ServiceState
    #: Status-line words of every problem, worst first; ``fine`` says what was judged when there is none.
    problems: tuple[str, ...]
    fine: str
    lines: tuple[tuple[int, str], ...]
    webhooks: Optional[Part] = None
    apiservices: Optional[Part] = None

    @property
    def names(self) -> list[str]:
        """Every name the policy globs could match, so ``-v`` can tell which glob matched nothing."""
        return [judged.item.check_name for part in (self.webhooks, self.apiservices) if part is not None
                for judged in part.items]

    def words(self, room: int) -> str:
        return fit_problems(self.problems, self.fine, room)


def judge_survey(survey: Survey, policy: Policy, webhooks: bool, aggregated_apis: bool) -> BlindVerdict:
    hooks = judge_webhooks(survey, policy) if webhooks else None
    services = judge_apiservices(survey, policy) if aggregated_apis else None
    parts = [part for part in (hooks, services) if part is not None]
    problems = sorted((problem for part in parts for problem in part.problems), key=lambda p: -RANK[p[0]])
    lines = [line for part in parts for line in part.lines]
    return BlindVerdict(combine(part.state for part in parts), tuple(text for _, text in problems),
                        "; ".join(part.fine for part in parts), tuple(lines), hooks, services)


def judge_webhooks(survey: Survey, policy: Policy) -> Part:
    if survey.webhooks is None:
        return _unread("webhooks", survey.webhook_miss)
    backends = dict(survey.backends)
    judged = tuple(_webhook(hook, backends, policy) for hook in survey.webhooks)
    problems = _grouped(judged, lambda item: "webhooks block writes" if _enforced(item) else "webhooks not enforced",
                        _named)
    problems += [(item.state, item.problem) for item in judged if item.state != Ok and item.problem and not item.broken]
    lines: list[tuple[int, str]] = []
    # A forbidden or failing look-up fails alike for every service: said once, not once per service.
    said = [miss_words(backend) for backend in backends.values() if isinstance(backend, Failure)]
    problems += dict.fromkeys((state, f"webhook backends: {words}") for state, words, _ in said)
    lines += dict.fromkeys((1, f"webhooks: {hint}") for _, _, hint in said if hint)
    skipped = [hook for hook in survey.webhooks
               if hook.service is not None and hook.rules and hook.service not in backends]
    if skipped:
        lines.append((1, f"webhooks: {len(skipped)} on services beyond the first {MAX_SERVICES} are not judged "
                         f"({_names([hook.check_name for hook in skipped])})"))
    lines += _item_lines(judged, "webhook")
    served = sum(item.judged and not item.broken and item.state == Ok for item in judged)
    fine = f"webhooks: {served} served" if served else "webhooks: none to judge" if judged else "webhooks: none"
    # Unserved webhooks are not counted where some backends could not be read: a 0 would say "all served".
    return Part(combine(state for state, _ in problems), tuple(_worst_first(problems)), fine, tuple(lines), judged,
                listed=len(judged), broken=None if said else sum(item.broken for item in judged))


def judge_apiservices(survey: Survey, policy: Policy) -> Part:
    if survey.apiservices is None:
        return _unread("aggregated APIs", survey.apiservice_miss)
    judged = tuple(_apiservice(item, policy) for item in survey.apiservices)
    problems = _grouped(judged, lambda item: "aggregated APIs unavailable", _named)
    local = sum(not item.judged for item in judged)
    lines = _item_lines([item for item in judged if item.judged], "apiservice")
    if local:
        lines.append((2, f"aggregated APIs: {local} local APIServices (served by the API server itself) not judged"))
    available = sum(item.judged and not item.broken for item in judged)
    fine = f"aggregated APIs: {available} available" if available else "aggregated APIs: none"
    return Part(combine(state for state, _ in problems), tuple(_worst_first(problems)), fine, tuple(lines), judged,
                listed=len(judged), broken=sum(item.broken for item in judged))


def _webhook(hook: Webhook, backends: dict[Service, Union[Backend, Failure]], policy: Policy) -> Judged:
    if not hook.rules:
        return Judged(hook, Ok, "", "no rules: it matches no request and is never called", judged=False)
    if hook.service is None:
        where = f"calls {hook.url}" if hook.url is not None else "names neither a service nor a url"
        return Judged(hook, Ok, "", f"{where}: {NOT_CALLED}", judged=False)
    shown = f"{hook.service[0]}/{hook.service[1]}"
    backend = backends.get(hook.service)
    if backend is None:
        return Judged(hook, Ok, "", f"service {shown}: not judged (beyond the first {MAX_SERVICES} services)",
                      judged=False)
    if isinstance(backend, Failure):
        return Judged(hook, Unknown, "", f"service {shown}: backends not read ({miss_words(backend)[1]})")
    if backend.external:
        return Judged(hook, Ok, "", f"service {shown} is an ExternalName for {backend.external}: not judged",
                      judged=False)
    fault = _fault(hook, backend)
    if not fault:
        return Judged(hook, Ok, "", f"service {shown}: {backend.ready} of {backend.total} endpoints ready")
    enforced = hook.failure_policy != "Ignore"
    state = policy.state_of(hook.check_name, Critical if enforced else Warn)
    verb = "blocks" if enforced else "not enforced on"
    words = f"webhook {hook.name} {verb} {_what(hook)}: {fault}"
    return Judged(hook, state, words if state != Ok else "", fault, broken=True,
                  label=policy_label(state, Critical if enforced else Warn))


def _fault(hook: Webhook, backend: Union[Backend, Failure, None]) -> str:
    """Why nothing can answer the webhook, or "" (also where that is not known)."""
    if not isinstance(backend, Backend) or backend.external or hook.service is None:
        return ""
    shown = f"{hook.service[0]}/{hook.service[1]}"
    return (f"service {shown} not found" if backend.exists is False else
            f"service {shown} has no endpoints" if not backend.total else
            f"service {shown} has no ready endpoint (0 of {backend.total})" if not backend.ready else "")


def _apiservice(item: ApiService, policy: Policy) -> Judged:
    if item.service is None:
        return Judged(item, Ok, "", "local: served by the API server itself", judged=False)
    shown = f"service {item.service[0]}/{item.service[1]}"
    if item.available == "True":
        return Judged(item, Ok, "", f"available ({shown})")
    why = ": ".join(text for text in (item.reason, item.message) if text)
    if not why:
        why = ("no Available condition yet (just created, or no aggregator has judged it)" if item.available is None
               else f"Available is {item.available}")
    state = policy.state_of(item.check_name, Warn)
    short = one_line(": ".join(text for text in (item.reason, one_line(item.message, MESSAGE_SHOWN)) if text) or why,
                     MESSAGE_SHOWN + 40)
    return Judged(item, state, f"{item.name} unavailable: {short}" if state != Ok else "", f"{why} ({shown})",
                  broken=True, label=policy_label(state, Warn))


def _grouped(judged: Sequence[Judged], kind: Callable[[Judged], str],
             named: Callable[[Judged], str]) -> list[tuple[ServiceState, str]]:
    """One problem per kind and state: a single item says it all (``webhook guard.example.com blocks CREATE ...:
    service kube-system/guard not found``), several are named in one phrase with their short reasons (``3
    aggregated APIs unavailable: v1beta1.metrics.k8s.io (ServiceNotFound), ...``), the long output says the rest."""
    groups: dict[tuple[ServiceState, str], list[Judged]] = {}
    for item in judged:
        if item.broken and item.state != Ok and item.problem:
            groups.setdefault((item.state, kind(item)), []).append(item)
    problems = []
    for (state, words), items in groups.items():
        if len(items) == 1:
            problems.append((state, items[0].problem))
            continue
        problems.append((state, Phrase(f"{len(items)} {words}", [named(item) for item in items])))
    return problems


def _enforced(judged: Judged) -> bool:
    return isinstance(judged.item, Webhook) and judged.item.failure_policy != "Ignore"


def _named(judged: Judged) -> str:
    """An item in a phrase that names several: a webhook with what it matches, an APIService with its reason."""
    item = judged.item
    if isinstance(item, Webhook):
        return f"{item.name} ({_what(item)})"
    reason = one_line(item.reason, 40) if item.reason else "no reason given" if item.available is None else \
        f"Available {one_line(str(item.available), 20)}"
    return f"{item.name} ({reason})"


def _what(hook: Webhook) -> str:
    """What a webhook's rules match: ``CREATE, UPDATE configmaps``, ``every operation on every resource``."""
    operations = "every operation on" if "*" in hook.operations else ", ".join(hook.operations) or "no operation:"
    resources = "every resource" if "*" in hook.resources else _names(list(hook.resources), 3) or "no resource"
    return f"{operations} {resources}"


def _item_lines(judged: Sequence[Judged], noun: str) -> list[tuple[int, str]]:
    """``-v``: every item with a problem; ``-vv``: every item; each level at most ``LISTED`` lines."""
    lines: list[tuple[int, str]] = []
    for level in (1, 2):
        chosen = [item for item in judged if (item.broken or item.state != Ok) == (level == 1)]
        lines += [(level, _item_line(item, noun)) for item in chosen[:LISTED]]
        if len(chosen) > LISTED:
            lines.append((level, f"... and {len(chosen) - LISTED} more of the same"))
    return lines


def _item_line(judged: Judged, noun: str) -> str:
    item = judged.item
    mark = "[+]" if not judged.broken and judged.state == Ok else "[-]"
    if isinstance(item, Webhook):
        scope = f" in namespaces {item.namespaces}" if item.namespaces else ""
        head = (f"{mark} {noun} {item.configuration}/{item.name} ({item.kind}, failurePolicy {item.failure_policy},"
                f" {_what(item)}{scope})")
    else:
        head = f"{mark} {noun} {item.name}"
    return f"{head}: {judged.backend}{judged.label}"


def _unread(noun: str, miss: Optional[Failure]) -> Part:
    if miss is None:
        return Part(Unknown, ((Unknown, f"{noun} not judged: not asked"),), "", ())
    state, words, hint = miss_words(miss)
    lines = ((1, f"{noun}: {hint}"),) if hint else ()
    return Part(state, ((state, f"{noun}: {words}"),), "", lines, error=words)


def miss_words(miss: Failure) -> tuple[ServiceState, str, str]:
    """State, status-line words and a long-output hint for a look-up that gave nothing usable."""
    api = APIS.get(miss.what)
    return failure_words(miss, (f"HTTP 403, {RULES[miss.what]}",
                                f"the ClusterRole {ROLE} of {RBAC_FILE} grants what is needed, read-only"),
                         (f"HTTP 404: the server does not serve {api}", "{source}: {url} not found") if api else None)


def counts(survey: Survey) -> list[tuple[str, int]]:
    """Perfdata ``webhooks``, ``webhooks_unserved``, ``apiservices``, ``apiservices_unavailable``: facts of the
    survey, whatever the policy makes of them, and only what was read (no unserved count where some backends
    could not be read)."""
    found = []
    if survey.webhooks is not None:
        backends = dict(survey.backends)
        found.append(("webhooks", len(survey.webhooks)))
        if not any(isinstance(backend, Failure) for backend in backends.values()):
            found.append(("webhooks_unserved", sum(bool(_fault(hook, backends.get(hook.service)))
                                                   for hook in survey.webhooks if hook.rules and hook.service)))
    if survey.apiservices is not None:
        unavailable = sum(item.service is not None and item.available != "True" for item in survey.apiservices)
        found += [("apiservices", len(survey.apiservices)), ("apiservices_unavailable", unavailable)]
    return found


def _worst_first(problems: list[tuple[ServiceState, str]]) -> list[tuple[ServiceState, str]]:
    return sorted(problems, key=lambda problem: -RANK[problem[0]])


def _names(names: Sequence[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
