"""Acquisition for a whole run: every server concurrently, every endpoint of a server concurrently, then the
reasons for its failed sub-checks, all inside the one deadline.

Endpoints of one server are asked at once, each on a connection of its own: during an etcd outage ``/livez``
takes 2 s and ``/readyz`` 4 s to answer, and asked in turn they would not fit the default deadline together.
Reasons are looked up within a share of the deadline that ends before the whole, so a late reason costs only
itself, never the verdict of the endpoint it explains. With ``--members`` the member list is looked up first
(``lookup``), and the members are then checked like servers named with ``-s``. ``--webhooks`` and
``--aggregated-apis`` are asked once (``blindlookup``), beside the servers' endpoints, not after them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, cast
from urllib.parse import quote

from check_k8s_health.access.tlsfiles import check_tls_files
from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import LATE, PluginError, TransportError
from check_k8s_health.base.record import NamedTuple
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.endpoints.judge import Outcome, Reason, ServerReport
from check_k8s_health.model.settings import Settings, Target
from check_k8s_health.transport.client import HealthClient
from check_k8s_health.transport.parallel import in_parallel

if TYPE_CHECKING:
    from check_k8s_health.checks.blindspots.read import Survey
    from check_k8s_health.checks.members.read import Roster

#: Failed sub-checks whose reasons are looked up; the rest keep the server's "reason withheld".
MAX_REASONS = 5


class Acquired(NamedTuple):
    """Everything one run found out: the servers' reports, with ``--members`` the member list they were found
    in, with ``--webhooks`` or ``--aggregated-apis`` what the health endpoints cannot see."""

    reports: tuple[ServerReport, ...]
    roster: Optional[Roster] = None
    survey: Optional[Survey] = None
    #: Seconds this process waited for a CPU, measured when an answer was late (see ``starvation``).
    cpu_wait: Optional[float] = None


def acquire(settings: Settings, deadline: Deadline) -> Acquired:
    roster = None
    targets = settings.targets
    if settings.members:
        from check_k8s_health.checks.members.acquire import look_up

        roster = look_up(settings, deadline)
        targets = roster.targets or targets
    if not settings.blind_spots:
        collected = collect(settings, targets, deadline)
        return Acquired(collected, roster, cpu_wait=_cpu_wait(collected))
    from check_k8s_health.checks.blindspots.acquire import survey, unanswered

    # Asked once, through the server the member list came from, else the first one named.
    via = roster.via if roster is not None and roster.via is not None else settings.target
    reports, survey_result = in_parallel([lambda: collect(settings, targets, deadline.inner()),
                                          lambda: survey(settings, via, deadline.inner())], deadline)
    if isinstance(reports, TransportError):  # not finished in time: every endpoint of every server is late
        reports = tuple(_unanswered(settings, target, reports) for target in targets)
    elif isinstance(reports, PluginError):
        raise reports  # a configuration error found after the requests failed (see collect)
    if isinstance(survey_result, PluginError):
        survey_result = unanswered(via, survey_result)
    done = cast("tuple[ServerReport, ...]", reports)
    return Acquired(done, roster, cast("Survey", survey_result), _cpu_wait(done))


def _cpu_wait(reports: tuple[ServerReport, ...]) -> Optional[float]:
    """Read only when an answer was late: whether this host gave the plugin a CPU decides what that means."""
    if not any(isinstance(outcome.error, LATE) for report in reports for outcome in report.outcomes):
        return None
    from check_k8s_health.transport.starvation import cpu_wait

    return cpu_wait()


def collect(settings: Settings, targets: tuple[Target, ...], deadline: Deadline) -> tuple[ServerReport, ...]:
    jobs = [lambda target=target: _collect_server(settings, target, deadline) for target in targets]
    results = in_parallel(jobs, deadline)
    reports = []
    for target, result in zip(targets, results):
        reports.append(result if isinstance(result, ServerReport) else _unanswered(settings, target, result))
    if any(outcome.error is not None for report in reports for outcome in report.outcomes) and \
            any(not target.plain_http for target in settings.targets):
        # A CA file the TLS library could not read fails every request: that is the configuration error it
        # was before the first request, when cli checked the files (see tlsfiles.check_tls_files).
        deadline.enter("reading the TLS files")
        check_tls_files(settings.target.tls)
    return tuple(reports)


def _unanswered(settings: Settings, target: Target, error: PluginError) -> ServerReport:
    return ServerReport(target, tuple(Outcome(endpoint, error=error) for endpoint in settings.endpoints))


def _collect_server(settings: Settings, target: Target, deadline: Deadline) -> ServerReport:
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
