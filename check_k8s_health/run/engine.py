"""Acquisition for a whole run: every check it asks for, every server concurrently, inside the one deadline.

Each server's endpoints are asked by ``checks.endpoints.acquire``. With ``--members`` the member list is looked
up first (``checks.members.acquire``), and the members are then checked like servers named with ``-s``.
``--webhooks`` and ``--aggregated-apis`` are asked once (``checks.blindspots.acquire``), beside the servers'
endpoints, not after them. A check that only some runs ask for is imported only by those runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Optional, cast

from check_k8s_health.access.tlsfiles import check_tls_files
from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import LATE, PluginError, TransportError
from check_k8s_health.base.record import NamedTuple
from check_k8s_health.checks.endpoints.acquire import collect_server
from check_k8s_health.checks.endpoints.read import Outcome, ServerReport
from check_k8s_health.model.settings import Settings, Target
from check_k8s_health.transport.parallel import in_parallel

if TYPE_CHECKING:
    from check_k8s_health.checks.blindspots.read import Survey
    from check_k8s_health.checks.leaders.read import Leaders
    from check_k8s_health.checks.members.read import Roster


class Acquired(NamedTuple):
    """Everything one run found out: the servers' reports, with ``--members`` the member list they were found
    in, with ``--webhooks`` or ``--aggregated-apis`` what the health endpoints cannot see, with ``--leaders`` the
    leader Leases."""

    reports: tuple[ServerReport, ...]
    roster: Optional[Roster] = None
    survey: Optional[Survey] = None
    leaders: Optional[Leaders] = None
    #: Seconds this process waited for a CPU, measured when an answer was late (see ``starvation``).
    cpu_wait: Optional[float] = None


def acquire(settings: Settings, deadline: Deadline) -> Acquired:
    roster = None
    targets = settings.targets
    if settings.members:
        from check_k8s_health.checks.members.acquire import look_up

        roster = look_up(settings, deadline)
        targets = roster.targets or targets
    if not (settings.blind_spots or settings.leaders):
        collected = collect(settings, targets, deadline)
        return Acquired(collected, roster, cpu_wait=_cpu_wait(collected))
    # Asked once, through the server the member list came from, else the first one named, beside the endpoints.
    via = roster.via if roster is not None and roster.via is not None else settings.target
    jobs: list[Callable[[], object]] = [lambda: collect(settings, targets, deadline.inner())]
    if settings.blind_spots:
        from check_k8s_health.checks.blindspots import acquire as blindspots

        jobs.append(lambda: blindspots.survey(settings, via, deadline.inner()))
    if settings.leaders:
        from check_k8s_health.checks.leaders import acquire as leaders

        jobs.append(lambda: leaders.look_up(settings, via, deadline.inner()))
    results = iter(in_parallel(jobs, deadline))
    reports = next(results)
    if isinstance(reports, TransportError):  # not finished in time: every endpoint of every server is late
        reports = tuple(_unanswered(settings, target, reports) for target in targets)
    elif isinstance(reports, PluginError):
        raise reports  # a configuration error found after the requests failed (see collect)
    done = cast("tuple[ServerReport, ...]", reports)
    found = Acquired(done, roster, cpu_wait=_cpu_wait(done))
    if settings.blind_spots:
        survey = next(results)
        found = found._replace(survey=blindspots.unanswered(via, survey) if isinstance(survey, PluginError)
                               else cast("Survey", survey))
    if settings.leaders:
        leases = next(results)
        found = found._replace(leaders=leaders.unanswered(settings, via, leases) if isinstance(leases, PluginError)
                               else cast("Leaders", leases))
    return found


def _cpu_wait(reports: tuple[ServerReport, ...]) -> Optional[float]:
    """Read only when an answer was late: whether this host gave the plugin a CPU decides what that means."""
    if not any(isinstance(outcome.error, LATE) for report in reports for outcome in report.outcomes):
        return None
    from check_k8s_health.transport.starvation import cpu_wait

    return cpu_wait()


def collect(settings: Settings, targets: tuple[Target, ...], deadline: Deadline) -> tuple[ServerReport, ...]:
    jobs = [lambda target=target: collect_server(settings, target, deadline) for target in targets]
    results = in_parallel(jobs, deadline)
    reports = []
    for target, result in zip(targets, results):
        reports.append(result if isinstance(result, ServerReport) else _unanswered(settings, target, result))
    if any(outcome.error is not None for report in reports for outcome in report.outcomes) and \
            any(not target.plain_http for target in settings.targets):
        # A CA file the TLS library could not read fails every request: that is the configuration error it
        # was before the first request, when command.configure checked the files (see access.tlsfiles).
        deadline.enter("reading the TLS files")
        check_tls_files(settings.target.tls)
    return tuple(reports)


def _unanswered(settings: Settings, target: Target, error: PluginError) -> ServerReport:
    return ServerReport(target, tuple(Outcome(endpoint, error=error) for endpoint in settings.endpoints))
