"""Asking one server's health endpoints: every endpoint at once, each on a connection of its own, then the
reasons for its failed sub-checks, all inside the deadline given.

During an etcd outage ``/livez`` takes 2 s and ``/readyz`` 4 s to answer: asked in turn they would not fit the
default deadline together. Reasons are looked up within a share of the deadline that ends before the whole, so a
late reason costs only itself, never the verdict of the endpoint it explains.
"""

from __future__ import annotations

from urllib.parse import quote

from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import PluginError
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.endpoints.read import Outcome, Reason, ServerReport
from check_k8s_health.model.settings import Settings, Target
from check_k8s_health.transport.client import HealthClient
from check_k8s_health.transport.parallel import in_parallel

#: Failed sub-checks whose reasons are looked up; the rest keep the server's "reason withheld".
MAX_REASONS = 5


def collect_server(settings: Settings, target: Target, deadline: Deadline) -> ServerReport:
    # Each wait ends a step before the one around it, and each request a step before the wait for it: a request
    # then fails with its own words, and what finished is never lost on the way out.
    wait = deadline.inner()
    ask = wait.inner()
    with HealthClient(target, ask) as client:
        jobs = [lambda endpoint=endpoint: _collect_endpoint(settings, client, endpoint, ask)
                for endpoint in settings.endpoints]
        results = in_parallel(jobs, wait)
        outcomes = tuple(result if isinstance(result, Outcome) else Outcome(endpoint, error=result)
                         for endpoint, result in zip(settings.endpoints, results))
        return ServerReport(target, outcomes, client.cert_not_after)


def _collect_endpoint(settings: Settings, client: HealthClient, endpoint: str, deadline: Deadline) -> Outcome:
    params = [("verbose", "")] + [("exclude", name) for name in settings.excludes]
    try:
        outcome = Outcome.answered(endpoint, client.get(f"/{endpoint}", params))
    except PluginError as exc:
        return Outcome(endpoint, error=exc)
    answer = outcome.answer
    if settings.reasons and outcome.body.failed and answer is not None and answer.status >= 500:
        outcome = outcome._replace(reasons=_reasons(client, endpoint, outcome, deadline))
    return outcome


def _reasons(client: HealthClient, endpoint: str, outcome: Outcome, deadline: Deadline) -> tuple[Reason, ...]:
    """Ask ``/<endpoint>/<check>`` for the real reason the aggregate answer withholds."""
    names = [check.name for check in outcome.body.failed if "withheld" in check.detail][:MAX_REASONS]
    budget = deadline.inner()
    jobs = [lambda name=name: _reason(client, endpoint, name, budget.inner()) for name in names]
    found = in_parallel(jobs, budget)
    return tuple(result if isinstance(result, Reason) else Reason(name, "error", one_line(str(result), 120))
                 for name, result in zip(names, found))


def _reason(client: HealthClient, endpoint: str, name: str, budget: Deadline) -> Reason:
    # Check names may hold slashes (poststarthook/rbac/bootstrap-roles): the sub-path keeps them as they are. A
    # name is the server's text, though: anything else that could steer the URL (?, #, %, ..) is escaped.
    if ".." in name.split("/"):
        return Reason(name, "error", "not looked up: the name is not a plain path")
    answer = client.get(f"/{endpoint}/{quote(name, safe='/')}", budget=budget)
    text = answer.body.strip()
    if answer.status == 403:
        return Reason(name, "forbidden", "")
    if answer.status == 404:
        return Reason(name, "missing", "")
    if answer.status == 200:
        return Reason(name, "passing", "passes now")
    prefix = "internal server error: "
    return Reason(name, "found", one_line(text[len(prefix):] if text.startswith(prefix) else text, 200))
